/**
 * Datapath benchmark: pod->pod through Twill, pod->pod through a hand-built datapath of the same
 * kind, and node->node on the same underlay, per backend, measured in one run and interleaved.
 *
 *   node dist/bench/datapath.js [--backends host-gw,vxlan,vxlan-direct] [--reps 3] [--seconds 5]
 *                               [--rr-count 3000] [--ping-count 200] [--hand-nft] [--families 4,6] [--json]
 *
 * Method. One 2-node lab (l2, 1 pod per node, real etcd and twilld) per backend, all up at once
 * (lab names `b<backend><pid36>`). On the same underlay bridge, the benchmark builds a hand-built
 * pair (bench/hand-built.ts): two node namespaces, a bridge pod on each, the backend programmed with
 * `ip`/`bridge` (host-gw routes; for vxlan a device with Twill's VNI, port, nolearning, noudpcsum
 * and MTU, a neighbour, an FDB entry and an onlink route), pod MTU read from Twill's pod, no
 * nftables. `--hand-nft` adds a second hand-built pair carrying Twill's nftables ruleset as the
 * kernel lists it on node 1 (cluster network moved to the hand-built one): the cost of the tables.
 * Servers (iperf3 and a TCP echo server, this file with `--rr-server`) run in every target netns,
 * started by PID with `nsenter --net=`; clients run in the source netns the same way. Every
 * repetition goes over all backends (rotating which goes first) and, per backend, runs each test on
 * every path back to back (rotating which path goes first), so the sides of one round share the
 * same machine load:
 *   - iperf3 TCP, 1 stream (-P1) and 4 streams (-P4), `--seconds` each (+1 s omitted warm-up);
 *   - TCP request/response: one connection, 32-byte request echoed back, N sequential round trips
 *     (TCP_NODELAY), timed in the client; mean round trip. Both ends are Node, so every round trip
 *     carries the same user-space cost on all paths (it dilutes the ratios towards 1);
 *   - ICMP echo (`ping -i 0.01`), answered in the kernel: the datapath's own round trip.
 * Reported (Markdown, with the date and `uptime`): medians over the repetitions, Twill/node,
 * hand/node and Twill/hand (throughput a/b; latency b/a, higher is better), Twill/hand of every
 * repetition, and every attribute in which Twill's devices, sysctls and nft tables differ from the
 * hand-built ones. Benchmarks print; they assert nothing.
 * `--families 4,6` builds dual-stack labs (`--ip-family dual`) and hand-built pairs with their IPv6
 * twins (bench/hand-built.ts), and measures every path once per family, IPv4 and IPv6 interleaved in
 * the same run: a row per backend and family.
 * Everything (servers, labs, hand-built namespaces `tl-<lab>-h*`) is removed in a finally and on
 * SIGINT/SIGTERM/SIGHUP.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { loadavg } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { labDown, labUp, type LabPaths, type LabState } from '../src/cli/lab/lab.js';
import { HAND_VXLAN_DEV, handNode, renderHandBuilt, renderHandFdb, type HandNode, type HandSpec } from './hand-built.js';
import type { LabBackend } from '../src/cli/lab/topology.js';
import { runBench } from './run-bench.js';
import { median } from './stats.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '../..');
const PATHS: LabPaths = { root: ROOT, agentMain: path.join(ROOT, 'dist/src/agent/main.js'), cniPlugin: path.join(ROOT, 'bin/twill-cni') };
const IPERF_PORT = 5201;
const RR_PORT = 5300;
const RR_SIZE = 32;

/** Targets (Twill pod->pod over the hand-built pod->pod, P1), issue 8. */
const TARGET_VS_HAND = 0.95;
const SHORT: Record<LabBackend, string> = { 'host-gw': 'hg', vxlan: 'vx', 'vxlan-direct': 'vd' };

/** twill: pod->pod through Twill; hand: the hand-built pods; handnft: hand-built + Twill's nft tables; node: node->node. */
type Path = 'twill' | 'hand' | 'handnft' | 'node';
type Test = 'p1' | 'p4' | 'rr' | 'ping';
const TESTS: readonly Test[] = ['p1', 'p4', 'rr', 'ping'];

interface Endpoints {
  backend: LabBackend;
  family: 4 | 6;
  /** Row label and sample key: the backend, with " IPv6" for the IPv6 paths. */
  key: string;
  lab: string;
  /** Source netns and target address per path; servers run in the target netns. */
  src: Record<Path, string>;
  dstNs: Record<Path, string>;
  dst: Record<Path, string>;
  paths: readonly Path[];
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
  server.listen(port, '::'); // both families
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
  handNft: boolean;
  families: Array<4 | 6>;
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

/** One device of a datapath, for the comparison of Twill's with the hand-built one. */
interface Device {
  role: string;
  netns: string;
  dev: string;
}

/** MTU, `ip -d link` attributes (names and addresses dropped) and every `ethtool -k` feature of a device. */
function deviceFacts(d: Device): Record<string, string> {
  const out: Record<string, string> = {};
  const j = JSON.parse(run(['ip', '-n', d.netns, '-d', '-j', 'link', 'show', 'dev', d.dev]).stdout || '[]') as Array<Record<string, unknown>>;
  const link = j[0] ?? {};
  for (const k of ['mtu', 'qdisc', 'txqlen', 'gso_max_size', 'gso_max_segs', 'gro_max_size', 'tso_max_size', 'num_tx_queues', 'num_rx_queues']) out[k] = String(link[k] ?? '-');
  const info = (link.linkinfo ?? {}) as { info_kind?: string; info_data?: Record<string, unknown>; info_slave_kind?: string; info_slave_data?: Record<string, unknown> };
  out.kind = String(info.info_kind ?? '-');
  for (const [k, v] of Object.entries(info.info_data ?? {})) if (!/^(local|link|id|bridge_id|root_id|designated_root|hello_timer|tcn_timer|topology_change_timer|gc_timer|fdb_n_learned)$/.test(k) && typeof v !== 'object') out[`${out.kind}.${k}`] = String(v);
  for (const [k, v] of Object.entries(info.info_slave_data ?? {})) if (!/(_id|_timer|no|port)$/.test(k) && typeof v !== 'object') out[`port.${k}`] = String(v);
  for (const line of run(['ip', 'netns', 'exec', d.netns, 'ethtool', '-k', d.dev]).stdout.split('\n')) {
    const m = /^\s*([a-z0-9-]+): (on|off)( \[fixed\])?$/.exec(line);
    if (m) out[`ethtool.${m[1]}`] = m[2] as string;
  }
  return out;
}

/** Global IPv4/core/netfilter/bridge sysctls of a netns (and conf.all/default; per-device keys dropped), for the comparison. */
function sysctls(netns: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of run(['ip', 'netns', 'exec', netns, 'sysctl', '-a']).stdout.split('\n')) {
    const m = /^(net\.(?:ipv4|core|netfilter|bridge)\.[^ ]+) = (.*)$/.exec(line);
    if (!m || /\.conf\.(?!all\.|default\.)|\.neigh\.|_key$|nf_conntrack_count|tcp_mem|udp_mem|rt_cache_rebuild|hash|_random/.test(m[1] as string)) continue;
    out[m[1] as string] = m[2] as string;
  }
  return out;
}

/** Every key whose value differs between Twill's and the hand-built side, as `key twill/hand`. */
function differences(a: Record<string, string>, b: Record<string, string>): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => a[k] !== b[k]).map((k) => `${k} ${a[k] ?? '-'}/${b[k] ?? '-'}`);
}

function nftTables(netns: string): string {
  const t = run(['ip', 'netns', 'exec', netns, 'nft', 'list', 'tables']).stdout.trim().split('\n').filter(Boolean);
  return t.length === 0 ? 'none' : t.map((x) => x.replace(/^table /, '')).join(', ');
}

/** What differs between Twill's datapath and the hand-built one, device by device (node 1 and its pod). */
function compare(twill: Device[], hand: Device[], nodes: [string, string]): string[] {
  const out: string[] = [];
  twill.forEach((t, i) => {
    const h = hand[i];
    if (!h) return;
    const diff = differences(deviceFacts(t), deviceFacts(h));
    out.push(`${t.role} (${t.dev} / ${h.dev}): ${diff.length === 0 ? 'same' : diff.join(', ')}`);
  });
  const diff = differences(sysctls(nodes[0]), sysctls(nodes[1]));
  out.push(`node sysctls: ${diff.length === 0 ? 'same' : diff.join(', ')}`);
  out.push(`nft tables: twill node ${nftTables(nodes[0])}; hand-built node ${nftTables(nodes[1])}`);
  return out;
}

function linkMtu(netns: string, dev: string): number {
  const mtu = Number(/mtu (\d+)/.exec(run(['ip', '-n', netns, 'link', 'show', 'dev', dev]).stdout)?.[1]);
  if (!Number.isInteger(mtu)) throw new Error(`no MTU for ${dev} in ${netns}`);
  return mtu;
}

function mustRun(argv: readonly string[], input?: string): string {
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', input: input ?? '' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${(r.stderr ?? '').trim() || `exit ${r.status}`}`);
  return r.stdout ?? '';
}

/** Builds a hand-built pair in the lab's underlay; with `nftFrom`, loads Twill's nft ruleset of that node into both. */
function buildHand(state: LabState, backend: LabBackend, pair: [number, number], ipv6: boolean, nftFrom?: string): void {
  const { plan } = state;
  const seg = plan.segments[0];
  const n1 = plan.nodes[0];
  const pod = Object.values(state.pods).find((p) => p.node === n1?.name);
  if (!seg || !n1 || !pod) throw new Error(`lab ${plan.spec.name}: unexpected plan`);
  const cfg = plan.clusterConfig.Backend as { VNI?: number; Port?: number };
  const spec: HandSpec = {
    lab: plan.spec.name,
    infraNetns: plan.infraNetns,
    underlayBridge: seg.bridge,
    underlayPrefix: seg.prefix,
    underlayGateway: seg.gateway,
    backend,
    vni: cfg.VNI ?? 1,
    port: cfg.Port ?? 8472,
    podMtu: linkMtu(pod.netns, 'eth0'),
    vxlanMtu: backend === 'vxlan' ? linkMtu(n1.netns, `twill.${cfg.VNI ?? 1}`) : 0,
    ipv6,
  };
  for (const i of pair) {
    const n = handNode(spec.lab, i);
    mustRun(['ip', 'netns', 'add', n.netns]);
    mustRun(['ip', 'netns', 'add', n.podNetns]);
  }
  for (const { netns, lines } of renderHandBuilt(spec, pair)) mustRun(['ip', '-n', netns, '-batch', '-'], `${lines.join('\n')}\n`);
  for (const { netns, lines } of renderHandFdb(spec, pair)) mustRun(['bridge', '-n', netns, '-batch', '-'], `${lines.join('\n')}\n`);
  for (const i of pair) mustRun(['ip', 'netns', 'exec', handNode(spec.lab, i).netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  if (ipv6) for (const i of pair) mustRun(['ip', 'netns', 'exec', handNode(spec.lab, i).netns, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
  if (nftFrom !== undefined) {
    // Twill's tables as they are in the kernel, with the cluster network moved to the hand-built one.
    const ruleset = mustRun(['ip', 'netns', 'exec', nftFrom, 'nft', 'list', 'ruleset']).replaceAll('10.244.', '10.245.').replaceAll('fd00:10:244:', 'fd00:10:245:');
    for (const i of pair) mustRun(['ip', 'netns', 'exec', handNode(spec.lab, i).netns, 'nft', '-f', '-'], ruleset);
  }
}

async function main(o: Options): Promise<void> {
  if (process.getuid?.() !== 0) fail('needs root (network namespaces)');
  for (const f of [PATHS.agentMain, PATHS.cniPlugin]) if (!existsSync(f)) fail(`${f} is missing: npm run build`);
  if (run(['iperf3', '--version']).status !== 0) fail('iperf3 is not installed');
  const log = (line: string): void => {
    if (!o.json) process.stdout.write(`${line}\n`);
  };
  const startedAt = new Date();
  const loadBefore = loadavg();
  const endpoints: Endpoints[] = [];
  const comparison: Record<string, string[]> = {};
  const paths: Path[] = o.handNft ? ['twill', 'hand', 'handnft', 'node'] : ['twill', 'hand', 'node'];
  const suffix = process.pid.toString(36).slice(-5);
  for (const backend of o.backends) {
    const name = `b${SHORT[backend]}${suffix}`.slice(0, 8);
    labs.push(name);
    log(`lab ${name}: ${backend}, 2 nodes, 1 pod each, and the hand-built ${o.handNft ? 'pairs' : 'pair'} ...`);
    const ipv6 = o.families.includes(6);
    const state = await labUp({ name, nodes: 2, pods: 1, backend, topology: 'l2', network: '10.244.0.0/16', subnetLen: 24, ...(ipv6 ? { ipFamily: 'dual' as const } : {}) }, PATHS, () => undefined, { resyncSeconds: 10 });
    const [n1, n2] = state.plan.nodes;
    const p1 = Object.values(state.pods).find((p) => p.node === n1?.name);
    const p2 = Object.values(state.pods).find((p) => p.node === n2?.name);
    if (!n1 || !n2 || !p1 || !p2) throw new Error(`lab ${name}: unexpected plan`);
    buildHand(state, backend, [1, 2], ipv6);
    if (o.handNft) buildHand(state, backend, [3, 4], ipv6, n1.netns);
    const h = (i: number): HandNode => handNode(name, i);
    const twill6 = p2.ips?.find((a) => a.includes(':'));
    const lab: Endpoints[] = o.families.map((family) => {
      if (family === 6 && (twill6 === undefined || n2.address6 === undefined)) throw new Error(`lab ${name}: no IPv6 address on ${n2.name}'s pod or node`);
      return {
        backend,
        family,
        key: family === 6 ? `${backend} IPv6` : backend,
        lab: name,
        src: { twill: p1.netns, hand: h(1).podNetns, handnft: h(3).podNetns, node: n1.netns },
        dstNs: { twill: p2.netns, hand: h(2).podNetns, handnft: h(4).podNetns, node: n2.netns },
        dst:
          family === 6
            ? { twill: twill6 as string, hand: h(2).podIp6, handnft: h(4).podIp6, node: n2.address6 as string }
            : { twill: p2.ip, hand: h(2).podIp, handnft: h(4).podIp, node: n2.address },
        paths,
      };
    });
    const first = lab[0] as Endpoints;
    for (const p of paths) {
      startServer(first.dstNs[p], ['iperf3', '-s', '-p', String(IPERF_PORT)]);
      startServer(first.dstNs[p], [process.execPath, SELF, '--rr-server', String(RR_PORT)]);
    }
    for (const e of lab) for (const p of paths) await waitPing(e.src[p], e.dst[p], 30_000); // the agents have programmed the routes
    for (const p of paths) {
      await waitListen(first.dstNs[p], IPERF_PORT, 10_000);
      await waitListen(first.dstNs[p], RR_PORT, 10_000);
    }
    const hostVeth = /\d+: (twl[0-9a-f]+)@/.exec(run(['ip', '-n', n1.netns, '-o', 'link', 'show']).stdout)?.[1] ?? 'twl?';
    const twillDevs: Device[] = [
      { role: 'node eth0', netns: n1.netns, dev: 'eth0' },
      { role: 'bridge', netns: n1.netns, dev: 'cni0' },
      { role: 'host veth', netns: n1.netns, dev: hostVeth },
      { role: 'pod eth0', netns: p1.netns, dev: 'eth0' },
    ];
    const handDevs: Device[] = [
      { role: 'node eth0', netns: h(1).netns, dev: 'eth0' },
      { role: 'bridge', netns: h(1).netns, dev: 'cni0' },
      { role: 'host veth', netns: h(1).netns, dev: 'veth0' },
      { role: 'pod eth0', netns: h(1).podNetns, dev: 'eth0' },
    ];
    if (backend === 'vxlan') {
      twillDevs.push({ role: 'vxlan', netns: n1.netns, dev: 'twill.1' });
      handDevs.push({ role: 'vxlan', netns: h(1).netns, dev: HAND_VXLAN_DEV });
    }
    comparison[backend] = compare(twillDevs, handDevs, [n1.netns, h(1).netns]);
    endpoints.push(...lab);
  }

  const samples: Record<string, Samples> = {};
  for (const e of endpoints) {
    samples[e.key] = {};
    for (const t of TESTS) for (const p of paths) (samples[e.key] as Samples)[`${t}.${p}`] = [];
  }
  for (let rep = 0; rep < o.reps; rep++) {
    for (let b = 0; b < endpoints.length; b++) {
      const e = endpoints[(b + rep) % endpoints.length] as Endpoints;
      for (const t of TESTS) {
        // Rotate which path goes first, so no side always runs on a warmer or colder machine.
        const k = (rep + TESTS.indexOf(t)) % paths.length;
        const order = [...paths.slice(k), ...paths.slice(0, k)];
        for (const p of order) {
          const v = await measure(e, t, p, o);
          (samples[e.key] as Samples)[`${t}.${p}`]?.push(v);
          log(`  rep ${rep + 1}/${o.reps} ${e.key.padEnd(17)} ${t.padEnd(4)} ${p.padEnd(7)} ${t === 'p1' || t === 'p4' ? `${v.toFixed(2)} Gbit/s` : `${v.toFixed(1)} µs`}`);
        }
      }
    }
  }
  const loadAfter = loadavg();
  const uptime = run(['uptime']).stdout.trim();

  /** Higher is better: throughput as is, latency as 1/µs. */
  const score = (t: Test, v: number): number => (t === 'p1' || t === 'p4' ? v : 1 / v);
  const results = endpoints.map((e) => {
    const s = samples[e.key] as Samples;
    const m = (t: Test, p: Path): number => median(s[`${t}.${p}`] ?? []);
    const ratio = (t: Test, a: Path, b: Path): number => score(t, m(t, a)) / score(t, m(t, b));
    /** Per repetition: a / b of the samples measured in the same round. */
    const paired = (t: Test, a: Path, b: Path): number[] => (s[`${t}.${a}`] ?? []).map((x, i) => score(t, x) / score(t, (s[`${t}.${b}`] ?? [])[i] ?? NaN));
    const tests = Object.fromEntries(
      TESTS.map((t) => [
        t,
        {
          medians: Object.fromEntries(paths.map((p) => [p, m(t, p)])),
          twillVsNode: ratio(t, 'twill', 'node'),
          handVsNode: ratio(t, 'hand', 'node'),
          twillVsHand: ratio(t, 'twill', 'hand'),
          pairedTwillVsHand: paired(t, 'twill', 'hand'),
          ...(o.handNft ? { handNftVsHand: ratio(t, 'handnft', 'hand'), twillVsHandNft: ratio(t, 'twill', 'handnft') } : {}),
        },
      ]),
    ) as Record<Test, { medians: Record<string, number>; twillVsNode: number; handVsNode: number; twillVsHand: number; pairedTwillVsHand: number[]; handNftVsHand?: number; twillVsHandNft?: number }>;
    return { backend: e.backend, family: e.family, key: e.key, tests, samples: s, comparison: e.family === 4 || !o.families.includes(4) ? (comparison[e.backend] ?? []) : [] };
  });
  const report = {
    date: startedAt.toISOString(),
    uptime,
    reps: o.reps,
    seconds: o.seconds,
    rrCount: o.rrCount,
    pingCount: o.pingCount,
    targetTwillVsHand: TARGET_VS_HAND,
    loadavg: { before: loadBefore, after: loadAfter },
    results,
  };
  if (o.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');
  const abs = (t: Test, v: number): string => (t === 'p1' || t === 'p4' ? f2(v) : v.toFixed(0));
  const unit: Record<Test, string> = { p1: 'Gbit/s', p4: 'Gbit/s', rr: 'µs', ping: 'µs' };
  const head = ['backend', 'test', `Twill / hand-built / node${o.handNft ? ' / hand+Twill nft' : ''}`, 'Twill/node', 'hand/node', 'Twill/hand', ...(o.handNft ? ['hand+nft/hand'] : []), 'Twill/hand per rep'];
  const rows = results.flatMap((r) =>
    TESTS.map((t) => {
      const x = r.tests[t];
      const order: Path[] = o.handNft ? ['twill', 'hand', 'node', 'handnft'] : ['twill', 'hand', 'node'];
      return [
        r.key,
        t.toUpperCase(),
        `${order.map((p) => abs(t, x.medians[p] ?? NaN)).join(' / ')} ${unit[t]}`,
        f2(x.twillVsNode),
        f2(x.handVsNode),
        `**${f2(x.twillVsHand)}**`,
        ...(o.handNft ? [f2(x.handNftVsHand ?? NaN)] : []),
        x.pairedTwillVsHand.map(f2).join(' '),
      ];
    }),
  );
  log('');
  log(`Datapath, ${startedAt.toISOString().replace(/\.\d+Z$/, 'Z')}, \`uptime\`: ${uptime}`);
  log('');
  log(`| ${head.join(' | ')} |`);
  log(`|${head.map(() => '---').join('|')}|`);
  for (const row of rows) log(`| ${row.join(' | ')} |`);
  log('');
  log(
    `Medians of ${o.reps} repetitions, all sides measured in the same run, interleaved (order rotated per test). ` +
      `P1/P4: iperf3 TCP, 1 and 4 streams, ${o.seconds} s (+1 s omitted); RR: ${o.rrCount} sequential ${RR_SIZE}-byte round trips (Node both ends), mean µs; ` +
      `PING: ${o.pingCount} ICMP echoes at 10 ms, avg µs. Ratios: throughput a/b, latency b/a (higher is better). Target: Twill/hand >= ${f2(TARGET_VS_HAND)}. ` +
      `Hand-built: the same namespaces and bridge pods, the backend programmed with ip/bridge by the benchmark (bench/hand-built.ts), no nftables.`,
  );
  log('');
  for (const r of results) for (const line of r.comparison) log(`${r.backend} twill vs hand-built: ${line}`);
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
    'hand-nft': { type: 'boolean', default: false },
    families: { type: 'string', default: '4' },
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
  for (const b of backends) if (!(b in SHORT)) fail(`unknown backend ${b} (host-gw, vxlan, vxlan-direct)`);
  const o: Options = {
    backends,
    reps: Number(values.reps),
    seconds: Number(values.seconds),
    rrCount: Number(values['rr-count']),
    pingCount: Number(values['ping-count']),
    json: values.json ?? false,
    handNft: values['hand-nft'] ?? false,
    families: [...new Set((values.families ?? '4').split(',').map(Number))] as Array<4 | 6>,
  };
  if (o.families.length === 0 || !o.families.every((f) => f === 4 || f === 6)) fail('--families: 4, 6 or 4,6');
  if (![o.reps, o.seconds, o.rrCount, o.pingCount].every((x) => Number.isInteger(x) && x > 0)) fail('--reps, --seconds, --rr-count, --ping-count: positive integers');
  await runBench('datapath', () => main(o), cleanup);
}
