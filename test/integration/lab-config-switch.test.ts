/**
 * Control plane changes made live in a lab (real etcd, one twilld per node):
 * - a backend switch vxlan -> host-gw -> vxlan on an l2 lab under a 100/s ping between pods on
 *   different nodes: loss per switch under 1 s worth (100 echoes), none after convergence; leases,
 *   TWILL_MTU and the kernel follow without a restart;
 * - a second host started with a node name another host holds is refused (log, /readyz, metric) and the
 *   first keeps its lease;
 * - on an l3 lab, a switch to host-gw reports each peer behind the L3 hop (not-on-underlay) in /status
 *   while peers on the same segment keep working.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentStatus } from '../../src/agent/agent.js';
import { agentArgv, etcdctl, nodePaths, stateDir, type LabState } from '../../src/cli/lab/lab.js';
import {
  LAB_PATHS,
  RESYNC_SECONDS,
  agentGet,
  agentLog,
  agentStatus,
  alive,
  assertConnectivity,
  downLab,
  expectedVxlan,
  hasLink,
  labName,
  leaseKey,
  metric,
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
  type TestLab,
} from './lab-helpers.js';

const NODES = ['node1', 'node2', 'node3'];
/**
 * Echoes per second asked of the switch ping. On a loaded machine ping sends fewer, so the loss
 * budget per switch is one second's worth at the rate measured in the same window (at most 100).
 */
const RATE = 100;

/**
 * `ping -i 0.01` from a pod netns, following the replies as they come: `mark()` is the highest
 * icmp_seq answered so far, `lostIn(a, b)` the echoes with a < seq <= b that got no reply.
 */
function seqPing(netns: string, dst: string) {
  const child = spawn('ip', ['netns', 'exec', netns, 'ping', '-n', '-i', String(1 / RATE), '-W', '1', dst], { stdio: ['ignore', 'pipe', 'pipe'] });
  const received = new Set<number>();
  let highest = 0;
  let rest = '';
  let summary = '';
  child.stdout.on('data', (d: Buffer) => {
    const lines = (rest + d.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) {
      const m = / icmp_seq=(\d+) /.exec(l);
      if (m && l.includes(' bytes from ')) {
        const seq = Number(m[1]);
        received.add(seq);
        if (seq > highest) highest = seq;
      } else if (/packets transmitted/.test(l)) summary = l.trim();
    }
  });
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return {
    mark: (): number => highest,
    lostIn: (a: number, b: number): number => {
      let lost = 0;
      for (let s = a + 1; s <= b; s++) if (!received.has(s)) lost += 1;
      return lost;
    },
    lostSeqs: (a: number, b: number): number[] => {
      const out: number[] = [];
      for (let s = a + 1; s <= b; s++) if (!received.has(s)) out.push(s);
      return out;
    },
    stop: async (): Promise<string> => {
      if (child.exitCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGINT');
        } catch {
          /* gone */
        }
      }
      await closed;
      return summary;
    },
  };
}

function putConfig(state: LabState, backend: Record<string, unknown>): void {
  const r = etcdctl(state.plan, ['put', '/twill/config', JSON.stringify({ ...state.plan.clusterConfig, Backend: backend })]);
  assert.equal(r.status, 0, r.stderr);
}

function lease(state: LabState, node: string): { backendType: string; backendData: Record<string, string>; hostId?: string; publicIP: string } {
  const r = etcdctl(state.plan, ['get', '--print-value-only', leaseKey(subnetOf(state, node))]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim()) as { backendType: string; backendData: Record<string, string>; hostId?: string; publicIP: string };
}

function subnetMtu(state: LabState, node: string): string | undefined {
  return /^TWILL_MTU=(\d+)$/m.exec(readFileSync(nodePaths(state.plan.spec.name, nodeOf(state, node)).subnetFile, 'utf8'))?.[1];
}

/** host-gw routes a node must hold: each peer subnet via the peer's address on eth0. */
function expectedHostGw(peers: Array<{ address: string; subnet: string }>): string[] {
  return peers.map((p) => `${p.subnet} via ${p.address} dev eth0 proto 84`).sort();
}

/** Every node runs `backend`, announces it, has the matching kernel objects and TWILL_MTU, and converged. */
function convergedOn(state: LabState, backend: 'vxlan' | 'host-gw'): boolean {
  for (const node of NODES) {
    const st = agentStatus(state, node);
    if (st.backend !== backend || st.lastReconcile?.converged !== true || st.lastReconcile.errors.length > 0) return false;
    if (lease(state, node).backendType !== backend) return false;
    const netns = nodeOf(state, node).netns;
    const peers = peersOf(state, node);
    if (backend === 'host-gw') {
      if (hasLink(netns, 'twill.1') || subnetMtu(state, node) !== '1500') return false;
      if (twillRoutes(netns).join('\n') !== expectedHostGw(peers).join('\n')) return false;
    } else {
      if (!hasLink(netns, 'twill.1') || subnetMtu(state, node) !== '1450') return false;
      if (twillRoutes(netns).join('\n') !== expectedVxlan(peers).routes.join('\n')) return false;
    }
  }
  return true;
}

describe('twill lab: live config changes (l2, 3 nodes)', { timeout: 900_000 }, () => {
  const name = labName();
  let lab: TestLab | undefined;
  const state = () => (lab as TestLab).state;

  before(async () => {
    lab = await upLab({ nodes: 3, pods: 1, backend: 'vxlan', topology: 'l2' }, name);
    assertConnectivity(lab.state);
  });
  after(() => downLab(name));

  it('vxlan -> host-gw -> vxlan under a 100/s ping: < 1 s of loss per switch, none after convergence, no restart', { timeout: 300_000 }, async () => {
    const s = state();
    const pids = NODES.map((n) => s.pids[`twilld-${n}`]);
    const flows = [
      { label: 'node1-pod1 -> node2-pod1', ping: seqPing(podNetns(s, 'node1-pod1'), podIp(s, 'node2-pod1')) },
      { label: 'node3-pod1 -> node1-pod1', ping: seqPing(podNetns(s, 'node3-pod1'), podIp(s, 'node1-pod1')) },
    ];
    const report: string[] = [];
    let marksOut: unknown = [];
    try {
      await sleep(2000);
      const marks: Array<{ at: string; seq: number[]; t: number }> = [];
      const mark = (at: string) => marks.push({ at, seq: flows.map((f) => f.ping.mark()), t: Date.now() });
      marksOut = marks;
      for (const backend of ['host-gw', 'vxlan'] as const) {
        mark(`switch to ${backend}`);
        putConfig(s, backend === 'host-gw' ? { Type: 'host-gw' } : { Type: 'vxlan' });
        const ms = await waitUntil(`every node to converge on ${backend}`, 60_000, () => convergedOn(s, backend), 250);
        report.push(`converged on ${backend} in ${ms} ms`);
        // Converged plus a margin for echoes in flight; then three quiet seconds that must lose nothing.
        await sleep(1500);
        mark(`${backend} converged`);
        await sleep(3000);
        mark(`${backend} steady`);
      }
      for (const [fi, f] of flows.entries()) {
        for (let i = 0; i + 2 < marks.length; i += 3) {
          const sw = marks[i] as (typeof marks)[number];
          const conv = marks[i + 1] as (typeof marks)[number];
          const steady = marks[i + 2] as (typeof marks)[number];
          const [a, b, c] = [sw.seq[fi] as number, conv.seq[fi] as number, steady.seq[fi] as number];
          const switchLoss = f.ping.lostIn(a, b);
          const steadyLoss = f.ping.lostIn(b, c);
          const rate = (b - a) / ((conv.t - sw.t) / 1000);
          const budget = Math.min(RATE, Math.floor(rate));
          report.push(
            `${f.label}: ${sw.at}: ${switchLoss} echoes lost of ${b - a} sent at ${rate.toFixed(0)}/s (${((switchLoss * 1000) / rate).toFixed(0)} ms of loss); ` +
              `after convergence ${steadyLoss} of ${c - b}; lost icmp_seq ${JSON.stringify(f.ping.lostSeqs(a, c))} (marks ${a}, ${b}, ${c})`,
          );
          assert.ok(c - b >= RATE, `${f.label}: the ping stalled after the ${sw.at} (${c - b} echoes in 3 s)`);
          assert.ok(switchLoss < budget, `${f.label}: ${switchLoss} echoes lost during the ${sw.at} (budget: < 1 s = ${budget} echoes)`);
          assert.equal(steadyLoss, 0, `${f.label}: ${steadyLoss} echoes lost after convergence on ${sw.at}`);
        }
      }
    } finally {
      for (const f of flows) report.push(`${f.label}: ${await f.ping.stop()}`);
      process.stdout.write(report.map((l) => `# ${l}\n`).join(''));
      if (process.env.TWILL_DEBUG_SWITCH) {
        for (const n of NODES) for (const l of agentLog(s, n)) if (/reconciled|republished|peer /.test(l.msg)) process.stdout.write(`# ${n} ${new Date(l.time).toISOString()} ${l.msg} ${JSON.stringify(l.commands ?? '')}\n`);
        process.stdout.write(`# marks ${JSON.stringify(marksOut)}\n`);
      }
    }
    NODES.forEach((n, i) => assert.ok(alive(pids[i]) && s.pids[`twilld-${n}`] === pids[i], `${n}'s agent was restarted`));
    assert.deepEqual(lease(s, 'node1').backendData, { vtepMac: vtepMac(nodeOf(s, 'node1').address), vni: '1' });
    assertConnectivity(s);
  });

  it('a second host started as node1 is refused (log, /readyz, metric); node1 keeps its lease and its pods their traffic', { timeout: 120_000 }, async () => {
    const s = state();
    const first = lease(s, 'node1');
    assert.ok(first.hostId, 'the lease carries a host id');
    const subnet = subnetOf(s, 'node1');
    // The impostor runs in node2's namespace (another address), with its own state directory (another host id).
    const host = nodeOf(s, 'node2');
    const dir = path.join(stateDir(s.plan.spec.name), 'impostor');
    mkdirSync(dir, { recursive: true });
    const argv = agentArgv(LAB_PATHS, s.plan, host, RESYNC_SECONDS);
    const set = (flag: string, value: string) => {
      const i = argv.indexOf(flag);
      assert.ok(i > 0, `agent argv has no ${flag}`);
      argv[i + 1] = value;
    };
    set('--node-name', 'node1');
    set('--subnet-file', path.join(dir, 'subnet.env'));
    set('--cni-socket', '');
    set('--health-listen', '127.0.0.1:9412');
    const child = spawn('nsenter', [`--net=/run/netns/${host.netns}`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const impostor = (urlPath: string) => agentGet(host.netns, urlPath, 9412);
    try {
      await waitUntil('the impostor to be refused', 30_000, () => /held by another host/.test(out), 250);
      const line = out.split('\n').map((l) => { try { return JSON.parse(l) as { level: string; msg: string; err?: string }; } catch { return undefined; } }).find((l) => l?.err?.includes('held by another host'));
      assert.ok(line, out);
      assert.equal(line.level, 'error', 'logged as an error');
      assert.match(line.err ?? '', new RegExp(`node name node1 is held by another host: lease ${subnet.replace(/\./g, '\\.')} of ${nodeOf(s, 'node1').address.replace(/\./g, '\\.')}`));
      const ready = impostor('/readyz');
      assert.equal(ready.status, 503);
      assert.match(ready.body, /^refused: node name node1 is held by another host/);
      const m = /^twill_node_name_conflicts_total (\d+)/m.exec(impostor('/metrics').body);
      assert.ok(m && Number(m[1]) >= 1, 'twill_node_name_conflicts_total counts it');
      await sleep(3000);
      const now = lease(s, 'node1');
      assert.deepEqual(now, first, 'node1\'s lease is untouched');
      assert.equal(subnetOf(s, 'node1'), subnet);
      const st: AgentStatus = agentStatus(s, 'node1');
      assert.equal(st.subnet, subnet);
      assert.equal(agentGet(nodeOf(s, 'node1').netns, '/readyz').status, 200);
      assert.ok(podPing(s, 'node2-pod1', podIp(s, 'node1-pod1')));
      assert.ok(podPing(s, 'node1-pod1', podIp(s, 'node3-pod1')));
      assert.equal(metric(s, 'node1', 'twill_node_name_conflicts_total'), 0);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('close', r));
    }
    assert.equal(lease(s, 'node1').hostId, first.hostId);
  });
});

describe('twill lab: switch to host-gw across an L3 hop (l3, 3 nodes)', { timeout: 600_000 }, () => {
  it('reports each peer behind the hop as not-on-underlay in /status; same-segment peers keep working', { timeout: 400_000 }, async () => {
    const name = labName();
    try {
      const { state: s } = await upLab({ nodes: 3, pods: 1, backend: 'vxlan', topology: 'l3' }, name);
      // l3: node1 and node3 on 192.0.2.0/24, node2 on 198.51.100.0/24.
      assert.equal(nodeOf(s, 'node1').segment, nodeOf(s, 'node3').segment);
      assert.notEqual(nodeOf(s, 'node1').segment, nodeOf(s, 'node2').segment);
      putConfig(s, { Type: 'host-gw' });
      const verdicts = () => NODES.map((n) => `${n}: ${agentStatus(s, n).peers.map((p) => `${p.node}=${p.errorCode ?? 'ok'}`).sort().join(' ')}`).join('; ');
      await waitUntil('every node to run host-gw and announce it', 60_000, () => NODES.every((n) => agentStatus(s, n).backend === 'host-gw' && lease(s, n).backendType === 'host-gw'), 250);
      const want = 'node1: node2=not-on-underlay node3=ok; node2: node1=not-on-underlay node3=not-on-underlay; node3: node1=ok node2=not-on-underlay';
      await waitUntil('the per-peer verdicts', 30_000, () => verdicts() === want, 250).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}: ${verdicts()}`);
      });
      const st = agentStatus(s, 'node1');
      const node2 = st.peers.find((p) => p.node === 'node2');
      assert.match(node2?.error ?? '', /198\.51\.100\.\d+ is not inside this node's underlay 192\.0\.2\.0\/24/);
      assert.equal(st.lastReconcile?.converged, true);
      await waitUntil('twill.1 to go on node1 and node3', 30_000, () => !hasLink(nodeOf(s, 'node1').netns, 'twill.1') && !hasLink(nodeOf(s, 'node3').netns, 'twill.1'));
      assert.deepEqual(twillRoutes(nodeOf(s, 'node1').netns), [`${subnetOf(s, 'node3')} via ${nodeOf(s, 'node3').address} dev eth0 proto 84`]);
      assert.ok(podPing(s, 'node1-pod1', podIp(s, 'node3-pod1')), 'same-segment pods talk over host-gw');
      assert.ok(podPing(s, 'node3-pod1', podIp(s, 'node1-pod1')));
      assert.equal(metric(s, 'node1', 'twill_peer_errors'), 1);
      // And back: vxlan reaches across the hop again.
      putConfig(s, { Type: 'vxlan' });
      await waitUntil('node1 to reach node2 again over vxlan', 60_000, () => podPing(s, 'node1-pod1', podIp(s, 'node2-pod1')), 500);
      await waitUntil('no peer errors on node2', 30_000, () => agentStatus(s, 'node2').peers.every((p) => p.error === undefined), 250);
    } finally {
      downLab(name);
    }
  });
});
