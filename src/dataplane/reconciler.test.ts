import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bindBackend } from '../backends/registry.js';
import type { LinkSpec, LocalNode, Peer } from '../backends/types.js';
import { vtepMacFor } from '../backends/vxlan.js';
import { parseIPv4 } from '../net/ipv4.js';
import { FakeKernel } from './fake-kernel.js';
import { Reconciler } from './reconciler.js';
import { renderLinkAdd, renderNeighReplace } from './render-ip.js';
import type { KernelPort } from './state.js';

const ip = (s: string): number => parseIPv4(s) as number;
const local: LocalNode = {
  name: 'node1',
  publicIP: ip('192.0.2.11'),
  subnet: { network: ip('10.244.1.0'), prefix: 24 },
  underlayMtu: 1500,
  underlayIface: 'eth0',
  underlayCidr: { network: ip('192.0.2.0'), prefix: 24 },
  vtepMac: vtepMacFor(ip('192.0.2.11')),
};
const peer = (n: number): Peer => ({
  name: `node${n}`,
  publicIP: ip(`192.0.2.${10 + n}`),
  subnet: { network: ip(`10.244.${n}.0`), prefix: 24 },
  backendType: 'vxlan',
  backendData: { vtepMac: vtepMacFor(ip(`192.0.2.${10 + n}`)) },
});
const vxlan = bindBackend({ type: 'vxlan', vni: 1, port: 8472, directRouting: false });

function node(): FakeKernel {
  const k = new FakeKernel();
  k.addForeignLink('eth0');
  return k;
}

describe('Reconciler', () => {
  it('applies, then a second apply changes nothing and writes nothing', async () => {
    const k = node();
    const r = new Reconciler(k);
    const desired = vxlan.desiredState(local, [peer(2), peer(3)]);
    const first = await r.apply(desired);
    assert.deepEqual(first.errors, []);
    assert.equal(first.changes, 8);
    assert.ok(first.converged);
    const writes = k.batches.length;
    const second = await r.apply(desired);
    assert.deepEqual({ ...second }, { changes: 0, commands: [], errors: [], pending: [], converged: true });
    assert.equal(k.batches.length, writes);
  });

  it('a failing line does not stop the others; it is reported, stays pending and is repaired by the next apply', async () => {
    const k = node();
    k.failOn = [/^fdb replace .* dst 192\.0\.2\.12 /];
    const r = new Reconciler(k);
    const desired = vxlan.desiredState(local, [peer(2), peer(3)]);
    const first = await r.apply(desired);
    assert.equal(first.converged, false);
    const line = 'bridge: fdb replace 0e:54:c0:00:02:0c dev twill.1 dst 192.0.2.12 self permanent';
    assert.deepEqual(first.errors, [{ code: 'command-failed', message: `${line}: injected failure`, line, kind: 'fdb' }]);
    assert.deepEqual(first.pending, ['bridge: fdb replace 0e:54:c0:00:02:0c dev twill.1 dst 192.0.2.12 self permanent']);
    assert.equal(first.changes, 7);
    k.failOn = [];
    const second = await r.apply(desired);
    assert.equal(second.changes, 1);
    assert.ok(second.converged);
  });

  it('an aborted neighbour batch (ip exits) is retried in another round; a transient failure leaves no error', async () => {
    const k = node();
    const r = new Reconciler(k);
    const desired = vxlan.desiredState(local, [peer(2), peer(3)]);
    await r.apply(desired);
    // Both neighbours vanish; the first replace fails once, which aborts the neighbour batch.
    k.state.neighbours = [];
    let once = true;
    const flaky: KernelPort = {
      read: () => k.read(),
      execute: async (program, lines) => {
        if (once && program === 'ip' && lines[0]?.startsWith('neigh ')) {
          once = false;
          return [{ line: undefined, message: 'RTNETLINK answers: No buffer space available (batch aborted)' }];
        }
        return k.execute(program, lines);
      },
    };
    const report = await new Reconciler(flaky).apply(desired);
    assert.ok(report.converged);
    assert.equal(report.changes, 2);
    assert.deepEqual(report.errors, []);
  });

  it('one persistently failing neighbour does not starve the others: it is isolated, named, retried on every apply, alone', async () => {
    const k = node();
    const r = new Reconciler(k);
    // The first neighbour line of the batch fails every time, and a failing neigh line makes ip exit.
    k.failOn = [/^neigh replace 10\.244\.2\.0 /];
    const desired = vxlan.desiredState(local, [peer(2), peer(3), peer(4), peer(5)]);
    const first = await r.apply(desired);
    const bad = 'ip: neigh replace 10.244.2.0 lladdr 0e:54:c0:00:02:0c dev twill.1 nud permanent';
    assert.deepEqual(first.errors, [{ code: 'command-failed', message: `${bad}: injected failure`, line: bad, kind: 'neigh' }]);
    assert.deepEqual(first.pending, [bad]);
    assert.deepEqual(
      k.state.neighbours.map((n) => n.ip).sort(),
      [ip('10.244.3.0'), ip('10.244.4.0'), ip('10.244.5.0')],
      'every neighbour after the failing one is in place',
    );
    assert.equal(k.state.fdb.length, 4);
    assert.equal(k.state.routes.length, 4);
    // Later applies retry it, alone: one batch of one line, no abort, no second round.
    const before = k.batches.length;
    const second = await r.apply(desired);
    assert.deepEqual(second.commands, [bad]);
    assert.deepEqual(k.batches.slice(before), [['ip', [bad.slice(4)]]]);
    assert.equal(second.errors.length, 1);
    k.failOn = [];
    const third = await r.apply(desired);
    assert.deepEqual([third.changes, third.converged, third.errors], [1, true, []]);
  });

  it('on today\'s batching (no isolation), the same failure would starve the later neighbours (control)', async () => {
    const k = node();
    k.failOn = [/^neigh replace 10\.244\.2\.0 /];
    const desired = vxlan.desiredState(local, [peer(2), peer(3)]);
    // One neigh batch, as the reconciler sends it without isolation: ip exits at the first line.
    await k.execute('ip', [renderLinkAdd(desired.links[0] as LinkSpec).line]);
    const failures = await k.execute('ip', desired.neighbours.map((n) => renderNeighReplace(n).line));
    assert.deepEqual(failures.map((f) => f.line), [undefined]);
    assert.deepEqual(k.state.neighbours, []);
  });

  it('a route that would replace a foreign route is refused by the kernel and reported, never forced', async () => {
    const k = node();
    k.state.routes.push({ dst: { network: ip('10.244.2.0'), prefix: 24 }, type: 'unicast', via: ip('192.0.2.1'), dev: 'eth0', onlink: false, metric: 0, proto: 4 });
    const report = await new Reconciler(k).apply(vxlan.desiredState(local, [peer(2)]));
    assert.equal(report.converged, false);
    assert.deepEqual(
      report.errors.map((e) => [e.code, e.message]),
      [['command-failed', 'ip: route add 10.244.2.0/24 via 10.244.2.0 dev twill.1 onlink proto 84: RTNETLINK answers: File exists']],
    );
    assert.equal(k.state.routes[0]?.proto, 4);
  });

  it('a read failure is reported, nothing is written', async () => {
    let executed = 0;
    const broken: KernelPort = {
      read: () => Promise.reject(new Error('ip: cannot talk to the kernel')),
      execute: async () => {
        executed += 1;
        return [];
      },
    };
    const report = await new Reconciler(broken).apply(vxlan.desiredState(local, []));
    assert.deepEqual(report.errors, [{ code: 'read-failed', message: 'ip: cannot talk to the kernel' }]);
    assert.equal(report.converged, false);
    assert.equal(executed, 0);
  });
});
