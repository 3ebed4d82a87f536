import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bindBackend } from '../backends/registry.js';
import type { DesiredState, Peer } from '../backends/types.js';
import { vtepMacFor } from '../backends/vxlan.js';
import type { BackendConfig } from '../model/cluster-config.js';
import { computeDiff } from './diff.js';
import { FakeKernel, type FakeState } from './fake-kernel.js';
import { batches } from './reconciler.js';
import { cidr, ip, local } from '../backends/test-fixtures.js';

const VXLAN: BackendConfig = { type: 'vxlan', vni: 1, port: 8472, directRouting: false };
const VXLAN_DR: BackendConfig = { ...VXLAN, directRouting: true };
const HOST_GW: BackendConfig = { type: 'host-gw' };

function peer(n: number, config: BackendConfig, offUnderlay = false): Peer {
  const publicIP = ip(offUnderlay ? `198.51.100.${n}` : `192.0.2.${10 + n}`);
  return {
    name: `node${n}`,
    publicIP,
    subnet: cidr(`10.244.${n}.0/24`),
    backendType: config.type,
    backendData: config.type === 'vxlan' ? { vtepMac: vtepMacFor(publicIP), vni: '1' } : {},
  };
}

function desiredFor(config: BackendConfig, peers: Peer[]): DesiredState {
  return bindBackend(config).desiredState(local, peers);
}

/**
 * A node with an underlay, a bridge, a static route, the CNI plugin's /32 pod routes (its own
 * protocol 85, on a veth and, next to a peer subnet, on a non-twl device) and a pod route of a
 * pre-split plugin (proto 84, dev twl*).
 */
function node(): FakeKernel {
  const k = new FakeKernel();
  k.addForeignLink('eth0');
  k.addForeignLink('cni0', 'bridge');
  k.addForeignLink('twl0123456789ab');
  k.state.routes.push(
    { dst: cidr('10.99.0.0/24'), type: 'unicast', via: ip('192.0.2.1'), dev: 'eth0', onlink: false, metric: 0, proto: 4 },
    { dst: cidr('10.244.1.5/32'), type: 'unicast', via: undefined, dev: 'twl0123456789ab', onlink: false, metric: 0, proto: 84 },
    { dst: cidr('10.244.1.6/32'), type: 'unicast', via: undefined, dev: 'twl0123456789ab', onlink: false, metric: 0, proto: 85 },
    { dst: cidr('10.244.2.7/32'), type: 'unicast', via: undefined, dev: 'cni0', onlink: false, metric: 0, proto: 85 },
  );
  return k;
}

/** Everything on the fake node Twill's agent does not own. */
function foreign(s: FakeState): unknown {
  return {
    links: s.links.filter((l) => !l.name.startsWith('twill.')),
    routes: s.routes.filter((r) => r.proto !== 84 || r.dev?.startsWith('twl')),
  };
}

async function applyDiff(k: FakeKernel, desired: DesiredState): Promise<string[]> {
  const d = computeDiff(desired, await k.read());
  assert.deepEqual(d.rejected, []);
  for (const b of batches(d.commands)) assert.deepEqual(await k.execute(b.program, b.commands.map((c) => c.line)), []);
  return d.commands.map((c) => c.line);
}

describe('computeDiff', () => {
  it('a fresh vxlan node: link, address, neighbours/FDB, then routes', async () => {
    const k = node();
    const lines = await applyDiff(k, desiredFor(VXLAN, [peer(2, VXLAN), peer(3, VXLAN, true)]));
    assert.deepEqual(lines, [
      'link add twill.1 address 0e:54:c0:00:02:0b mtu 1450 up type vxlan id 1 local 192.0.2.11 dev eth0 dstport 8472 nolearning noudpcsum',
      'address replace 10.244.1.0/32 dev twill.1',
      'neigh replace 10.244.2.0 lladdr 0e:54:c0:00:02:0c dev twill.1 nud permanent',
      'neigh replace 10.244.3.0 lladdr 0e:54:c6:33:64:03 dev twill.1 nud permanent',
      'fdb replace 0e:54:c0:00:02:0c dev twill.1 dst 192.0.2.12 self permanent',
      'fdb replace 0e:54:c6:33:64:03 dev twill.1 dst 198.51.100.3 self permanent',
      'route add 10.244.2.0/24 via 10.244.2.0 dev twill.1 onlink proto 84',
      'route add 10.244.3.0/24 via 10.244.3.0 dev twill.1 onlink proto 84',
    ]);
    assert.deepEqual(
      k.batches.map(([p, l]) => `${p}:${l.length}`),
      ['ip:2', 'ip:2', 'bridge:2', 'ip:2'],
    );
    assert.deepEqual(computeDiff(desiredFor(VXLAN, [peer(2, VXLAN), peer(3, VXLAN, true)]), await k.read()).commands, []);
  });

  it('leaves foreign links and routes (and the CNI plugin’s proto-84 pod routes) alone', async () => {
    const k = node();
    const before = structuredClone(foreign(k.state));
    await applyDiff(k, desiredFor(VXLAN, [peer(2, VXLAN)]));
    await applyDiff(k, desiredFor(HOST_GW, [peer(2, HOST_GW)]));
    await applyDiff(k, desiredFor(HOST_GW, []));
    assert.deepEqual(foreign(k.state), before);
    assert.equal(k.state.routes.length, 4);
  });

  it('repairs a hand-deleted FDB entry and route, and nothing else', async () => {
    const k = node();
    const desired = desiredFor(VXLAN, [peer(2, VXLAN), peer(3, VXLAN)]);
    await applyDiff(k, desired);
    k.state.fdb = k.state.fdb.filter((f) => f.dst !== ip('192.0.2.13'));
    k.state.routes = k.state.routes.filter((r) => r.dst.network !== ip('10.244.2.0'));
    assert.deepEqual(await applyDiff(k, desired), [
      'fdb replace 0e:54:c0:00:02:0d dev twill.1 dst 192.0.2.13 self permanent',
      'route add 10.244.2.0/24 via 10.244.2.0 dev twill.1 onlink proto 84',
    ]);
    assert.deepEqual(await applyDiff(k, desired), []);
  });

  it('peer removal removes exactly its route, FDB entry and neighbour, routes first', async () => {
    const k = node();
    await applyDiff(k, desiredFor(VXLAN, [peer(2, VXLAN), peer(3, VXLAN), peer(4, VXLAN)]));
    assert.deepEqual(await applyDiff(k, desiredFor(VXLAN, [peer(2, VXLAN), peer(4, VXLAN)])), [
      'route del 10.244.3.0/24 proto 84',
      'fdb del 0e:54:c0:00:02:0d dev twill.1 dst 192.0.2.13 self',
      'neigh del 10.244.3.0 dev twill.1',
    ]);
  });

  it('a peer that moved: stale remote removed before the new one is added; neighbour and route updated in place', async () => {
    const k = node();
    await applyDiff(k, desiredFor(VXLAN, [peer(2, VXLAN)]));
    const moved: Peer = { ...peer(2, VXLAN), publicIP: ip('192.0.2.99'), backendData: { vtepMac: '0e:00:00:00:00:99' } };
    assert.deepEqual(await applyDiff(k, desiredFor(VXLAN, [moved])), [
      'fdb del 0e:54:c0:00:02:0c dev twill.1 dst 192.0.2.12 self',
      'neigh replace 10.244.2.0 lladdr 0e:00:00:00:00:99 dev twill.1 nud permanent',
      'fdb replace 0e:00:00:00:00:99 dev twill.1 dst 192.0.2.99 self permanent',
    ]);
  });

  it('MTU or MAC drift is fixed in place; an incompatible device (udpcsum on) is re-created with its objects', async () => {
    const k = node();
    const desired = desiredFor(VXLAN, [peer(2, VXLAN)]);
    await applyDiff(k, desired);
    Object.assign(k.state.links.find((l) => l.name === 'twill.1') ?? {}, { mtu: 1400, up: false });
    assert.deepEqual(await applyDiff(k, desired), ['link set dev twill.1 address 0e:54:c0:00:02:0b mtu 1450 up']);
    const l = k.state.links.find((x) => x.name === 'twill.1');
    assert.ok(l?.vxlan);
    Object.assign(l, { vxlan: { ...l.vxlan, udpCsum: true } });
    const lines = await applyDiff(k, desired);
    assert.equal(lines[0], 'link del dev twill.1');
    assert.match(lines[1] ?? '', /^link add twill\.1 /);
    assert.equal(lines.length, 6, 'address, neighbour, FDB and route come back with the device');
    assert.deepEqual(await applyDiff(k, desired), []);
  });

  it('switching vxlan -> host-gw: the device goes with its objects (no deletes for them), host-gw routes are added', async () => {
    const k = node();
    await applyDiff(k, desiredFor(VXLAN, [peer(2, VXLAN)]));
    assert.deepEqual(await applyDiff(k, desiredFor(HOST_GW, [peer(2, HOST_GW)])), [
      'link del dev twill.1',
      'route add 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 84',
    ]);
  });

  it('kernel-made neighbour entries are ignored unless they sit on an address we need', async () => {
    const k = node();
    const desired = desiredFor(VXLAN, [peer(2, VXLAN)]);
    await applyDiff(k, desired);
    k.state.neighbours.push({ dev: 'twill.1', ip: ip('10.244.7.0'), mac: '', permanent: false });
    assert.deepEqual(await applyDiff(k, desired), []);
    const n = k.state.neighbours.find((x) => x.ip === ip('10.244.2.0'));
    assert.ok(n);
    Object.assign(n, { permanent: false });
    assert.deepEqual(await applyDiff(k, desired), ['neigh replace 10.244.2.0 lladdr 0e:54:c0:00:02:0c dev twill.1 nud permanent']);
  });

  it('invalid desired objects are rejected, the rest still rendered', async () => {
    const desired = desiredFor(VXLAN, [peer(2, VXLAN)]);
    const bad: DesiredState = { ...desired, neighbours: [...desired.neighbours, { dev: 'twill.1', ip: 5, mac: 'nope' }] };
    const d = computeDiff(bad, await node().read());
    assert.equal(d.rejected.length, 1);
    assert.match(d.rejected[0] ?? '', /invalid MAC/);
    assert.equal(d.commands.length, 5);
  });

  it('property: from any prior state, apply(diff) then diff again is empty, and foreign objects are untouched', async () => {
    const configs = [VXLAN, VXLAN_DR, HOST_GW];
    const arbDesired = fc
      .record({ config: fc.constantFrom(...configs), peers: fc.uniqueArray(fc.record({ n: fc.integer({ min: 2, max: 9 }), off: fc.boolean() }), { selector: (p) => p.n, maxLength: 6 }) })
      .map(({ config, peers }) => desiredFor(config, peers.map((p) => peer(p.n, config, p.off))));
    const arbJunk = fc.record({
      dropFdb: fc.boolean(),
      dropRoute: fc.boolean(),
      dropNeigh: fc.boolean(),
      staleLink: fc.boolean(),
      staleRoute: fc.boolean(),
      mtu: fc.constantFrom(1450, 1400, 9000),
    });
    await fc.assert(
      fc.asyncProperty(arbDesired, arbJunk, arbDesired, async (before, junk, after) => {
        const k = node();
        const untouched = structuredClone(foreign(k.state));
        await applyDiff(k, before);
        const s = k.state;
        if (junk.dropFdb) s.fdb = s.fdb.slice(1);
        if (junk.dropRoute) s.routes = s.routes.filter((r, i) => r.proto !== 84 || r.dev?.startsWith('twl') || i % 2 === 0);
        if (junk.dropNeigh) s.neighbours = s.neighbours.slice(1);
        for (const l of s.links) if (l.name.startsWith("twill.")) Object.assign(l, { mtu: junk.mtu });
        if (junk.staleLink) await k.execute('ip', ['link add twill.9 address 0e:00:00:00:00:09 mtu 1400 up type vxlan id 9 local 192.0.2.11 dev eth0 dstport 4789 nolearning noudpcsum']);
        if (junk.staleRoute) s.routes.push({ dst: cidr('10.244.200.0/24'), type: 'unicast', via: ip('192.0.2.200'), dev: 'eth0', onlink: false, metric: 0, proto: 84 });
        await applyDiff(k, after);
        assert.deepEqual(computeDiff(after, await k.read()).commands, []);
        assert.deepEqual(foreign(k.state), untouched);
        const ours = await k.read();
        assert.equal(ours.links.length, after.links.length);
        assert.equal(ours.routes.filter((r) => !r.dev?.startsWith('twl')).length, after.routes.length);
        assert.equal(ours.fdb.length, after.fdb.length);
      }),
      { numRuns: 300 },
    );
  });
});
