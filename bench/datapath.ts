/**
 * Datapath benchmark: pod->pod across two lab nodes vs node->node on the same underlay, per backend,
 * measured in the same run and interleaved, next to the hand-built ceilings of
 * docs datapath-ceilings.md.
 *
 *   node dist/bench/datapath.js [--backends host-gw,vxlan,vxlan-direct] [--reps 3] [--seconds 5]
 *                               [--rr-count 3000] [--ping-count 200] [--json]
 *
 * Method. One 2-node lab (l2, 1 pod per node, real etcd and twilld) per backend, all up at once
 * (lab names `b<backend><pid36>`). In node 2 and in node 2's pod: an iperf3 server and a TCP echo
 * server (this file, `--rr-server`), started by PID with `nsenter --net=`. Clients run in node 1 /
 * node 1's pod the same way. Every repetition goes over all backends (rotating which goes first)
 * and, per backend, runs each test on the pod path and the node path back to back (alternating
 * which goes first), so pod and node numbers of a pair share the same machine load:
 *   - iperf3 TCP, 1 stream (-P1) and 4 streams (-P4), `--seconds` each (+1 s omitted warm-up);
 *   - TCP request/response: one connection, 32-byte request echoed back, N sequential round trips
 *     (TCP_NODELAY), timed in the client; transactions/s = 1 / mean round trip. Both ends are Node,
 *     so every round trip carries the same ~user-space cost on both paths (it dilutes the ratio
 *     towards 1: read the absolute µs too);
 *   - ICMP echo (`ping -i 0.01`), answered in the kernel: the datapath's own round trip.
 * Reported: medians over the repetitions, pod/node ratios (throughput: pod/node; latency: node/pod,
 * i.e. transactions/s pod over node), and the same ratio divided by the hand-built ceiling.
 * Everything (servers, labs) is removed in a finally and on SIGINT/SIGTERM/SIGHUP.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { loadavg } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { labDown, labUp, type LabPaths, type LabState } from '../src/cli/lab/lab.js';
import type { LabBackend } from '../src/cli/lab/topology.js';
import { runBench } from './run-bench.js';
import { median } from './stats.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '../..');
const PATHS: LabPaths = { root: ROOT, agentMain: path.join(ROOT, 'dist/src/agent/main.js'), cniPlugin: path.join(ROOT, 'bin/twill-cni') };
const IPERF_PORT = 5201;
const RR_PORT = 5300;
const RR_SIZE = 32;

/** Hand-built ratios (pod/node) from datapath-ceilings.md: P1 throughput and TCP request/response. */
const CEILING: Record<LabBackend, { label: string; p1: number; rr: number }> = {
  'host-gw': { label: 'host-gw, bridge pods', p1: 0.79, rr: 0.88 },
  vxlan: { label: 'vxlan, MTU 1450', p1: 0.63, rr: 0.81 },
  // On one L2 segment every peer gets the host-gw route: the same datapath as host-gw.
  'vxlan-direct': { label: 'host-gw, bridge pods (direct routes on l2)', p1: 0.79, rr: 0.88 },
};
/** Targets of issue 4 (pod/node P1). */
const TARGET: Record<LabBackend, number> = { 'host-gw': 0.95, vxlan: 0.8, 'vxlan-direct': 0.95 };
const SHORT: Record<LabBackend, string> = { 'host-gw': 'hg', vxlan: 'vx', 'vxlan-direct': 'vd' };

type Path = 'pod' | 'node';
type Test = 'p1' | 'p4' | 'rr' | 'ping';
const TESTS: readonly Test[] = ['p1', 'p4', 'rr', 'ping'];

interface Endpoints {
  backend: LabBackend;
  lab: string;
  /** Source netns and target address per path; servers run in the target netns. */
  src: Record<Path, string>;
  dstNs: Record<Path, string>;
  dst: Record<Path, string>;
}

interface Samples {
  /** Gbit/s (p1, p4) or µs (rr: mean round trip; ping: avg rtt). */
  [key: string]: number[];
}

function fail(msg: string): never {
  process.stderr.write(`datapath: ${msg}\n`);
  process.exit(2);
}


function run(argv: readonly string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' });
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function runAsync(argv: readonly string[], timeoutMs: number): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// TCP request/response: both ends are this file, started inside a netns by nsenter.

function rrServer(port: number): void {
  const server = createServer((sock) => {
    sock.setNoDelay(true);
    sock.on('data', (d) => sock.write(d));
    sock.on('error', () => undefined);
  });
  server.listen(port, '0.0.0.0');
}

function rrClient(host: string, port: number, count: number, warmup: number): void {
  const sock = createConnection({ host, port });
  sock.setNoDelay(true);
  const req = Buffer.alloc(RR_SIZE, 0x61);
  const times: number[] = [];
  let got = 0;
  let t0 = 0n;
  let n = 0;
  const send = (): void => {
    got = 0;
    t0 = process.hrtime.bigint();
    sock.write(req);
  };
  sock.on('connect', send);
  sock.on('data', (d) => {
    got += d.length;
    if (got < RR_SIZE) return;
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    n += 1;
    if (n > warmup) times.push(us);
    if (n < count + warmup) send();
    else {
      sock.destroy();
      const mean = times.reduce((a, b) => a + b, 0) / times.length;
      process.stdout.write(`${JSON.stringify({ n: times.length, meanUs: mean, medianUs: median(times) })}\n`);
    }
  });
  sock.on('error', (e) => fail(`rr client: ${e.message}`));
}

// ---------------------------------------------------------------------------------------------
// outer process

interface Options {
  backends: LabBackend[];
  reps: number;
  seconds: number;
  rrCount: number;
  pingCount: number;
  json: boolean;
}

const servers: ChildProcess[] = [];
const labs: string[] = [];
let cleaned = false;

function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  for (const s of servers) {
    if (s.pid !== undefined && s.exitCode === null) {
      try {
        process.kill(s.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const name of labs) labDown(name, () => undefined);
}

function startServer(netns: string, argv: string[]): void {
  const child = spawn('nsenter', [`--net=/run/netns/${netns}`, ...argv], { stdio: 'ignore' });
  child.on('error', () => undefined);
  servers.push(child);
}

async function waitPing(ns: string, dst: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if ((await runAsync(['ip', 'netns', 'exec', ns, 'ping', '-c1', '-W1', '-q', dst], 3000)).status === 0) return;
    await sleep(300);
  }
  throw new Error(`${ns} cannot reach ${dst}`);
}

/** Waits until something listens on `port` in `ns` (ss; a probe connection would upset iperf3). */
async function waitListen(ns: string, port: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const r = await runAsync(['ip', 'netns', 'exec', ns, 'ss', '-Hltn', `sport = :${port}`], 3000);
    if (r.status === 0 && r.stdout.trim() !== '') return;
    await sleep(100);
  }
  throw new Error(`${ns}: nothing listens on port ${port}`);
}

async function iperf(ns: string, dst: string, streams: number, seconds: number): Promise<number> {
  const argv = ['nsenter', `--net=/run/netns/${ns}`, 'iperf3', '-c', dst, '-p', String(IPERF_PORT), '-t', String(seconds), '-O', '1', '-P', String(streams), '-J'];
  for (let attempt = 0; ; attempt++) {
    const r = await runAsync(argv, (seconds + 20) * 1000);
    try {
      const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
      const bps = j.end?.sum_received?.bits_per_second;
      if (typeof bps === 'number') return bps / 1e9;
      if (attempt >= 2) throw new Error(j.error ?? 'no result');
    } catch (e) {
      if (attempt >= 2) throw new Error(`iperf3 ${ns} -> ${dst}: ${(e as Error).message} ${r.stderr.trim()}`);
    }
    await sleep(1000); // "the server is busy": a previous client's teardown
  }
}

async function rr(ns: string, dst: string, count: number): Promise<number> {
  const r = await runAsync(['nsenter', `--net=/run/netns/${ns}`, process.execPath, SELF, '--rr-client', dst, String(RR_PORT), String(count)], 120_000);
  if (r.status !== 0) throw new Error(`rr ${ns} -> ${dst}: ${r.stderr.trim() || r.status}`);
  return (JSON.parse(r.stdout) as { meanUs: number }).meanUs;
}

async function ping(ns: string, dst: string, count: number): Promise<number> {
  const r = await runAsync(['ip', 'netns', 'exec', ns, 'ping', '-q', '-c', String(count), '-i', '0.01', dst], 60_000);
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  if (r.status !== 0 || !m) throw new Error(`ping ${ns} -> ${dst}: ${r.stdout}${r.stderr}`);
  return Number(m[1]) * 1000;
}

async function measure(e: Endpoints, test: Test, p: Path, o: Options): Promise<number> {
  switch (test) {
    case 'p1':
      return iperf(e.src[p], e.dst[p], 1, o.seconds);
    case 'p4':
      return iperf(e.src[p], e.dst[p], 4, o.seconds);
    case 'rr':
      return rr(e.src[p], e.dst[p], o.rrCount);
    case 'ping':
      return ping(e.src[p], e.dst[p], o.pingCount);
  }
}

/** What may limit the datapath: MTUs and offloads of the devices on node 1's pod path. */
function facts(state: LabState, backend: LabBackend): Record<string, string> {
  const n1 = state.plan.nodes[0];
  const pod = Object.values(state.pods).find((p) => p.node === n1?.name);
  if (!n1 || !pod) return {};
  const out: Record<string, string> = {};
  const links = run(['ip', '-n', n1.netns, '-o', 'link', 'show']).stdout;
  const veth = /\d+: (twl[0-9a-f]+)@/.exec(links)?.[1];
  const devs: Array<[string, string]> = [[n1.netns, 'eth0'], [pod.netns, 'eth0']];
  if (veth) devs.push([n1.netns, veth]);
  if (backend !== 'host-gw') devs.push([n1.netns, 'twill.1']);
  for (const [ns, dev] of devs) {
    const mtu = /mtu (\d+)/.exec(run(['ip', '-n', ns, 'link', 'show', 'dev', dev]).stdout)?.[1] ?? '?';
    const k = run(['ip', 'netns', 'exec', ns, 'ethtool', '-k', dev]).stdout;
    const f = (name: string): string => new RegExp(`^${name}: (\\S+)`, 'm').exec(k)?.[1] ?? '?';
    const where = ns === pod.netns ? 'pod' : 'node1';
    const name = dev.startsWith('twl') ? 'veth(host)' : dev;
    out[`${where} ${name}`] = `mtu ${mtu} tx-csum ${f('tx-checksumming')} tso ${f('tcp-segmentation-offload')} gso ${f('generic-segmentation-offload')} gro ${f('generic-receive-offload')}`;
  }
  if (backend !== 'host-gw') {
    const d = run(['ip', '-n', n1.netns, '-d', 'link', 'show', 'dev', 'twill.1']).stdout;
    out['node1 twill.1 vxlan'] = (/vxlan .*?(?= addrgenmode)/.exec(d)?.[0] ?? '?').replace(/\s+/g, ' ');
  }
  return out;
}

async function main(o: Options): Promise<void> {
  if (process.getuid?.() !== 0) fail('needs root (network namespaces)');
  for (const f of [PATHS.agentMain, PATHS.cniPlugin]) if (!existsSync(f)) fail(`${f} is missing: npm run build`);
  if (run(['iperf3', '--version']).status !== 0) fail('iperf3 is not installed');
  const log = (line: string): void => {
    if (!o.json) process.stdout.write(`${line}\n`);
  };
  const loadBefore = loadavg();
  const endpoints: Endpoints[] = [];
  const factsBy: Record<string, Record<string, string>> = {};
  const suffix = process.pid.toString(36).slice(-5);
  for (const backend of o.backends) {
    const name = `b${SHORT[backend]}${suffix}`.slice(0, 8);
    labs.push(name);
    log(`lab ${name}: ${backend}, 2 nodes, 1 pod each ...`);
    const state = await labUp({ name, nodes: 2, pods: 1, backend, topology: 'l2', network: '10.244.0.0/16', subnetLen: 24 }, PATHS, () => undefined, { resyncSeconds: 10 });
    const [n1, n2] = state.plan.nodes;
    const p1 = Object.values(state.pods).find((p) => p.node === n1?.name);
    const p2 = Object.values(state.pods).find((p) => p.node === n2?.name);
    if (!n1 || !n2 || !p1 || !p2) throw new Error(`lab ${name}: unexpected plan`);
    const e: Endpoints = {
      backend,
      lab: name,
      src: { pod: p1.netns, node: n1.netns },
      dstNs: { pod: p2.netns, node: n2.netns },
      dst: { pod: p2.ip, node: n2.address },
    };
    for (const p of ['pod', 'node'] as const) {
      startServer(e.dstNs[p], ['iperf3', '-s', '-p', String(IPERF_PORT)]);
      startServer(e.dstNs[p], [process.execPath, SELF, '--rr-server', String(RR_PORT)]);
    }
    await waitPing(e.src.pod, e.dst.pod, 30_000); // the agents have programmed the routes
    for (const p of ['pod', 'node'] as const) {
      await waitListen(e.dstNs[p], IPERF_PORT, 10_000);
      await waitListen(e.dstNs[p], RR_PORT, 10_000);
    }
    factsBy[backend] = facts(state, backend);
    endpoints.push(e);
  }

  const samples: Record<string, Samples> = {};
  for (const e of endpoints) {
    samples[e.backend] = {};
    for (const t of TESTS) for (const p of ['pod', 'node']) (samples[e.backend] as Samples)[`${t}.${p}`] = [];
  }
  for (let rep = 0; rep < o.reps; rep++) {
    for (let b = 0; b < endpoints.length; b++) {
      const e = endpoints[(b + rep) % endpoints.length] as Endpoints;
      for (const t of TESTS) {
        const order: Path[] = (rep + TESTS.indexOf(t)) % 2 === 0 ? ['pod', 'node'] : ['node', 'pod'];
        for (const p of order) {
          const v = await measure(e, t, p, o);
          (samples[e.backend] as Samples)[`${t}.${p}`]?.push(v);
          log(`  rep ${rep + 1}/${o.reps} ${e.backend.padEnd(12)} ${t.padEnd(4)} ${p.padEnd(4)} ${t === 'p1' || t === 'p4' ? `${v.toFixed(2)} Gbit/s` : `${v.toFixed(1)} µs`}`);
        }
      }
    }
  }
  const loadAfter = loadavg();

  const results = endpoints.map((e) => {
    const s = samples[e.backend] as Samples;
    const m = (k: string): number => median(s[k] ?? []);
    const r = {
      backend: e.backend,
      p1: { podGbps: m('p1.pod'), nodeGbps: m('p1.node'), ratio: m('p1.pod') / m('p1.node') },
      p4: { podGbps: m('p4.pod'), nodeGbps: m('p4.node'), ratio: m('p4.pod') / m('p4.node') },
      rr: { podUs: m('rr.pod'), nodeUs: m('rr.node'), ratio: m('rr.node') / m('rr.pod') },
      ping: { podUs: m('ping.pod'), nodeUs: m('ping.node'), ratio: m('ping.node') / m('ping.pod') },
      // Ratios of every repetition's pair (pod and node measured back to back).
      pairedP1: (s['p1.pod'] ?? []).map((x, i) => x / ((s['p1.node'] ?? [])[i] ?? NaN)),
      ceiling: CEILING[e.backend],
      target: TARGET[e.backend],
      samples: s,
      facts: factsBy[e.backend],
    };
    return { ...r, p1VsCeiling: r.p1.ratio / r.ceiling.p1, rrVsCeiling: r.rr.ratio / r.ceiling.rr };
  });
  const report = { reps: o.reps, seconds: o.seconds, rrCount: o.rrCount, pingCount: o.pingCount, loadavg: { before: loadBefore, after: loadAfter }, results };
  if (o.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const f2 = (x: number): string => x.toFixed(2);
  const rows = [
    ['backend', 'P1 pod/node', 'P1 Gbit/s pod / node', 'target', 'hand-built', 'P1 vs hand-built', 'P4 pod/node', 'P4 Gbit/s pod / node', 'RR pod/node', 'RR µs pod / node', 'RR vs hand-built', 'ping µs pod / node'],
    ...results.map((r) => [
      r.backend,
      f2(r.p1.ratio),
      `${f2(r.p1.podGbps)} / ${f2(r.p1.nodeGbps)}`,
      `>= ${f2(r.target)}`,
      `${f2(r.ceiling.p1)} / RR ${f2(r.ceiling.rr)}`,
      f2(r.p1VsCeiling),
      f2(r.p4.ratio),
      `${f2(r.p4.podGbps)} / ${f2(r.p4.nodeGbps)}`,
      f2(r.rr.ratio),
      `${r.rr.podUs.toFixed(0)} / ${r.rr.nodeUs.toFixed(0)}`,
      f2(r.rrVsCeiling),
      `${r.ping.podUs.toFixed(0)} / ${r.ping.nodeUs.toFixed(0)}`,
    ]),
  ];
  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  log('');
  for (const row of rows) log(`| ${row.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`);
  log('');
  log(`medians of ${o.reps} repetitions; P1/P4: iperf3 TCP ${o.seconds} s (+1 s omitted); RR: ${o.rrCount} sequential ${RR_SIZE}-byte round trips (Node both ends), ratio = node µs / pod µs; ping: ${o.pingCount} ICMP echoes at 10 ms`);
  for (const r of results) log(`${r.backend}: P1 pod/node per repetition ${r.pairedP1.map(f2).join(' ')}; hand-built: ${r.ceiling.label}`);
  for (const r of results) for (const [k, v] of Object.entries(r.facts ?? {})) log(`${r.backend} ${k}: ${v}`);
  log(`load average before ${loadBefore.map(f2).join(' ')}, after ${loadAfter.map(f2).join(' ')}`);
}

// ---------------------------------------------------------------------------------------------

const { values, positionals } = parseArgs({
  options: {
    backends: { type: 'string', default: 'host-gw,vxlan,vxlan-direct' },
    reps: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    'rr-count': { type: 'string', default: '3000' },
    'ping-count': { type: 'string', default: '200' },
    json: { type: 'boolean', default: false },
    'rr-server': { type: 'string' },
    'rr-client': { type: 'boolean', default: false },
  },
  allowPositionals: true,
  strict: true,
});

if (values['rr-server'] !== undefined) {
  rrServer(Number(values['rr-server']));
} else if (values['rr-client']) {
  const [host, port, count] = positionals;
  rrClient(host ?? '', Number(port), Number(count), 200);
} else {
  const backends = (values.backends ?? '').split(',').filter(Boolean) as LabBackend[];
  for (const b of backends) if (!(b in CEILING)) fail(`unknown backend ${b} (host-gw, vxlan, vxlan-direct)`);
  const o: Options = {
    backends,
    reps: Number(values.reps),
    seconds: Number(values.seconds),
    rrCount: Number(values['rr-count']),
    pingCount: Number(values['ping-count']),
    json: values.json ?? false,
  };
  if (![o.reps, o.seconds, o.rrCount, o.pingCount].every((x) => Number.isInteger(x) && x > 0)) fail('--reps, --seconds, --rr-count, --ping-count: positive integers');
  await runBench('datapath', () => main(o), cleanup);
}
