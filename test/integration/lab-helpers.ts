/**
 * Shared helpers for the `twill lab` integration tests: a lab per test (or per describe block)
 * built with the lab library itself (real etcd, one real `twilld` per node netns, pods through
 * twill-cni), always removed by `labDown`, plus readers for the kernel objects the agents own and
 * for the agents' /status, /metrics and logs.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentStatus } from '../../src/agent/agent.js';
import { planProbes, renderMatrix, runProbes, type Probe } from '../../src/cli/lab/connectivity.js';
import { labDown, labUp, nodePaths, type LabPaths, type LabState } from '../../src/cli/lab/lab.js';
import type { LabBackend, LabIpFamily, LabNode, LabTopology } from '../../src/cli/lab/topology.js';
import { formatCidr, parseCidr } from '../../src/net/ipv4.js';
import { ROOT, sh } from './harness.js';

export const LAB_PATHS: LabPaths = {
  root: ROOT,
  agentMain: path.join(ROOT, 'bin/twilld'),
  cniPlugin: path.join(ROOT, 'bin/twill-cni'),
};
/** Resync period of the agents in these tests: hand-made damage is repaired within seconds. */
export const RESYNC_SECONDS = 2;

const created = new Set<string>();
let labCounter = 0;
// Last line of defence (a crash between labUp and the test's finally): labDown is synchronous.
process.on('exit', () => {
  for (const name of created) labDown(name, () => undefined);
});

/** A lab name unique to this test process: `x<pid36><n>` (at most 8 characters). */
export function labName(): string {
  labCounter += 1;
  return `x${process.pid.toString(36)}${labCounter.toString(36)}`.slice(0, 8);
}

export interface TestLab {
  state: LabState;
  /** What labUp printed (warnings, etcd, pods). */
  output: string[];
}

/** Builds a lab with the test resync period; the caller must `downLab` it in a finally. */
export async function upLab(opts: { nodes: number; pods: number; backend: LabBackend; topology: LabTopology; ipFamily?: LabIpFamily }, name = labName()): Promise<TestLab> {
  created.add(name);
  const output: string[] = [];
  const spec = { name, nodes: opts.nodes, pods: opts.pods, backend: opts.backend, topology: opts.topology, network: '10.244.0.0/16', subnetLen: 24, ...(opts.ipFamily ? { ipFamily: opts.ipFamily } : {}) };
  const state = await labUp(spec, LAB_PATHS, (l) => output.push(l), { resyncSeconds: RESYNC_SECONDS });
  await waitConverged(state);
  return { state, output };
}

/**
 * Waits until every agent of the lab is ready, knows every other node as a peer and its last
 * reconcile converged (labUp returns once the leases exist; the agents program each other a moment later).
 */
export async function waitConverged(state: LabState, timeoutMs = 60_000): Promise<void> {
  const want = state.plan.nodes.length - 1;
  for (const node of state.plan.nodes) {
    await waitUntil(`${node.name}'s agent to know its ${want} peers and converge`, timeoutMs, () => {
      if (agentGet(node.netns, '/readyz').status !== 200) return false;
      const st = agentStatus(state, node.name);
      return st.peers.length === want && st.lastReconcile?.converged === true;
    }, 250);
  }
}

export function downLab(lab: TestLab | string | undefined): void {
  if (lab === undefined) return;
  const name = typeof lab === 'string' ? lab : lab.state.plan.spec.name;
  labDown(name, () => undefined);
  created.delete(name);
  const left = sh(['ip', 'netns', 'list']).stdout.split('\n').filter((l) => l.startsWith(`tl-${name}-`));
  assert.deepEqual(left, [], `lab ${name} left namespaces behind`);
}

/** Runs fn on a fresh lab that is always removed. */
export async function withLab<T>(opts: Parameters<typeof upLab>[0], fn: (lab: TestLab) => Promise<T>): Promise<T> {
  const name = labName();
  try {
    return await fn(await upLab(opts, name));
  } finally {
    // labDown works from the netns prefix even when labUp failed half-way.
    downLab(name);
  }
}

export function nodeOf(state: LabState, name: string): LabNode {
  const n = state.plan.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no node ${name} in the lab`);
  return n;
}

export function podIp(state: LabState, pod: string): string {
  const p = state.pods[pod];
  if (!p) throw new Error(`no pod ${pod} in the lab`);
  return p.ip;
}

export function podNetns(state: LabState, pod: string): string {
  const p = state.pods[pod];
  if (!p) throw new Error(`no pod ${pod} in the lab`);
  return p.netns;
}

/** The node's lease subnet (network form, e.g. 10.244.7.0/24) from its subnet file. */
export function subnetOf(state: LabState, node: string): string {
  const text = readFileSync(nodePaths(state.plan.spec.name, nodeOf(state, node)).subnetFile, 'utf8');
  const m = /^TWILL_SUBNET=(\S+)$/m.exec(text);
  const cidr = m?.[1] === undefined ? undefined : parseCidr(m[1], false);
  if (!cidr) throw new Error(`${node}: no TWILL_SUBNET in its subnet file`);
  return formatCidr(cidr);
}

/** The subnet's network address (the vxlan gateway of that node's subnet on the other nodes). */
export function networkAddress(subnet: string): string {
  return subnet.split('/')[0] as string;
}

/** The datastore key of a lease: /twill/subnets/10.244.7.0-24. */
export function leaseKey(subnet: string): string {
  return `/twill/subnets/${subnet.replace('/', '-')}`;
}

/** The VTEP MAC a node must use, computed independently of the backend: 0e:54 + the address octets. */
export function vtepMac(address: string): string {
  return ['0e', '54', ...address.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

/** `ip netns exec NS argv...`, throwing on failure. */
export function inNs(netns: string, argv: string[], input?: string): string {
  const r = sh(['ip', 'netns', 'exec', netns, ...argv], input);
  if (r.status !== 0) throw new Error(`${netns}: ${argv.join(' ')}: ${r.stderr.trim() || `exit ${r.status}`}`);
  return r.stdout;
}

/** The routes Twill's agent owns in the node's main table (proto 84), as `ip -N route` prints them (numbers, not rt_protos names), sorted. */
export function twillRoutes(netns: string, family: 4 | 6 = 4): string[] {
  return inNs(netns, ['ip', '-N', `-${family}`, '-o', 'route', 'show', 'table', 'main'])
    .split('\n')
    .map((l) => l.trim().replace(/\s+/g, ' '))
    .filter((l) => / proto 84( |$)/.test(l))
    .sort();
}

export function hasLink(netns: string, name: string): boolean {
  return sh(['ip', '-n', netns, 'link', 'show', 'dev', name]).status === 0;
}

export interface LinkJson {
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number; local?: string; link?: string; learning?: boolean } };
}

export function linkDetails(netns: string, name: string): LinkJson | undefined {
  const r = sh(['ip', '-n', netns, '-j', '-d', 'link', 'show', 'dev', name]);
  if (r.status !== 0) return undefined;
  return (JSON.parse(r.stdout) as LinkJson[])[0];
}

/** Permanent neighbours on a device: `ip -> lladdr`, sorted by ip. */
export function neighbours(netns: string, dev: string): string[] {
  if (!hasLink(netns, dev)) return [];
  const rows = JSON.parse(inNs(netns, ['ip', '-j', 'neigh', 'show', 'dev', dev])) as Array<{ dst: string; lladdr?: string; state?: string[] }>;
  return rows.filter((r) => r.state?.includes('PERMANENT')).map((r) => `${r.dst} ${r.lladdr ?? '?'}`).sort();
}

/** Unicast FDB entries with a remote (VTEP) destination on a device: `mac dst`, sorted. */
export function fdbEntries(netns: string, dev: string): string[] {
  if (!hasLink(netns, dev)) return [];
  const rows = JSON.parse(inNs(netns, ['bridge', '-j', 'fdb', 'show', 'dev', dev])) as Array<{ mac: string; dst?: string }>;
  return rows.filter((r) => r.dst !== undefined).map((r) => `${r.mac} ${r.dst}`).sort();
}

/** Everything the vxlan/host-gw backends program on a node, for "nothing changed" comparisons. */
export function dataplane(netns: string): { routes: string[]; neigh: string[]; fdb: string[]; link: string } {
  const l = linkDetails(netns, 'twill.1');
  const link = l ? `${l.ifname} mtu ${l.mtu} ${l.address} vni ${l.linkinfo?.info_data?.id} port ${l.linkinfo?.info_data?.port}` : 'none';
  return { routes: twillRoutes(netns), neigh: neighbours(netns, 'twill.1'), fdb: fdbEntries(netns, 'twill.1'), link };
}

/**
 * The routes/neighbours/FDB entries a vxlan node must hold towards `peers` (name -> {address,
 * subnet}): one onlink route via the peer subnet's network address, one permanent neighbour and one
 * FDB entry per peer. `direct` peers get a host-gw route on eth0 instead (DirectRouting).
 */
export function expectedVxlan(peers: Array<{ address: string; subnet: string; direct?: boolean }>): { routes: string[]; neigh: string[]; fdb: string[] } {
  const routes: string[] = [];
  const neigh: string[] = [];
  const fdb: string[] = [];
  for (const p of peers) {
    if (p.direct) {
      routes.push(`${p.subnet} via ${p.address} dev eth0 proto 84`);
      continue;
    }
    const gw = networkAddress(p.subnet);
    routes.push(`${p.subnet} via ${gw} dev twill.1 proto 84 onlink`);
    neigh.push(`${gw} ${vtepMac(p.address)}`);
    fdb.push(`${vtepMac(p.address)} ${p.address}`);
  }
  return { routes: routes.sort(), neigh: neigh.sort(), fdb: fdb.sort() };
}

export function peersOf(state: LabState, node: string, exclude: string[] = []): Array<{ name: string; address: string; subnet: string }> {
  return state.plan.nodes
    .filter((n) => n.name !== node && !exclude.includes(n.name))
    .map((n) => ({ name: n.name, address: n.address, subnet: subnetOf(state, n.name) }));
}

/** GET http://127.0.0.1:<port><urlPath> inside a node netns (the agent listens on the node's loopback, 9402). */
export function agentGet(netns: string, urlPath: string, port = 9402): { status: number; body: string } {
  const script =
    'fetch(process.argv[1]).then(async (r) => { process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })); },' +
    ' (e) => { process.stdout.write(JSON.stringify({ status: 0, body: String(e) })); })';
  const r = spawnSync('nsenter', [`--net=/run/netns/${netns}`, process.execPath, '-e', script, `http://127.0.0.1:${port}${urlPath}`], {
    encoding: 'utf8',
    timeout: 15_000,
    env: { ...process.env, NODE_EXTRA_CA_CERTS: '' },
  });
  try {
    return JSON.parse(r.stdout) as { status: number; body: string };
  } catch {
    return { status: 0, body: `${r.stdout}${r.stderr}` };
  }
}

export function agentStatus(state: LabState, node: string): AgentStatus {
  const r = agentGet(nodeOf(state, node).netns, '/status');
  assert.equal(r.status, 200, `${node} /status: ${r.body}`);
  return JSON.parse(r.body) as AgentStatus;
}

/** One sample of a Prometheus metric (no labels) from a node's /metrics. */
export function metric(state: LabState, node: string, name: string): number {
  const r = agentGet(nodeOf(state, node).netns, '/metrics');
  assert.equal(r.status, 200, `${node} /metrics: ${r.body}`);
  const line = r.body.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${node} /metrics has no ${name}`);
  return Number(line.split(' ')[1]);
}

/** Twill's one log schema (src/agent/log.ts, src/common/json-log.ts). */
export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** ISO 8601, UTC. */
  time: string;
  msg: string;
  [k: string]: unknown;
}

/** The node agent's JSON log lines (its own and the plugin's through its socket), oldest first; `from` skips that many lines. */
export function agentLog(state: LabState, node: string, from = 0): LogLine[] {
  let text = '';
  try {
    text = readFileSync(nodePaths(state.plan.spec.name, nodeOf(state, node)).log, 'utf8');
  } catch {
    return [];
  }
  const out: LogLine[] = [];
  for (const l of text.split('\n').slice(from)) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as LogLine);
    } catch {
      /* a line being written */
    }
  }
  return out;
}

export function logLineCount(state: LabState, node: string): number {
  try {
    return readFileSync(nodePaths(state.plan.spec.name, nodeOf(state, node)).log, 'utf8').split('\n').length - 1;
  } catch {
    return 0;
  }
}

/** Polls until fn is true; returns the milliseconds it took, fails the test with `what` on timeout. */
export async function waitUntil(what: string, timeoutMs: number, fn: () => boolean, stepMs = 200): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (fn()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** Waits for `n` more reconcile passes (periodic resyncs included) on a node; returns the last status. */
export async function waitReconciles(state: LabState, node: string, n: number): Promise<AgentStatus> {
  let last = agentStatus(state, node).lastReconcile?.at ?? '';
  let seen = 0;
  let status: AgentStatus | undefined;
  await waitUntil(`${n} reconciles on ${node}`, (n + 2) * RESYNC_SECONDS * 1000 + 10_000, () => {
    status = agentStatus(state, node);
    const at = status.lastReconcile?.at ?? '';
    if (at !== last) {
      last = at;
      seen += 1;
    }
    return seen >= n;
  }, 250);
  return status as AgentStatus;
}

/** Runs the lab's connectivity probes (optionally a subset) and asserts every one passed. */
export function assertConnectivity(state: LabState, keep: (p: Probe) => boolean = () => true): number {
  const probes = planProbes(state).filter(keep);
  assert.ok(probes.length > 0, 'no probes planned');
  const results = runProbes(probes);
  const failed = results.filter((r) => !r.icmp || r.tcpOk === false);
  assert.equal(failed.length, 0, `connectivity failures:\n${renderMatrix(results).join('\n')}`);
  return results.length;
}

/** One ICMP echo from a pod: true when a reply came back (two tries, for first-packet ARP). */
export function podPing(state: LabState, fromPod: string, dst: string): boolean {
  for (let i = 0; i < 2; i++) {
    if (sh(['ip', 'netns', 'exec', podNetns(state, fromPod), 'ping', '-c', '1', '-W', '2', dst]).status === 0) return true;
  }
  return false;
}

export interface PingSummary {
  transmitted: number;
  received: number;
  lossPercent: number;
  output: string;
}

/**
 * A continuous ping from a netns, in the background (the test keeps running): `count` echoes every
 * `intervalS` seconds, each waiting at most 1 s. Resolves with ping's own summary.
 */
export function backgroundPing(netns: string, dst: string, count: number, intervalS: number): { done: Promise<PingSummary>; kill: () => void } {
  const child = spawn('ip', ['netns', 'exec', netns, 'ping', '-q', '-n', '-i', String(intervalS), '-c', String(count), '-W', '1', dst], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const done = new Promise<PingSummary>((resolve) => {
    child.on('close', () => {
      const m = /(\d+) packets transmitted, (\d+) (?:packets )?received.*?(\d+(?:\.\d+)?)% packet loss/s.exec(output);
      resolve({
        transmitted: Number(m?.[1] ?? 0),
        received: Number(m?.[2] ?? 0),
        lossPercent: m ? Number(m[3]) : 100,
        output: output.trim(),
      });
    });
  });
  return {
    done,
    kill: () => {
      if (child.exitCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    },
  };
}

/** Is the process alive? */
export function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
