import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bindBackend } from '../backends/registry.js';
import { cidr, ip, local } from '../backends/test-fixtures.js';
import type { DesiredState, LocalNode, Peer } from '../backends/types.js';
import { vtepMacFor } from '../backends/vxlan.js';
import { parseIpOf, parsePrefixOf, type Ip, type IpPrefix } from '../net/ip.js';
import { computeDiff } from './diff.js';
import { FakeKernel } from './fake-kernel.js';
import { parseIpState, parseRoutes6 } from './kernel-reader.js';
import { Reconciler } from './reconciler.js';
import { InvalidSpecError, renderAddr6, renderNeighReplace6, renderRoute6, renderRouteDel6 } from './render-ip.js';

const ip6 = (s: string): Ip => parseIpOf(6, s) as Ip;
const pfx6 = (s: string): IpPrefix => {
  const p = parsePrefixOf(6, s, true) as IpPrefix;
  return { family: 6, network: p.network, prefix: p.prefix };
};
const dual: LocalNode = { ...local, subnet6: pfx6('fd00:10:244:1::/64') };
const peer = (n: number, v6 = true): Peer => ({
  name: `node${n}`,
  publicIP: ip(`192.0.2.${10 + n}`),
  subnet: cidr(`10.244.${n}.0/24`),
  backendType: 'vxlan',
  backendData: { vtepMac: vtepMacFor(ip(`192.0.2.${10 + n}`)) },
  ...(v6 ? { subnet6: pfx6(`fd00:10:244:${n}::/64`) } : {}),
});
const vxlan = bindBackend({ type: 'vxlan', vni: 1, port: 8472, directRouting: false });

function kernel(): FakeKernel {
  const k = new FakeKernel();
  k.addForeignLink('eth0');
  return k;
}

describe('IPv6 render', () => {
  it('renders ip -batch lines whose family comes from the addresses (no -6), /128 nodad', () => {
    assert.equal(renderAddr6('replace', { dev: 'twill.1', address: ip6('fd00:10:244:1::'), prefix: 128 }).line, 'address replace fd00:10:244:1::/128 dev twill.1 nodad');
    assert.equal(renderAddr6('del', { dev: 'twill.1', address: ip6('fd00:10:244:1::'), prefix: 128 }).line, 'address del fd00:10:244:1::/128 dev twill.1');
    assert.equal(
      renderNeighReplace6({ dev: 'twill.1', ip: ip6('fd00:10:244:2::'), mac: '0e:54:c0:00:02:0c' }).line,
      'neigh replace fd00:10:244:2:: lladdr 0e:54:c0:00:02:0c dev twill.1 nud permanent',
    );
    assert.equal(
      renderRoute6('add', { dst: pfx6('fd00:10:244:2::/64'), via: ip6('fd00:10:244:2::'), dev: 'twill.1', onlink: true }).line,
      'route add fd00:10:244:2::/64 via fd00:10:244:2:: dev twill.1 onlink proto 84',
    );
    assert.equal(
      renderRouteDel6({ dst: pfx6('fd00:10:244:2::/64'), type: 'unicast', via: undefined, dev: 'twill.1', onlink: true, metric: 1024 }).line,
      'route del fd00:10:244:2::/64 proto 84 metric 1024',
    );
  });

  it('rejects a v4 address in a v6 spec, host bits and bad prefix lengths', () => {
    assert.throws(() => renderAddr6('replace', { dev: 'twill.1', address: { family: 4, value: 1n }, prefix: 32 }), InvalidSpecError);
    assert.throws(() => renderRoute6('add', { dst: { family: 6, network: 1n, prefix: 64 }, via: ip6('fd00::1'), dev: 'x', onlink: false }), /host bits/);
    assert.throws(() => renderAddr6('replace', { dev: 'twill.1', address: ip6('fd00::'), prefix: 129 }), InvalidSpecError);
    assert.throws(() => renderNeighReplace6({ dev: 'bad dev', ip: ip6('fd00::'), mac: '0e:54:c0:00:02:0c' }), InvalidSpecError);
  });
});

describe('IPv6 reconcile on the fake kernel', () => {
  it('programs a dual-stack peer, then is idempotent; v4 lines are exactly the v4-only ones', async () => {
    const k = kernel();
    const r = new Reconciler(k);
    const desired = vxlan.desiredState(dual, [peer(2), peer(3, false)]);
    const first = await r.apply(desired);
    assert.equal(first.converged, true, JSON.stringify(first));
    const v4lines = computeDiff(vxlan.desiredState(local, [peer(2), peer(3, false)]), await kernel().read()).commands.map((c) => c.line);
    const lines = first.commands.map((c) => c.replace(/^(ip|bridge): /, ''));
    for (const l of v4lines) assert.ok(lines.includes(l), `v4 line ${l}`);
    assert.deepEqual(lines.filter((l) => l.includes('fd00')), [
      'address replace fd00:10:244:1::/128 dev twill.1 nodad',
      'neigh replace fd00:10:244:2:: lladdr 0e:54:c0:00:02:0c dev twill.1 nud permanent',
      'route add fd00:10:244:2::/64 via fd00:10:244:2:: dev twill.1 onlink proto 84',
    ]);
    assert.equal(k.state.routes6[0]?.metric, 1024);
    const second = await r.apply(desired);
    assert.deepEqual([second.changes, second.commands], [0, []]);
  });

  it('resync repairs a hand-deleted v6 route and neighbour; a stale v6 route is removed; foreign v6 routes stay', async () => {
    const k = kernel();
    const r = new Reconciler(k);
    const desired = vxlan.desiredState(dual, [peer(2), peer(3)]);
    await r.apply(desired);
    k.state.routes6 = k.state.routes6.filter((x) => x.dst.network !== pfx6('fd00:10:244:2::/64').network);
    k.state.neighbours6 = k.state.neighbours6.filter((n) => n.ip.value !== ip6('fd00:10:244:3::').value);
    k.state.routes6.push({ dst: pfx6('fd00:10:244:9::/64'), type: 'unicast', via: ip6('fd00:10:244:9::'), dev: 'twill.1', onlink: true, metric: 1024, proto: 84 });
    k.state.routes6.push({ dst: pfx6('2001:db8:5::/64'), type: 'unicast', via: ip6('2001:db8::1'), dev: 'eth0', onlink: false, metric: 1024, proto: 3 });
    const rep = await r.apply(desired);
    assert.equal(rep.converged, true);
    assert.deepEqual(rep.commands, [
      'ip: route del fd00:10:244:9::/64 proto 84 metric 1024',
      'ip: neigh replace fd00:10:244:3:: lladdr 0e:54:c0:00:02:0d dev twill.1 nud permanent',
      'ip: route add fd00:10:244:2::/64 via fd00:10:244:2:: dev twill.1 onlink proto 84',
    ]);
    assert.ok(k.state.routes6.some((x) => x.proto === 3), 'a route of another protocol is not ours');
  });

  it('a node that loses its subnet6 removes every v6 object and keeps v4', async () => {
    const k = kernel();
    const r = new Reconciler(k);
    await r.apply(vxlan.desiredState(dual, [peer(2)]));
    const rep = await r.apply(vxlan.desiredState(local, [peer(2)]));
    assert.equal(rep.converged, true);
    assert.deepEqual([k.state.addresses6, k.state.neighbours6, k.state.routes6], [[], [], []]);
    assert.equal(k.state.routes.length, 1);
  });

  it('rejects an invalid v6 object and applies the rest', () => {
    const desired: DesiredState = { ...vxlan.desiredState(dual, [peer(2)]), neighbours6: [{ dev: 'twill.1', ip: ip6('fd00:10:244:2::'), mac: 'zz' }] };
    const d = computeDiff(desired, { links: [], addresses: [], neighbours: [], fdb: [], routes: [], addresses6: [], neighbours6: [], routes6: [] });
    assert.equal(d.rejected.length, 1);
    assert.match(d.rejected[0] as string, /neighbour fd00:10:244:2:: on twill.1: invalid MAC/);
    assert.ok(d.commands.some((c) => c.line.startsWith('route add fd00:10:244:2::/64')));
  });
});

describe('IPv6 kernel reader parsing', () => {
  it('reads v6 addresses (not link-local) and neighbours of our links; v6 routes from ip -6 -json', () => {
    const addr = [
      {
        ifname: 'twill.1', flags: ['UP'], mtu: 1450, address: '0e:54:c0:00:02:0b',
        linkinfo: { info_kind: 'vxlan', info_data: { id: 1, port: 8472, local: '192.0.2.11', link: 'eth0', learning: false, udp_csum: false } },
        addr_info: [
          { family: 'inet', local: '10.244.1.0', prefixlen: 32 },
          { family: 'inet6', local: 'fd00:10:244:1::', prefixlen: 128 },
          { family: 'inet6', local: 'fe80::c54:c0ff:fe00:20b', prefixlen: 64 },
        ],
      },
      { ifname: 'eth0', addr_info: [{ family: 'inet6', local: '2001:db8::11', prefixlen: 64 }] },
    ];
    const neigh = [
      { dst: '10.244.2.0', dev: 'twill.1', lladdr: '0e:54:c0:00:02:0c', state: ['PERMANENT'] },
      { dst: 'fd00:10:244:2::', dev: 'twill.1', lladdr: '0e:54:c0:00:02:0c', state: ['PERMANENT'] },
      { dst: 'fe80::1', dev: 'eth0', lladdr: '02:00:00:00:00:01', state: ['REACHABLE'] },
    ];
    const s = parseIpState([JSON.stringify(addr), '[]', JSON.stringify(neigh)].join('\n'));
    assert.deepEqual(s.addresses6, [{ dev: 'twill.1', address: ip6('fd00:10:244:1::'), prefix: 128 }]);
    assert.deepEqual(s.neighbours6, [{ dev: 'twill.1', ip: ip6('fd00:10:244:2::'), mac: '0e:54:c0:00:02:0c', permanent: true }]);
    assert.equal(s.neighbours.length, 1);
    const routes = parseRoutes6(
      JSON.stringify([
        { dst: 'fd00:10:244:2::/64', gateway: 'fd00:10:244:2::', dev: 'twill.1', metric: 1024, flags: ['onlink'], pref: 'medium' },
        { dst: 'fd00:10:244:9::1', dev: 'twill.1', metric: 1024, flags: [] },
      ]),
    );
    assert.deepEqual(routes, [
      { dst: pfx6('fd00:10:244:2::/64'), type: 'unicast', via: ip6('fd00:10:244:2::'), dev: 'twill.1', onlink: true, metric: 1024 },
      { dst: pfx6('fd00:10:244:9::1/128'), type: 'unicast', via: undefined, dev: 'twill.1', onlink: false, metric: 1024 },
    ]);
    assert.deepEqual(parseRoutes6(''), []);
  });
});
