/**
 * The node agent when the datastore misbehaves (one vxlan lab, 3 nodes x 1 pod, shared by the cases
 * in order): an invalid cluster config is reported and changes nothing; a 60 s etcd outage and a
 * partition of one agent from etcd cost no packet, and changes made meanwhile or afterwards are
 * picked up once etcd is reachable again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { etcdctl, labAddNode, startEtcd, stopAgent, stopEtcd } from '../../src/cli/lab/lab.js';
import {
  LAB_PATHS,
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
  inNs,
  leaseKey,
  logLineCount,
  metric,
  nodeOf,
  peersOf,
  podIp,
  podNetns,
  podPing,
  subnetOf,
  upLab,
  waitReconciles,
  waitUntil,
  type TestLab,
} from './lab-helpers.js';

const NODES = ['node1', 'node2', 'node3'];

describe('twill lab: datastore failures (vxlan, 3 nodes)', { timeout: 900_000 }, () => {
  const name = labName();
  let lab: TestLab | undefined;
  const state = () => (lab as TestLab).state;
  const snapshot = () => NODES.map((n) => dataplane(nodeOf(state(), n).netns));

  before(async () => {
    lab = await upLab({ nodes: 3, pods: 1, backend: 'vxlan', topology: 'l2' }, name);
    assertConnectivity(lab.state);
  });
  // labDown by name: also when labUp failed half-way.
  after(() => downLab(name));

  it('reports an invalid cluster config (log, /status, metric) and leaves the dataplane alone', { timeout: 120_000 }, async () => {
    const s = state();
    const good = JSON.stringify(s.plan.clusterConfig);
    const bad = JSON.stringify({ ...s.plan.clusterConfig, Network: '10.244.0.1/16' });
    const before = snapshot();
    const errorsBefore = metric(s, 'node1', 'twill_config_errors_total');
    const marks = NODES.map((n) => logLineCount(s, n));

    assert.equal(etcdctl(s.plan, ['put', '/twill/config', bad]).status, 0);
    for (const node of NODES) {
      await waitUntil(`${node} to report the invalid config`, 10_000, () => agentStatus(s, node).configError !== undefined);
      const st = agentStatus(s, node);
      assert.match(st.configError ?? '', /Network: 10\.244\.0\.1\/16 has host bits set/);
      assert.equal(st.phase, 'running');
    }
    NODES.forEach((node, i) => {
      const line = agentLog(s, node, marks[i]).find((l) => l.msg.startsWith('invalid cluster config'));
      assert.ok(line, `${node} logged no config error`);
      assert.equal(line.level, 'error', 'logged as an error');
      assert.match(JSON.stringify(line.errors), /host bits set/);
    });
    assert.equal(metric(s, 'node1', 'twill_config_errors_total'), errorsBefore + 1);
    assert.equal(agentGet(nodeOf(s, 'node1').netns, '/readyz').status, 200, 'the last valid config still serves');

    // Two resync passes later the kernel is exactly as it was, and pods still talk.
    await waitReconciles(s, 'node1', 2);
    assert.deepEqual(snapshot(), before);
    assert.ok(podPing(s, 'node1-pod1', podIp(s, 'node2-pod1')));
    assert.ok(podPing(s, 'node3-pod1', podIp(s, 'node1-pod1')));

    assert.equal(etcdctl(s.plan, ['put', '/twill/config', good]).status, 0);
    for (const node of NODES) {
      await waitUntil(`${node} to clear configError`, 10_000, () => agentStatus(s, node).configError === undefined);
    }
    assert.equal(metric(s, 'node1', 'twill_config_errors_total'), errorsBefore + 1);
    assert.deepEqual(snapshot(), before);
  });

  it('rides out a 60 s etcd outage without packet loss, then follows changes made after it', { timeout: 240_000 }, async () => {
    const s = state();
    const before = snapshot();
    const marks = NODES.map((n) => logLineCount(s, n));
    const pids = NODES.map((n) => s.pids[`twilld-${n}`]);
    // 330 echoes every 200 ms (~66 s) across the outage, node1-pod1 -> node2-pod1 (vxlan).
    const ping = backgroundPing(podNetns(s, 'node1-pod1'), podIp(s, 'node2-pod1'), 330, 0.2);
    try {
      await sleep(1000);
      const t0 = Date.now();
      await stopEtcd(s);
      for (const [i, node] of NODES.entries()) {
        await waitUntil(`${node} to log that the datastore is unavailable`, 30_000, () =>
          agentLog(s, node, marks[i]).some((l) => l.msg.startsWith('datastore unavailable')),
        );
      }
      await waitUntil('30 s into the outage', 40_000, () => Date.now() - t0 > 30_000, 1000);
      for (const node of NODES) assert.equal(agentGet(nodeOf(s, node).netns, '/healthz').status, 200, `${node} unhealthy during the outage`);
      await waitUntil('60 s into the outage', 40_000, () => Date.now() - t0 > 60_000, 1000);
      for (const [i, node] of NODES.entries()) {
        assert.ok(alive(pids[i]), `${node}'s agent exited during the outage`);
        assert.equal(agentGet(nodeOf(s, node).netns, '/healthz').status, 200, `${node} unhealthy during the outage`);
        assert.equal(metric(s, node, 'twill_datastore_up'), 0);
      }
      assert.deepEqual(snapshot(), before, 'the dataplane changed during the outage');
      const retries = NODES.map((n, i) => agentLog(s, n, marks[i]).filter((l) => l.msg.startsWith('datastore unavailable')).length);
      process.stdout.write(`# 'datastore unavailable' lines in 60 s: ${retries.join(', ')}\n`);
      await startEtcd(s);
      const result = await ping.done;
      process.stdout.write(`# outage ping: ${result.output.split('\n').slice(-2).join(' | ')}\n`);
      assert.equal(result.transmitted, 330, result.output);
      assert.equal(result.received, 330, `packets lost during the etcd outage:\n${result.output}`);
    } finally {
      ping.kill();
    }
    // A node joining after etcd came back is wired by the agents that lived through the outage.
    await labAddNode(s, LAB_PATHS, 4);
    const s4 = subnetOf(s, 'node4');
    for (const node of NODES) {
      const ms = await waitUntil(`${node} to route to node4's subnet`, 30_000, () =>
        dataplane(nodeOf(s, node).netns).routes.includes(`${s4} via ${s4.split('/')[0]} dev twill.1 proto 84 onlink`),
      );
      process.stdout.write(`# ${node} picked up node4 ${ms} ms after it joined\n`);
    }
    assert.ok(podPing(s, 'node1-pod1', podIp(s, 'node4-pod1')));
    assert.ok(podPing(s, 'node4-pod1', podIp(s, 'node3-pod1')));
  });

  it('catches up after a partition from etcd: a node that left meanwhile is removed once healed', { timeout: 180_000 }, async () => {
    const s = state();
    const n1 = nodeOf(s, 'node1').netns;
    const s3 = subnetOf(s, 'node3');
    const has3 = (node: string) => dataplane(nodeOf(s, node).netns).routes.some((r) => r.startsWith(`${s3} `));
    assert.ok(has3('node1') && has3('node2'));
    // Both directions: node1's agent neither sends to nor hears from etcd (a silent partition, no RST).
    inNs(n1, ['nft', '-f', '-'], [
      'table ip twilltest {',
      '  chain out { type filter hook output priority 0; tcp dport 2379 drop; }',
      '  chain in { type filter hook input priority 0; tcp sport 2379 drop; }',
      '}',
    ].join('\n') + '\n');
    let healed = false;
    const heal = () => {
      if (!healed) inNs(n1, ['nft', 'delete', 'table', 'ip', 'twilltest']);
      healed = true;
    };
    try {
      const t0 = Date.now();
      await stopAgent(s, nodeOf(s, 'node3'), 'SIGTERM');
      const del = etcdctl(s.plan, ['del', '--prefix', leaseKey(s3)]);
      assert.equal(del.stdout.trim(), '1', del.stderr);
      await waitUntil('node2 to remove node3', 10_000, () => !has3('node2'));
      await waitUntil('20 s of partition', 30_000, () => Date.now() - t0 > 20_000, 1000);
      assert.ok(has3('node1'), 'node1 heard of the change through the partition (the test partition leaks)');
      assert.equal(agentGet(n1, '/healthz').status, 200);
      assert.ok(podPing(s, 'node1-pod1', podIp(s, 'node2-pod1')), 'node1 lost its dataplane during the partition');
      heal();
      const ms = await waitUntil('node1 to remove node3 after the partition healed', 45_000, () => !has3('node1'));
      process.stdout.write(`# node1 caught up ${ms} ms after the partition healed\n`);
    } finally {
      heal();
    }
    const want = expectedVxlan(peersOf(s, 'node1', ['node3']));
    const d = dataplane(n1);
    assert.deepEqual([d.routes, d.neigh, d.fdb], [want.routes, want.neigh, want.fdb]);
    assert.deepEqual(agentStatus(s, 'node1').peers.map((p) => p.node).sort(), ['node2', 'node4']);
    assert.ok(podPing(s, 'node1-pod1', podIp(s, 'node4-pod1')));
  });
});
