/** `twill ipam show` and `twill ipam check` against a node namespace wired by twill-cni. */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { ROOT, cni, must, sh, withScope } from './harness.js';

const TWILL = path.join(ROOT, 'bin/twill');

test('twill ipam show lists reservations; ipam check finds leaks and orphans', { timeout: 120_000 }, async () => {
  await withScope((s) => {
    const host = s.netns('host');
    const dataDir = s.tmpdir('ipam');
    const config = { cniVersion: '1.1.0', name: 'chk', type: 'twill', mtu: 1450, ipam: { type: 'twill', subnet: '10.205.0.0/24', dataDir, subnetFile: path.join(dataDir, 'none.env') } };
    const pods = [s.netns('a'), s.netns('b')];
    pods.forEach((ns, i) => assert.equal(cni({ command: 'ADD', containerId: `c${i}`, netns: `/run/netns/${ns}`, ifName: 'eth0', host, config }).status, 0));
    const twill = (...args: string[]) => sh(['ip', 'netns', 'exec', host, TWILL, ...args, '--data-dir', dataDir, '--network', 'chk', '-o', 'json']);

    const shown = JSON.parse(twill('ipam', 'show').stdout) as Array<{ ip: string; containerId: string }>;
    assert.deepEqual(shown.map((r) => `${r.ip} ${r.containerId}`), ['10.205.0.2 c0', '10.205.0.3 c1']);

    const clean = twill('ipam', 'check');
    assert.equal(clean.status, 0, clean.stdout);
    assert.deepEqual(JSON.parse(clean.stdout), []);

    // A leak: the pod's veth vanished but the reservation stayed. An orphan: a veth whose record is gone.
    const veths = must(['ip', '-n', host, '-o', 'link', 'show', 'type', 'veth']).split('\n').map((l) => /^\d+: (twl[0-9a-f]{12})@/.exec(l)?.[1]).filter(Boolean) as string[];
    const aliasOf = (v: string) => must(['ip', '-n', host, '-o', '-d', 'link', 'show', 'dev', v]);
    const vethC0 = veths.find((v) => aliasOf(v).includes('twill/chk/c0/eth0')) as string;
    must(['ip', '-n', host, 'link', 'del', vethC0]);
    must(['rm', path.join(dataDir, 'chk', '10.205.0.3')]);
    const bad = twill('ipam', 'check');
    assert.equal(bad.status, 1);
    const problems = (JSON.parse(bad.stdout) as Array<{ kind: string; containerId: string }>).map((p) => `${p.kind} ${p.containerId}`).sort();
    assert.deepEqual(problems, ['reservation-without-veth c0', 'veth-without-reservation c1']);
  });
});
