/**
 * The node agent over a lab's life (one vxlan lab, 3 nodes x 2 pods, shared by the cases in order):
 * hand-made damage is repaired by the periodic resync; agents restarted (SIGKILL and SIGTERM) adopt
 * the kernel as it is, without losing a packet; a node that leaves is removed everywhere and a node
 * that joins is reachable from every pod.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { addPod, etcdctl, labAddNode, startAgent, stopAgent } from '../../src/cli/lab/lab.js';
import {
  LAB_PATHS,
  RESYNC_SECONDS,
  agentGet,
  agentLog,
  agentStatus,
  alive,
  assertConnectivity,
  backgroundPing,
  dataplane,
  downLab,
  labName,
  expectedVxlan,
  fdbEntries,
  inNs,
  leaseKey,
  logLineCount,
  neighbours,
  networkAddress,
  nodeOf,
  peersOf,
  podIp,
  podNetns,
  podPing,
  subnetOf,
  twillRoutes,
  upLab,
  vtepMac,
  waitUntil,
  type LogLine,
  type TestLab,
} from './lab-helpers.js';
import { sh } from './harness.js';

const TIMEOUT = 180_000;

describe('twill lab: agent lifecycle (vxlan, 3 nodes)', { timeout: 900_000 }, () => {
  const name = labName();
  let lab: TestLab | undefined;
  const state = () => (lab as TestLab).state;

  before(async () => {
    lab = await upLab({ nodes: 3, pods: 2, backend: 'vxlan', topology: 'l2' }, name);
    assertConnectivity(lab.state);
  });
  // labDown by name: also when labUp failed half-way.
  after(() => downLab(name));

  it('repairs a hand-deleted route, FDB entry and neighbour within two resync periods', { timeout: TIMEOUT }, async () => {
    const n1 = nodeOf(state(), 'node1').netns;
    const s2 = subnetOf(state(), 'node2');
    const gw2 = networkAddress(s2);
    const mac2 = vtepMac('192.0.2.12');
    const route = `${s2} via ${gw2} dev twill.1 proto 84 onlink`;
    const before = dataplane(n1);
    assert.ok(before.routes.includes(route));

    // The agent is paused while the objects are deleted and the deletion checked: a periodic resync
    // landing between the three deletes would otherwise repair some of them before the checks.
    const pid = state().pids['twilld-node1'] as number;
    process.kill(pid, 'SIGSTOP');
    let mark: number;
    try {
      inNs(n1, ['ip', 'route', 'del', s2, 'proto', '84']);
      inNs(n1, ['bridge', 'fdb', 'del', mac2, 'dev', 'twill.1', 'dst', '192.0.2.12', 'self']);
      inNs(n1, ['ip', 'neigh', 'del', gw2, 'dev', 'twill.1']);
      assert.ok(!twillRoutes(n1).includes(route), 'route not deleted');
      assert.ok(!fdbEntries(n1, 'twill.1').includes(`${mac2} 192.0.2.12`), 'FDB entry not deleted');
      assert.ok(!neighbours(n1, 'twill.1').includes(`${gw2} ${mac2}`), 'neighbour not deleted');
      mark = logLineCount(state(), 'node1');
    } finally {
      process.kill(pid, 'SIGCONT');
    }

    const ms = await waitUntil('node1 to restore the route, FDB entry and neighbour', 2 * RESYNC_SECONDS * 1000 + 3000, () => {
      const d = dataplane(n1);
      return d.routes.includes(route) && d.fdb.includes(`${mac2} 192.0.2.12`) && d.neigh.includes(`${gw2} ${mac2}`);
    });
    process.stdout.write(`# repaired in ${ms} ms\n`);
    assert.deepEqual(dataplane(n1), before, 'node1 is not back to exactly its former state');
    assert.ok(podPing(state(), 'node1-pod1', podIp(state(), 'node2-pod1')));
    assert.ok(podPing(state(), 'node2-pod2', podIp(state(), 'node1-pod2')));
    // Repaired by the periodic resync (no datastore event happened), three objects written in all.
    const fixes = agentLog(state(), 'node1', mark).filter((l) => l.msg === 'reconciled');
    assert.ok(fixes.length > 0, 'node1 logged no repairing reconcile');
    assert.ok(fixes.every((l) => l.reason === 'periodic resync'), JSON.stringify(fixes));
    assert.equal(fixes.reduce((n, l) => n + Number(l.changes), 0), 3, JSON.stringify(fixes));
  });

  it('restarts agents (SIGKILL and SIGTERM) without losing a packet; the new agent adopts the kernel', { timeout: TIMEOUT }, async () => {
    const s = state();
    const n1 = nodeOf(s, 'node1');
    const n2 = nodeOf(s, 'node2');
    const before1 = dataplane(n1.netns);
    const before2 = dataplane(n2.netns);
    // 400 echoes, one every 50 ms (~20 s), node1-pod1 -> node2-pod1, across both restarts.
    const ping = backgroundPing(podNetns(s, 'node1-pod1'), podIp(s, 'node2-pod1'), 400, 0.05);
    try {
      await sleep(1500);
      await stopAgent(s, n1, 'SIGKILL');
      assert.deepEqual(dataplane(n1.netns), before1, 'SIGKILL changed node1');
      await sleep(3000);
      const mark1 = logLineCount(s, 'node1');
      const pid1 = startAgent(s, LAB_PATHS, n1, RESYNC_SECONDS);
      await waitUntil('the restarted node1 agent to be ready', 30_000, () => agentGet(n1.netns, '/readyz').status === 200, 250);

      const mark2 = logLineCount(s, 'node2');
      await stopAgent(s, n2, 'SIGTERM');
      assert.ok(agentLog(s, 'node2', mark2).some((l) => l.msg === 'stopped; dataplane left in place'), 'node2 did not log a clean stop');
      assert.equal(dataplane(n2.netns).link.startsWith('twill.1 mtu 1450'), true, 'SIGTERM removed twill.1');
      assert.deepEqual(dataplane(n2.netns), before2, 'SIGTERM changed node2');
      await sleep(2000);
      const pid2 = startAgent(s, LAB_PATHS, n2, RESYNC_SECONDS);
      await waitUntil('the restarted node2 agent to be ready', 30_000, () => agentGet(n2.netns, '/readyz').status === 200, 250);

      const result = await ping.done;
      process.stdout.write(`# ${result.output.split('\n').slice(-2).join(' | ')}\n`);
      assert.equal(result.transmitted, 400, result.output);
      assert.equal(result.received, 400, `packets lost across agent restarts:\n${result.output}`);
      assert.equal(result.lossPercent, 0);

      for (const [node, mark, pid] of [['node1', mark1, pid1], ['node2', mark2, pid2]] as const) {
        assert.ok(alive(pid), `${node}'s new agent died`);
        const lines = agentLog(s, node, mark);
        const first = lines.find((l: LogLine) => l.reason === 'initial sync');
        assert.ok(first, `${node}: no initial reconcile logged after the restart`);
        process.stdout.write(`# ${node} after its restart: ${first.msg} ${JSON.stringify({ changes: first.changes, nftChanged: first.nftChanged, ms: first.ms })}\n`);
        // Adopted: nothing to write in routes/FDB/neighbours/links (the nft table is compared separately).
        assert.equal(first.changes, 0, `${node} rewrote kernel objects after a restart: ${JSON.stringify(first)}`);
        assert.equal(first.converged, true);
        assert.ok(!lines.some((l) => l.msg === 'reconciled' && Number(l.changes) > 0), `${node} wrote after its restart`);
        const st = agentStatus(s, node);
        assert.equal(st.subnet, subnetOf(s, node), `${node} changed its lease on restart`);
      }
      assert.deepEqual(dataplane(n1.netns), before1);
      assert.deepEqual(dataplane(n2.netns), before2);
      // The SIGKILLed agent left its CNI socket behind; the new one serves it again and a pod added now works.
      assert.ok(agentLog(s, 'node1', mark1).some((l) => l.msg === 'serving twill-cni calls'), 'node1 does not serve its CNI socket after the restart');
      const pod = { name: 'node1-pod9', netns: `${n1.netns}p9`, containerId: `lab-${s.plan.spec.name}-node1-pod9` };
      const ip = addPod(s, LAB_PATHS, n1, pod);
      assert.ok(ip.startsWith(networkAddress(subnetOf(s, 'node1')).replace(/\.0$/, '.')), `pod ${ip} outside node1's subnet`);
      assert.ok(podPing(s, 'node2-pod1', ip), 'a pod added after the restart is not reachable');
    } finally {
      ping.kill();
    }
  });

  it('removes a node that leaves everywhere, and wires a node that joins to every pod', { timeout: TIMEOUT }, async () => {
    const s = state();
    const n3 = nodeOf(s, 'node3');
    const s3 = subnetOf(s, 'node3');
    const gone = (netns: string): boolean => {
      const d = dataplane(netns);
      return !d.routes.some((r) => r.startsWith(`${s3} `)) && !d.fdb.some((f) => f.endsWith(' 192.0.2.13')) && !d.neigh.some((n) => n.startsWith(`${networkAddress(s3)} `));
    };
    assert.ok(!gone(nodeOf(s, 'node1').netns) && !gone(nodeOf(s, 'node2').netns), 'node3 is not programmed to begin with');

    await stopAgent(s, n3, 'SIGTERM');
    const del = etcdctl(s.plan, ['del', '--prefix', leaseKey(s3)]);
    assert.equal(del.status, 0, del.stderr);
    assert.equal(del.stdout.trim(), '1', 'node3 lease not found in etcd');
    for (const node of ['node1', 'node2']) {
      const ms = await waitUntil(`${node} to remove node3's route, FDB entry and neighbour`, 10_000, () => gone(nodeOf(s, node).netns));
      process.stdout.write(`# ${node} removed node3 in ${ms} ms\n`);
      const want = expectedVxlan(peersOf(s, node, ['node3']));
      assert.deepEqual(dataplane(nodeOf(s, node).netns).routes, want.routes);
      assert.deepEqual(agentStatus(s, node).peers.map((p) => p.node), node === 'node1' ? ['node2'] : ['node1']);
    }
    assert.ok(agentLog(s, 'node1').some((l) => l.msg.startsWith('peer - ') && l.msg.includes('node3')), 'node1 did not log node3 leaving');

    const n4 = await labAddNode(s, LAB_PATHS, 4);
    const s4 = subnetOf(s, 'node4');
    // node3's subnet is free again: node4 may be given it (random start, about 1 in 250). Then node3's
    // old pod addresses are node4's subnet, and the "node3 is unreachable" check below is moot.
    const reused = s4 === s3;
    if (reused) process.stdout.write(`# node4 was given node3's freed subnet ${s3}\n`);
    for (const node of ['node1', 'node2', 'node4']) {
      await waitUntil(`${node} to be programmed for the other live nodes`, 15_000, () => {
        const want = expectedVxlan(peersOf(s, node, ['node3']));
        const d = dataplane(nodeOf(s, node).netns);
        return JSON.stringify([d.routes, d.neigh, d.fdb]) === JSON.stringify([want.routes, want.neigh, want.fdb]);
      });
    }
    assert.equal(n4.address, '192.0.2.14');
    // Every pod of node1, node2, node4 to one pod of each of those nodes and to their addresses, both ways.
    const live = (name: string) => !name.startsWith('node3');
    const n = assertConnectivity(s, (p) => live(p.from) && live(p.to));
    // (pods of node1, node2, node4) x (3 pods + 3 node addresses), minus the 3 pods that are a target themselves.
    assert.equal(n, Object.keys(s.pods).filter(live).length * 6 - 3);
    assert.ok(podPing(s, 'node4-pod2', podIp(s, 'node1-pod2')));
    assert.ok(podPing(s, 'node2-pod2', podIp(s, 'node4-pod2')));
    if (!reused) assert.equal(sh(['ip', 'netns', 'exec', podNetns(s, 'node4-pod1'), 'ping', '-c', '1', '-W', '1', podIp(s, 'node3-pod1')]).status === 0, false, 'node3 left but is still reachable from node4');
  });
});
