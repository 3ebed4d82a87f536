/**
 * Control-plane scale benchmark: one real twilld (vxlan) with ~1000 nodes' leases in a real etcd.
 *
 *   node dist/bench/scale.js [--peers 999] [--changes 20] [--starts 3] [--resync 2] [--json]
 *
 * Method. A 1-node lab (`bsc<pid36>`, vxlan, no pods, cluster network 10.192.0.0/12 so that 1000+
 * /24 subnets exist) gives a real etcd in the infra netns and a real agent in the node netns. A
 * writer (this file, `--writer`, started by PID in the infra netns with nsenter) creates the
 * simulated nodes' lease records with the project's EtcdDatastore, values from renderLeaseValue
 * (backend vxlan, vtepMac from vtepMacFor, expiry in 24 h). Simulated public IPs: 198.51.100.0/24,
 * 203.0.113.0/24 and 192.0.2.51-254 first (documentation ranges: 712 addresses), then
 * 100.64.0.0/10 (shared address space) for the rest. They are never sent a packet: they only
 * become FDB entries of twill.1; no pod exists and nothing routes into the simulated subnets.
 * Measured:
 *   burst      all leases written while the agent runs: time from the last write acknowledged
 *              until the kernel holds every route (polled: `ip -n NODE route show proto 84`);
 *   cold start agent stopped, twill.1 deleted (so every route/FDB/neighbour is gone), agent
 *              started: time from the spawn until the kernel holds all routes, FDB entries and
 *              neighbours, plus the agent's own phases from its log (start, lease, first reconcile);
 *   warm start agent restarted with the kernel already programmed: spawn -> "kernel in sync";
 *   change     one lease created (then deleted): time from the write acknowledged (and from the
 *              request sent to the writer) until `ip monitor route` in the node netns shows the
 *              route added (removed); median over --changes;
 *   RSS        VmRSS of the agent after sync and at the end;
 *   reconcile  steady state with all peers: twill_reconcile_duration_seconds (sum/count delta over
 *              periodic resyncs only), and the agent's CPU (own + reaped children) per second.
 * Everything (writer, monitor, lab) is removed in a finally and on SIGINT/SIGTERM/SIGHUP.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { loadavg } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { vtepMacFor } from '../src/backends/vxlan.js';
import { labDown, labUp, nodePaths, startAgent, stopAgent, type LabPaths, type LabState } from '../src/cli/lab/lab.js';
import type { LabNode } from '../src/cli/lab/topology.js';
import { EtcdDatastore } from '../src/datastore/etcd/etcd-store.js';
import { leaseKey, renderLeaseValue } from '../src/model/lease.js';
import { formatCidr, formatIPv4, nthSubnet, parseCidr, parseIPv4, type Cidr } from '../src/net/ipv4.js';
import { runBench } from './run-bench.js';
import { median, percentile } from './stats.js';
import { reconcileMetrics } from './agent-metrics.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '../..');
const PATHS: LabPaths = { root: ROOT, agentMain: path.join(ROOT, 'dist/src/agent/main.js'), cniPlugin: path.join(ROOT, 'bin/twill-cni') };
const NETWORK = '10.192.0.0/12';
const TARGETS = { fullSyncMs: 2000, rssMb: 150 };

function fail(msg: string): never {
  process.stderr.write(`scale: ${msg}\n`);
  process.exit(2);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;


function run(argv: readonly string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

// ---------------------------------------------------------------------------------------------
// writer: runs in the infra netns; one JSON request per stdin line, one JSON answer per line.

interface WriteRequest {
  id: number;
  create?: Array<[string, string]>;
  delete?: string[];
}

async function writer(endpoint: string): Promise<void> {
  const store = new EtcdDatastore({ endpoints: [endpoint] });
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line.trim() === '') continue;
    const req = JSON.parse(line) as WriteRequest;
    try {
      const jobs: Array<() => Promise<unknown>> = [
        ...(req.create ?? []).map(([k, v]) => () => store.create(k, v)),
        ...(req.delete ?? []).map((k) => () => store.delete(k)),
      ];
      // 64 requests in flight: fast, without one gRPC call per key at once.
      let next = 0;
      await Promise.all(Array.from({ length: Math.min(64, jobs.length) }, async () => {
        while (next < jobs.length) await (jobs[next++] as () => Promise<unknown>)();
      }));
      process.stdout.write(`${JSON.stringify({ id: req.id, ok: true })}\n`);
    } catch (e) {
      process.stdout.write(`${JSON.stringify({ id: req.id, ok: false, error: (e as Error).message })}\n`);
    }
  }
  await store.close();
}

class WriterClient {
  private readonly waiting = new Map<number, (ok: { ok: boolean; error?: string }) => void>();
  private nextId = 1;
  constructor(readonly child: ChildProcess) {
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    rl.on('line', (l) => {
      try {
        const r = JSON.parse(l) as { id: number; ok: boolean; error?: string };
        this.waiting.get(r.id)?.(r);
        this.waiting.delete(r.id);
      } catch {
        /* not ours */
      }
    });
  }

  async send(req: Omit<WriteRequest, 'id'>): Promise<void> {
    const id = this.nextId++;
    const done = new Promise<{ ok: boolean; error?: string }>((resolve) => this.waiting.set(id, resolve));
    this.child.stdin?.write(`${JSON.stringify({ ...req, id })}\n`);
    const r = await done;
    if (!r.ok) throw new Error(`writer: ${r.error ?? 'failed'}`);
  }
}

// ---------------------------------------------------------------------------------------------
// simulated nodes

interface SimNode {
  name: string;
  subnet: Cidr;
  publicIP: string;
  key: string;
  value: string;
}

/** Public IPs: documentation ranges first (712), then 100.64.0.0/10 (config data only, never contacted). */
function publicIps(n: number): { ips: string[]; documentation: number } {
  const ips: string[] = [];
  for (let i = 1; i <= 254; i++) ips.push(`198.51.100.${i}`);
  for (let i = 1; i <= 254; i++) ips.push(`203.0.113.${i}`);
  for (let i = 51; i <= 254; i++) ips.push(`192.0.2.${i}`); // lab nodes are .11-.50
  const documentation = ips.length;
  const base = parseIPv4('100.64.0.1') as number;
  for (let i = 0; ips.length < n; i++) ips.push(formatIPv4(base + i));
  return { ips: ips.slice(0, n), documentation: Math.min(n, documentation) };
}

function simNodes(n: number, own: Cidr): SimNode[] {
  const net = parseCidr(NETWORK) as Cidr;
  const { ips } = publicIps(n);
  const out: SimNode[] = [];
  const expiresAt = Date.now() + 24 * 3600 * 1000;
  for (let s = 1; out.length < n; s++) {
    const subnet = nthSubnet(net, 24, s) as Cidr;
    if (subnet.network === own.network) continue;
    const i = out.length;
    const publicIP = ips[i] as string;
    const name = `sim-${i + 1}`;
    const value = renderLeaseValue({
      subnet,
      nodeName: name,
      publicIP,
      backendType: 'vxlan',
      backendData: { vtepMac: vtepMacFor(parseIPv4(publicIP) as number), vni: '1' },
      expiresAt,
    });
    out.push({ name, subnet, publicIP, key: leaseKey(subnet), value });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// kernel and agent probes

function counts(netns: string): { routes: number; fdb: number; neigh: number } {
  const routes = run(['ip', '-n', netns, 'route', 'show', 'proto', '84']).stdout.split('\n').filter((l) => l.includes('dev twill.1')).length;
  const fdb = run(['bridge', '-n', netns, 'fdb', 'show', 'dev', 'twill.1']).stdout.split('\n').filter((l) => l.includes(' dst ')).length;
  const neigh = run(['ip', '-n', netns, 'neigh', 'show', 'dev', 'twill.1']).stdout.split('\n').filter((l) => l.includes('PERMANENT')).length;
  return { routes, fdb, neigh };
}

function routeCount(netns: string): number {
  return run(['ip', '-n', netns, 'route', 'show', 'proto', '84']).stdout.split('\n').filter((l) => l.includes('dev twill.1')).length;
}

/** Polls until the node has `n` peer routes; returns ms since `t0` (nowMs clock). */
async function waitRoutes(netns: string, n: number, t0: number, timeoutMs: number): Promise<number> {
  const end = t0 + timeoutMs;
  while (nowMs() < end) {
    if (routeCount(netns) >= n) return nowMs() - t0;
    await sleep(10);
  }
  throw new Error(`timed out: ${netns} has ${routeCount(netns)} of ${n} routes`);
}

/** VmRSS (or, with `field` VmHWM, the peak RSS) of a process, in MB. */
function rssMb(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU seconds of the process: own (utime+stime) and reaped children (cutime+cstime). */
function cpuSeconds(pid: number): { own: number; children: number } {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { own: (Number(f[11]) + Number(f[12])) / 100, children: (Number(f[13]) + Number(f[14])) / 100 };
}

interface LogLine {
  time: number;
  msg: string;
  reason?: string;
  ms?: number;
  changes?: number;
  peers?: number;
}

function logSince(file: string, sinceEpochMs: number): LogLine[] {
  const out: LogLine[] = [];
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      const raw = JSON.parse(l) as Omit<LogLine, 'time'> & { time: string | number };
      // Twill's log schema writes ISO 8601 times; this benchmark computes in epoch milliseconds.
      const j: LogLine = { ...raw, time: typeof raw.time === 'string' ? Date.parse(raw.time) : raw.time };
      if (j.time >= sinceEpochMs) out.push(j);
    } catch {
      /* partial line */
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// outer process

interface Options {
  peers: number;
  changes: number;
  starts: number;
  resync: number;
  json: boolean;
}

const children: ChildProcess[] = [];
let labName: string | undefined;
let cleaned = false;

function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  for (const c of children) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  if (labName) labDown(labName, () => undefined);
}

async function main(o: Options): Promise<void> {
  if (process.getuid?.() !== 0) fail('needs root (network namespaces)');
  for (const f of [PATHS.agentMain, PATHS.cniPlugin]) if (!existsSync(f)) fail(`${f} is missing: npm run build`);
  const log = (line: string): void => {
    if (!o.json) process.stdout.write(`${line}\n`);
  };
  const loadBefore = loadavg();
  labName = `bsc${process.pid.toString(36)}`.slice(0, 8);
  log(`lab ${labName}: 1 node, vxlan, network ${NETWORK}, resync ${o.resync} s ...`);
  const state: LabState = await labUp({ name: labName, nodes: 1, pods: 0, backend: 'vxlan', topology: 'l2', network: NETWORK, subnetLen: 24 }, PATHS, () => undefined, { resyncSeconds: o.resync });
  const node = state.plan.nodes[0] as LabNode;
  const logFile = nodePaths(labName, node).log;
  const ownText = /TWILL_SUBNET=(\S+)/.exec(readFileSync(nodePaths(labName, node).subnetFile, 'utf8'))?.[1] ?? '';
  const ownCidr = parseCidr(ownText) as Cidr;
  const own: Cidr = { network: ownCidr.network & ~0xff, prefix: 24 };
  const all = simNodes(o.peers + o.changes, own);
  const peers = all.slice(0, o.peers);
  const extra = all.slice(o.peers);
  const { documentation } = publicIps(o.peers + o.changes);
  log(`node1 ${node.address} subnet ${formatCidr(own)}; ${o.peers} simulated peers + ${o.changes} for changes; public IPs: ${documentation} from documentation ranges, ${o.peers + o.changes - documentation} from 100.64.0.0/10 (never contacted)`);

  const wchild = spawn('nsenter', [`--net=/run/netns/${state.plan.infraNetns}`, process.execPath, SELF, '--writer', state.plan.etcdClientUrl], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(wchild);
  const w = new WriterClient(wchild);

  // Burst: every lease written while the agent runs.
  let t0 = nowMs();
  await w.send({ create: peers.map((p) => [p.key, p.value]) });
  const writeMs = nowMs() - t0;
  const tAck = nowMs();
  const burstMs = await waitRoutes(node.netns, o.peers, tAck, 120_000);
  const burstCounts = counts(node.netns);
  log(`burst: ${o.peers} leases written in ${writeMs.toFixed(0)} ms; kernel complete ${burstMs.toFixed(0)} ms after the last ack (${JSON.stringify(burstCounts)})`);
  await sleep(1000);
  let pid = state.pids[`twilld-${node.name}`] as number;
  const rssAfterBurst = rssMb(pid);

  // Cold starts: no twill.1, nothing programmed.
  const cold: Array<{ totalMs: number; toStartLogMs: number; toLeaseMs: number; reconcileMs: number; firstReconcileEndMs: number; rssMb: number }> = [];
  for (let i = 0; i < o.starts; i++) {
    await stopAgent(state, node);
    run(['ip', '-n', node.netns, 'link', 'del', 'twill.1']);
    if (routeCount(node.netns) !== 0) throw new Error('routes left after deleting twill.1');
    const epoch0 = Date.now();
    t0 = nowMs();
    pid = startAgent(state, PATHS, node, o.resync);
    const totalMs = await waitRoutes(node.netns, o.peers, t0, 60_000);
    const c = counts(node.netns);
    if (c.fdb < o.peers || c.neigh < o.peers) throw new Error(`cold start: routes complete but ${JSON.stringify(c)}`);
    await sleep(1500);
    const lines = logSince(logFile, epoch0);
    const at = (msg: string, pred: (l: LogLine) => boolean = () => true): LogLine | undefined => lines.find((l) => l.msg === msg && pred(l));
    const rec = at('reconciled', (l) => l.reason === 'initial sync');
    const r = {
      totalMs,
      toStartLogMs: (at('twilld starting')?.time ?? NaN) - epoch0,
      toLeaseMs: (at('subnet lease held')?.time ?? NaN) - epoch0,
      reconcileMs: rec?.ms ?? NaN,
      firstReconcileEndMs: (rec?.time ?? NaN) - epoch0,
      rssMb: rssMb(pid),
    };
    cold.push(r);
    log(`cold start ${i + 1}: kernel complete ${totalMs.toFixed(0)} ms after spawn (log: 'starting' +${r.toStartLogMs} ms, lease +${r.toLeaseMs} ms, first reconcile ${r.reconcileMs} ms, done +${r.firstReconcileEndMs} ms); RSS ${r.rssMb.toFixed(0)} MB`);
  }

  // Warm starts: the kernel already matches; the agent must adopt it with zero writes.
  const warm: Array<{ inSyncMs: number; reconcileMs: number; changes: number }> = [];
  for (let i = 0; i < o.starts; i++) {
    await stopAgent(state, node);
    const epoch0 = Date.now();
    pid = startAgent(state, PATHS, node, o.resync);
    let line: LogLine | undefined;
    for (let k = 0; k < 300 && !line; k++) {
      await sleep(50);
      line = logSince(logFile, epoch0).find((l) => l.reason === 'initial sync' && (l.msg === 'kernel in sync' || l.msg === 'reconciled'));
    }
    if (!line) throw new Error('warm start: no initial sync in the log');
    warm.push({ inSyncMs: line.time - epoch0, reconcileMs: line.ms ?? NaN, changes: line.changes ?? NaN });
    log(`warm start ${i + 1}: '${line.msg}' +${line.time - epoch0} ms after spawn (reconcile ${line.ms} ms, ${line.changes} changes)`);
  }
  await sleep(1000);
  const rssAfterSync = rssMb(pid);

  // Steady state: periodic resyncs only.
  const m0 = reconcileMetrics(node.netns);
  const c0 = cpuSeconds(pid);
  const s0 = nowMs();
  await sleep(Math.max(10, o.resync * 6) * 1000);
  const m1 = reconcileMetrics(node.netns);
  const c1 = cpuSeconds(pid);
  const span = (nowMs() - s0) / 1000;
  const steady = {
    passes: m1.count - m0.count,
    meanMs: ((m1.sum - m0.sum) / Math.max(1, m1.count - m0.count)) * 1000,
    cpuOwnPct: (100 * (c1.own - c0.own)) / span,
    cpuChildrenPct: (100 * (c1.children - c0.children)) / span,
  };
  log(`steady state: ${steady.passes} periodic reconciles in ${span.toFixed(0)} s, mean ${steady.meanMs.toFixed(0)} ms; agent CPU ${steady.cpuOwnPct.toFixed(1)} % + children ${steady.cpuChildrenPct.toFixed(1)} %`);

  // Changes: one lease added, then removed; `ip monitor route` shows when the kernel has it.
  const mon = spawn('ip', ['-n', node.netns, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(mon);
  const seen: Array<{ line: string; t: number }> = [];
  createInterface({ input: mon.stdout }).on('line', (l) => seen.push({ line: l, t: nowMs() }));
  await sleep(300);
  const add: Array<{ fromAck: number; fromSend: number }> = [];
  const del: Array<{ fromAck: number; fromSend: number }> = [];
  const waitLine = async (prefix: string, since: number): Promise<number> => {
    for (let k = 0; k < 2000; k++) {
      const hit = seen.find((s) => s.t >= since && s.line.startsWith(prefix));
      if (hit) return hit.t;
      await sleep(2);
    }
    throw new Error(`no '${prefix}' from ip monitor`);
  };
  for (const x of extra) {
    const subnet = formatCidr(x.subnet);
    for (const op of ['add', 'del'] as const) {
      const tSend = nowMs();
      await w.send(op === 'add' ? { create: [[x.key, x.value]] } : { delete: [x.key] });
      const tAck2 = nowMs();
      const tSeen = await waitLine(op === 'add' ? `${subnet} via` : `Deleted ${subnet} via`, tSend);
      (op === 'add' ? add : del).push({ fromAck: tSeen - tAck2, fromSend: tSeen - tSend });
      // A random phase against the periodic resync, and room for the reconcile to finish.
      await sleep(300 + Math.floor(Math.random() * 400));
    }
  }
  log(`lease change -> route: add median ${median(add.map((a) => a.fromAck)).toFixed(0)} ms (p90 ${percentile(add.map((a) => a.fromAck), 0.9).toFixed(0)}), delete median ${median(del.map((a) => a.fromAck)).toFixed(0)} ms; from request sent: ${median(add.map((a) => a.fromSend)).toFixed(0)} / ${median(del.map((a) => a.fromSend)).toFixed(0)} ms`);
  const rssEnd = rssMb(pid);
  const rssPeak = rssMb(pid, 'VmHWM');
  const loadAfter = loadavg();

  const report = {
    peers: o.peers,
    documentationIps: documentation,
    burst: { writeMs, kernelCompleteAfterAckMs: burstMs, counts: burstCounts },
    coldStart: { medianMs: median(cold.map((c) => c.totalMs)), runs: cold },
    warmStart: { medianMs: median(warm.map((c) => c.inSyncMs)), runs: warm },
    change: {
      addMedianMs: median(add.map((a) => a.fromAck)),
      addP90Ms: percentile(add.map((a) => a.fromAck), 0.9),
      delMedianMs: median(del.map((a) => a.fromAck)),
      addFromSendMedianMs: median(add.map((a) => a.fromSend)),
      add,
      del,
    },
    rssMb: { afterBurst: rssAfterBurst, afterSync: rssAfterSync, end: rssEnd, peakOfLastAgent: rssPeak },
    steady,
    loadavg: { before: loadBefore, after: loadAfter },
    targets: TARGETS,
  };
  if (o.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const f0 = (x: number): string => x.toFixed(0);
  const rows: string[][] = [
    ['measure', `value (${o.peers} peers)`, 'target'],
    ['full sync, cold start (spawn -> all routes/FDB/neigh), median', `${f0(report.coldStart.medianMs)} ms (${cold.map((c) => f0(c.totalMs)).join(', ')})`, `< ${TARGETS.fullSyncMs} ms`],
    ['  of which: first reconcile pass (agent log)', `${f0(median(cold.map((c) => c.reconcileMs)))} ms`, ''],
    ['  of which: spawn -> lease held (node start, etcd, lease)', `${f0(median(cold.map((c) => c.toLeaseMs)))} ms`, ''],
    ['full sync, burst (all leases written live -> all routes)', `${f0(burstMs)} ms after the last ack (writes took ${f0(writeMs)} ms)`, ''],
    ['warm start (kernel already programmed) -> kernel in sync', `${f0(report.warmStart.medianMs)} ms`, ''],
    ['lease added -> route in kernel, median (p90)', `${f0(report.change.addMedianMs)} ms (${f0(report.change.addP90Ms)} ms)`, ''],
    ['lease deleted -> route gone, median', `${f0(report.change.delMedianMs)} ms`, ''],
    ['agent RSS after sync / at the end / peak (VmHWM)', `${report.rssMb.afterSync.toFixed(0)} / ${rssEnd.toFixed(0)} / ${rssPeak.toFixed(0)} MB (first agent, after the burst: ${rssAfterBurst.toFixed(0)} MB)`, `< ${TARGETS.rssMb} MB`],
    ['steady-state reconcile (twill_reconcile_duration_seconds)', `${steady.meanMs.toFixed(0)} ms mean over ${steady.passes} passes`, ''],
    ['steady-state agent CPU (own + ip/bridge/nft children)', `${steady.cpuOwnPct.toFixed(1)} % + ${steady.cpuChildrenPct.toFixed(1)} % of one core (resync ${o.resync} s)`, ''],
  ];
  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  log('');
  for (const r of rows) log(`| ${r.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`);
  log('');
  log(`load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}`);
}

// ---------------------------------------------------------------------------------------------

const { values } = parseArgs({
  options: {
    peers: { type: 'string', default: '999' },
    changes: { type: 'string', default: '20' },
    starts: { type: 'string', default: '3' },
    resync: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
    writer: { type: 'string' },
  },
  strict: true,
});

if (values.writer !== undefined) {
  await writer(values.writer);
} else {
  const o: Options = {
    peers: Number(values.peers),
    changes: Number(values.changes),
    starts: Number(values.starts),
    resync: Number(values.resync),
    json: values.json ?? false,
  };
  if (![o.peers, o.changes, o.starts, o.resync].every((x) => Number.isInteger(x) && x > 0)) fail('--peers, --changes, --starts, --resync: positive integers');
  if (o.peers + o.changes > 4000) fail('--peers + --changes: at most 4000 (subnets of 10.192.0.0/12)');
  await runBench('scale', () => main(o), cleanup);
}
