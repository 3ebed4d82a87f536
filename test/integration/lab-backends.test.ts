/**
 * The node agent end to end, one backend per lab: `twill lab` builds 3 node namespaces on an
 * underlay (l2: one segment; l3: two segments behind a router), a real etcd and one real `twilld`
 * per node; pods come from twill-cni. Each case checks the full connectivity matrix and the exact
 * kernel objects the agents own (flannel's layout: twill.1, proto 84 routes, neighbours, FDB).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  agentLog,
  agentStatus,
  assertConnectivity,
  dataplane,
  expectedVxlan,
  hasLink,
  linkDetails,
  metric,
  nodeOf,
  peersOf,
  podIp,
  podPing,
  subnetOf,
  twillRoutes,
  waitReconciles,
  withLab,
} from './lab-helpers.js';

const TIMEOUT = 180_000;

describe('twill lab: backends', { timeout: 600_000 }, () => {
  it('vxlan on l2: full matrix, twill.1, one onlink route + neighbour + FDB per peer, an idle resync writes nothing', { timeout: TIMEOUT }, async () => {
    await withLab({ nodes: 3, pods: 2, backend: 'vxlan', topology: 'l2' }, async ({ state }) => {
      // The lab's probe plan: 6 pods x (one pod per node + every node address), minus the 3 self-probes = 33.
      assert.equal(assertConnectivity(state), 33);
      for (const node of state.plan.nodes) {
        const link = linkDetails(node.netns, 'twill.1');
        assert.ok(link, `${node.name} has no twill.1`);
        assert.equal(link.linkinfo?.info_kind, 'vxlan');
        assert.equal(link.linkinfo?.info_data?.id, 1, 'VNI');
        assert.equal(link.linkinfo?.info_data?.port, 8472, 'dstport');
        assert.equal(link.linkinfo?.info_data?.local, node.address);
        assert.equal(link.linkinfo?.info_data?.learning, false);
        assert.equal(link.mtu, 1450);
        assert.ok(link.flags.includes('UP'));
        const want = expectedVxlan(peersOf(state, node.name));
        const have = dataplane(node.netns);
        assert.deepEqual(have.routes, want.routes, `${node.name} routes`);
        assert.deepEqual(have.neigh, want.neigh, `${node.name} neighbours`);
        assert.deepEqual(have.fdb, want.fdb, `${node.name} FDB`);
        const st = agentStatus(state, node.name);
        assert.equal(st.phase, 'running');
        assert.equal(st.subnet, subnetOf(state, node.name));
        assert.equal(st.backend, 'vxlan');
        assert.deepEqual(st.peers.map((p) => p.node).sort(), peersOf(state, node.name).map((p) => p.name).sort());
        assert.ok(st.peers.every((p) => p.error === undefined), JSON.stringify(st.peers));
      }
      // A resync over a converged kernel writes nothing: two more passes, zero changes, counter flat.
      const before = metric(state, 'node1', 'twill_reconcile_changes_total');
      const st = await waitReconciles(state, 'node1', 2);
      assert.equal(st.lastReconcile?.changes, 0);
      assert.equal(st.lastReconcile?.converged, true);
      assert.equal(metric(state, 'node1', 'twill_reconcile_changes_total'), before);
      assert.deepEqual(dataplane(nodeOf(state, 'node1').netns).routes, expectedVxlan(peersOf(state, 'node1')).routes);
    });
  });

  it('host-gw on l2: full matrix, routes via the peer node addresses on eth0, no twill.1', { timeout: TIMEOUT }, async () => {
    await withLab({ nodes: 3, pods: 2, backend: 'host-gw', topology: 'l2' }, async ({ state }) => {
      assert.equal(assertConnectivity(state), 33);
      for (const node of state.plan.nodes) {
        assert.equal(hasLink(node.netns, 'twill.1'), false, `${node.name} has a twill.1 device under host-gw`);
        const want = peersOf(state, node.name).map((p) => `${p.subnet} via ${p.address} dev eth0 proto 84`).sort();
        assert.deepEqual(twillRoutes(node.netns), want, `${node.name} routes`);
        const st = agentStatus(state, node.name);
        assert.equal(st.backend, 'host-gw');
        assert.ok(st.peers.every((p) => p.error === undefined), JSON.stringify(st.peers));
      }
      const st = await waitReconciles(state, 'node2', 1);
      assert.equal(st.lastReconcile?.changes, 0);
    });
  });

  it('vxlan-direct on l3: direct route to the same-segment peer, vxlan to the other segment', { timeout: TIMEOUT }, async () => {
    await withLab({ nodes: 3, pods: 2, backend: 'vxlan-direct', topology: 'l3' }, async ({ state }) => {
      const [n1, n2, n3] = [nodeOf(state, 'node1'), nodeOf(state, 'node2'), nodeOf(state, 'node3')];
      assert.equal(n1.address, '192.0.2.11');
      assert.equal(n2.address, '198.51.100.12');
      assert.equal(n3.address, '192.0.2.13');
      assert.equal(assertConnectivity(state), 33);
      const s2 = subnetOf(state, 'node2');
      const s3 = subnetOf(state, 'node3');
      const routes1 = twillRoutes(n1.netns);
      assert.ok(routes1.includes(`${s3} via 192.0.2.13 dev eth0 proto 84`), `node1 -> node3 is not direct: ${routes1.join('; ')}`);
      assert.ok(routes1.includes(`${s2} via ${s2.split('/')[0]} dev twill.1 proto 84 onlink`), `node1 -> node2 is not vxlan: ${routes1.join('; ')}`);
      // Exactly: node1 and node3 route to each other directly, everything involving node2 is encapsulated.
      for (const node of state.plan.nodes) {
        const peers = peersOf(state, node.name).map((p) => ({ ...p, direct: node.segment === nodeOf(state, p.name).segment }));
        const want = expectedVxlan(peers);
        const have = dataplane(node.netns);
        assert.deepEqual(have.routes, want.routes, `${node.name} routes`);
        assert.deepEqual(have.neigh, want.neigh, `${node.name} neighbours`);
        assert.deepEqual(have.fdb, want.fdb, `${node.name} FDB`);
        assert.match(have.link, /^twill\.1 mtu 1450 /);
      }
    });
  });

  it('host-gw on l3: a warning, the off-segment peer is reported (not-on-underlay), same-segment pods still work', { timeout: TIMEOUT }, async () => {
    await withLab({ nodes: 3, pods: 2, backend: 'host-gw', topology: 'l3' }, async ({ state, output }) => {
      assert.ok(output.some((l) => l.startsWith('warning: host-gw needs L2 adjacency')), output.join('\n'));
      const s1 = subnetOf(state, 'node1');
      const s2 = subnetOf(state, 'node2');
      const s3 = subnetOf(state, 'node3');
      // node1 <-> node3 (one segment) work; all pods still reach every node address (masqueraded).
      assertConnectivity(state, (p) => !p.from.startsWith('node2-') && p.to !== 'node2-pod1');
      assert.ok(podPing(state, 'node1-pod1', podIp(state, 'node3-pod2')));
      assert.ok(podPing(state, 'node3-pod2', podIp(state, 'node1-pod2')));
      // node2's pods are not reachable from node1's (no route there, and none is faked).
      assert.equal(podPing(state, 'node1-pod1', podIp(state, 'node2-pod1')), false);
      assert.deepEqual(twillRoutes(nodeOf(state, 'node1').netns), [`${s3} via 192.0.2.13 dev eth0 proto 84`]);
      assert.deepEqual(twillRoutes(nodeOf(state, 'node3').netns), [`${s1} via 192.0.2.11 dev eth0 proto 84`]);
      assert.deepEqual(twillRoutes(nodeOf(state, 'node2').netns), []);

      const st = agentStatus(state, 'node1');
      const p2 = st.peers.find((p) => p.node === 'node2');
      const p3 = st.peers.find((p) => p.node === 'node3');
      assert.equal(p2?.subnet, s2);
      assert.equal(p2?.errorCode, 'not-on-underlay', JSON.stringify(st.peers));
      assert.match(p2?.error ?? '', /198\.51\.100\.12 is not inside this node's underlay 192\.0\.2\.0\/24/);
      assert.equal(p3?.error, undefined);
      assert.equal(metric(state, 'node1', 'twill_peer_errors'), 1);
      const st2 = agentStatus(state, 'node2');
      assert.deepEqual(st2.peers.map((p) => p.errorCode), ['not-on-underlay', 'not-on-underlay']);

      const warned = agentLog(state, 'node1').filter((l) => l.code === 'not-on-underlay' && l.peer === 'node2');
      assert.ok(warned.length >= 1, 'node1 did not log the unreachable peer');
      // Logged when it appears, not again on every periodic resync.
      await waitReconciles(state, 'node1', 2);
      assert.equal(agentLog(state, 'node1').filter((l) => l.code === 'not-on-underlay' && l.peer === 'node2').length, warned.length);
    });
  });
});
