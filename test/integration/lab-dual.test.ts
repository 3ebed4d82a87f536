/**
 * Dual-stack labs (`twill lab up --ip-family dual`): IPv4 and IPv6 pods on every node, an IPv6
 * underlay beside the IPv4 one. For vxlan (l2), host-gw (l2) and vxlan-direct (l3): the full
 * connectivity matrix in both families; a hand-deleted IPv6 route (and, on vxlan, neighbour) is
 * repaired by the next resync; on vxlan an agent killed with SIGKILL under an IPv6 ping loses
 * nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAgent, stopAgent } from '../../src/cli/lab/lab.js';
import { sh } from './harness.js';
import { LAB_PATHS, RESYNC_SECONDS, backgroundPing, inNs, nodeOf, podNetns, twillRoutes, waitConverged, waitReconciles, withLab, assertConnectivity } from './lab-helpers.js';
import type { LabState } from '../../src/cli/lab/lab.js';

const v6Of = (state: LabState, pod: string): string => {
  const ip = state.pods[pod]?.ips?.find((a) => a.includes(':'));
  assert.ok(ip, `${pod} has an IPv6 address`);
  return ip;
};

/** Permanent IPv6 neighbours on a device: `ip lladdr`. */
function neighbours6(netns: string, dev: string): string[] {
  const rows = JSON.parse(inNs(netns, ['ip', '-6', '-j', 'neigh', 'show', 'dev', dev])) as Array<{ dst: string; lladdr?: string; state?: string[] }>;
  return rows.filter((r) => r.state?.includes('PERMANENT')).map((r) => `${r.dst} ${r.lladdr ?? '?'}`).sort();
}

const cases = [
  { backend: 'vxlan', topology: 'l2', nodes: 2 },
  { backend: 'host-gw', topology: 'l2', nodes: 2 },
  { backend: 'vxlan-direct', topology: 'l3', nodes: 3 },
] as const;

describe('dual-stack labs', { timeout: 900_000 }, () => {
  for (const c of cases) {
    it(`${c.backend} (${c.topology}): full matrix in both families, hand-deleted IPv6 objects repaired`, { timeout: 300_000 }, async () => {
      await withLab({ nodes: c.nodes, pods: 1, backend: c.backend, topology: c.topology, ipFamily: 'dual' }, async ({ state }) => {
        for (const [name, p] of Object.entries(state.pods)) assert.equal(p.ips?.length, 2, `${name}: one address per family (${p.ips?.join(', ')})`);
        const probes = assertConnectivity(state);
        assert.ok(probes > 0);
        assertConnectivity(state, (p) => p.family === 6);
        const n1 = nodeOf(state, 'node1');
        const routes6 = twillRoutes(n1.netns, 6);
        assert.ok(routes6.length >= c.nodes - 1, `node1 has Twill's IPv6 routes:\n${routes6.join('\n')}`);
        const victim = (routes6[0] ?? '').split(' ')[0] ?? '';
        inNs(n1.netns, ['ip', '-6', 'route', 'del', victim, 'proto', '84']);
        assert.equal(twillRoutes(n1.netns, 6).some((r) => r.startsWith(`${victim} `)), false, 'deleted by hand');
        await waitReconciles(state, 'node1', 2);
        assert.deepEqual(twillRoutes(n1.netns, 6), routes6, 'the resync put the IPv6 route back');
        if (c.backend === 'vxlan') {
          const neigh = neighbours6(n1.netns, 'twill.1');
          assert.ok(neigh.length >= 1, 'a permanent IPv6 neighbour per peer on twill.1');
          const ip = (neigh[0] ?? '').split(' ')[0] ?? '';
          inNs(n1.netns, ['ip', '-6', 'neigh', 'del', ip, 'dev', 'twill.1']);
          await waitReconciles(state, 'node1', 2);
          assert.deepEqual(neighbours6(n1.netns, 'twill.1'), neigh, 'the resync put the IPv6 neighbour back');
        }
        assertConnectivity(state, (p) => p.family === 6);
      });
    });
  }

  it('vxlan: kill -9 of an agent under a 20/s IPv6 ping loses nothing, the restarted agent adopts the kernel', { timeout: 300_000 }, async () => {
    await withLab({ nodes: 2, pods: 1, backend: 'vxlan', topology: 'l2', ipFamily: 'dual' }, async ({ state }) => {
      const dst = v6Of(state, 'node2-pod1');
      assert.equal(sh(['ip', 'netns', 'exec', podNetns(state, 'node1-pod1'), 'ping', '-c', '1', '-W', '2', dst]).status, 0, 'IPv6 path works before');
      const ping = backgroundPing(podNetns(state, 'node1-pod1'), dst, 120, 0.05);
      try {
        await sleep(1000);
        const n1 = nodeOf(state, 'node1');
        await stopAgent(state, n1, 'SIGKILL');
        await sleep(1500);
        startAgent(state, LAB_PATHS, n1, RESYNC_SECONDS);
        await waitConverged(state);
        const summary = await ping.done;
        assert.ok(summary.transmitted >= 100, summary.output);
        assert.equal(summary.transmitted - summary.received, 0, `no IPv6 echo lost across kill -9 and restart: ${summary.output}`);
      } finally {
        ping.kill();
      }
    });
  });
});
