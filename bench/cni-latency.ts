/**
 * CNI latency benchmark: twill-cni ADD/DEL next to the reference `bridge` + `host-local` plugins,
 * measured in the same run on the same kind of network, plus where twill-cni's time goes.
 *
 *   node dist/bench/cni-latency.js [--iterations 60] [--warmup 3] [--json]
 *                                  [--plugin bin/twill-cni] [--candidate PATH] [--ref-dir /usr/lib/cni]
 *
 * Method. The outer process creates one "host" network namespace, one pod namespace per call and
 * a tmp dir, then re-executes itself inside the host namespace (`ip netns exec HOST node ... --inner`).
 * The inner process spawns every plugin directly, as a runtime does (env + config on stdin), and
 * times only that spawn with process.hrtime.bigint(). Sides are interleaved call by call, rotating
 * which goes first, so every side sees the same machine load: all ADDs (one per side per
 * iteration), then all DELs in the same order. Warm-up calls are discarded. Probes for the
 * breakdown (bare `node -e 0`, the bundle answering VERSION, `ip -batch -`, `nsenter ... ip -batch -`)
 * run interleaved in the same loop. The outer process removes namespaces (with any process left in
 * them, bridges and veths go with the host namespace) and tmp dirs on exit, error, SIGINT or SIGTERM.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cniConfig, labDown, labUp, nodePaths, type LabPaths } from '../src/cli/lab/lab.js';
import { CNI_BIN, ROOT, Scope } from '../test/integration/harness.js';
import { reconcileMetrics } from './agent-metrics.js';
import { printTable, report } from './cni-latency-report.js';
import type { InnerParams, Samples, Side } from './cni-latency-types.js';

const SELF = fileURLToPath(import.meta.url);
const PATH_ENV = '/usr/sbin:/usr/bin:/sbin:/bin';
const DEFAULT_CA = '/etc/ssl/certs/ca-certificates.crt';
/** The lab agents resync this often, so node 1's twilld reconciles all through the timed ADDs/DELs. */
const AGENT_RESYNC_SECONDS = 1;

function labPaths(plugin: string): LabPaths {
  return { root: ROOT, agentMain: path.join(path.dirname(SELF), '../src/agent/main.js'), cniPlugin: plugin };
}

function fail(msg: string): never {
  process.stderr.write(`cni-latency: ${msg}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// statistics

// inner process: runs inside the host netns, spawns the plugins, writes raw samples

/**
 * CPU time (user + system, ms) used by this process's waited-for children and their descendants:
 * fields cutime and cstime of /proc/self/stat, in clock ticks (1/100 s on Linux). Coarse per call,
 * but its mean over many calls shows the work a call does independently of CPU contention.
 */
function childCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}

interface Timed {
  ms: number;
  cpu: number;
  status: number;
  out: string;
}

function timed(file: string, args: readonly string[], env: Record<string, string>, input: string): Timed {
  const c0 = childCpuMs();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, args, { env, input, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = childCpuMs() - c0;
  if (r.error) throw r.error;
  return { ms, cpu, status: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

function cniCall(p: InnerParams, side: Side, command: 'ADD' | 'DEL', pod: string, index: number): Timed {
  const cid = containerIdFor(`${side.key}-${pod}`);
  const env: Record<string, string> = {
    PATH: PATH_ENV,
    CNI_COMMAND: command,
    CNI_CONTAINERID: cid,
    CNI_NETNS: `/run/netns/${pod}`,
    CNI_IFNAME: 'eth0',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod-${index};K8S_POD_INFRA_CONTAINER_ID=${cid}`,
    CNI_PATH: p.cniPath,
    ...side.extraEnv,
  };
  const r = timed(side.plugin, [], env, JSON.stringify(side.config));
  if (r.status !== 0) throw new Error(`${side.label} ${command} ${pod} exited ${r.status}: ${r.out.trim()}`);
  if (command === 'ADD' && !r.out.includes('"ips"')) throw new Error(`${side.label} ADD ${pod} gave no result: ${r.out.trim()}`);
  return r;
}

/** Deterministic 64-hex container id per side and pod (a runtime's ids look like this). */
function containerIdFor(seed: string): string {
  return Buffer.from(seed.padEnd(32, '.')).subarray(0, 32).toString('hex');
}

/** bin/twill-cni -> bin/twill-cni.js (the standalone bundle beside the shim). */
function bundleOf(plugin: string): string {
  return existsSync(`${plugin}.js`) ? `${plugin}.js` : plugin;
}

function probes(p: InnerParams): Array<[string, () => Timed]> {
  const bare = { PATH: PATH_ENV };
  const withCa = { PATH: PATH_ENV, NODE_EXTRA_CA_CERTS: p.nec };
  const version = { PATH: PATH_ENV, CNI_COMMAND: 'VERSION' };
  const ok = (r: Timed, what: string): Timed => {
    if (r.status !== 0) throw new Error(`probe ${what} failed: ${r.out}`);
    return r;
  };
  return [
    ['node -e 0', () => ok(timed(process.execPath, ['-e', '0'], bare, ''), 'node')],
    ['node -e 0 (NODE_EXTRA_CA_CERTS set)', () => ok(timed(process.execPath, ['-e', '0'], withCa, ''), 'node+ca')],
    // The Node bundle itself (bin/twill-cni is the sh shim that runs it when no agent answers).
    ['plugin VERSION', () => ok(timed(bundleOf(p.plugin), [], version, ''), 'VERSION')],
    ['node plugin VERSION (NODE_EXTRA_CA_CERTS set, no env -u)', () => ok(timed(process.execPath, [bundleOf(p.plugin)], { ...version, NODE_EXTRA_CA_CERTS: p.nec }, ''), 'node VERSION')],
    ['ip -batch -', () => ok(timed('ip', ['-batch', '-'], bare, 'link show dev lo\n'), 'ip')],
    ['nsenter ip -batch -', () => ok(timed('nsenter', [`--net=/run/netns/${p.probeNetns}`, 'ip', '-batch', '-'], bare, 'link show dev lo\n'), 'nsenter ip')],
  ];
}

function runInner(paramsFile: string): void {
  const p = JSON.parse(readFileSync(paramsFile, 'utf8')) as InnerParams;
  const s: Samples = { add: {}, del: {}, addCpu: {}, delCpu: {}, probes: {}, probesCpu: {}, loadBefore: loadavg(), loadAfter: [] };
  for (const side of p.sides) {
    s.add[side.key] = [];
    s.del[side.key] = [];
    s.addCpu[side.key] = [];
    s.delCpu[side.key] = [];
  }
  const probeList = probes(p);
  for (const [name] of probeList) {
    s.probes[name] = [];
    s.probesCpu[name] = [];
  }
  const total = p.warmup + p.iterations;
  const order = (i: number): Side[] => p.sides.map((_, k) => p.sides[(i + k) % p.sides.length] as Side);

  for (let i = 0; i < total; i++) {
    for (const side of order(i)) {
      const r = cniCall(p, side, 'ADD', side.pods[i] as string, i);
      if (i >= p.warmup) {
        s.add[side.key]?.push(r.ms);
        s.addCpu[side.key]?.push(r.cpu);
      }
    }
    for (const [name, fn] of probeList) {
      const r = fn();
      if (i >= p.warmup) {
        s.probes[name]?.push(r.ms);
        s.probesCpu[name]?.push(r.cpu);
      }
    }
  }
  for (let i = 0; i < total; i++) {
    for (const side of order(i)) {
      const r = cniCall(p, side, 'DEL', side.pods[i] as string, i);
      if (i >= p.warmup) {
        s.del[side.key]?.push(r.ms);
        s.delCpu[side.key]?.push(r.cpu);
      }
    }
  }
  s.loadAfter = loadavg();
  writeFileSync(p.resultFile, JSON.stringify(s));
}

// ---------------------------------------------------------------------------------------------
// outer process: namespaces, configs, cleanup, report

function sides(opts: { plugin: string; candidates?: string[]; refDir: string; nec: string; dir: string; socket: string; agentConfig: Record<string, unknown>; pods: (key: string) => string[] }): Side[] {
  const ours = (dataDir: string, bridge: string) => ({
    cniVersion: '1.0.0',
    name: 'twillbench',
    type: 'twill',
    mode: 'bridge',
    bridge,
    mtu: 1450,
    ipam: { type: 'twill', subnet: '10.231.0.0/16', dataDir, subnetFile: path.join(opts.dir, 'no-subnet.env') },
  });
  const out: Side[] = [
    {
      key: 'twillAgent',
      label: 'twill via a reconciling twilld',
      plugin: opts.plugin,
      extraEnv: { NODE_EXTRA_CA_CERTS: opts.nec, TWILL_CNI_SOCKET: opts.socket },
      config: opts.agentConfig,
      pods: opts.pods('a'),
      reference: false,
    },
    {
      key: 'twill',
      label: 'twill standalone (NODE_EXTRA_CA_CERTS set)',
      plugin: opts.plugin,
      extraEnv: { NODE_EXTRA_CA_CERTS: opts.nec },
      config: ours(path.join(opts.dir, 'ipam-twill'), 'twbench0'),
      pods: opts.pods('t'),
      reference: false,
    },
    {
      key: 'twillNoCa',
      label: 'twill standalone (NODE_EXTRA_CA_CERTS unset)',
      plugin: opts.plugin,
      extraEnv: {},
      config: ours(path.join(opts.dir, 'ipam-twill'), 'twbench0'),
      pods: opts.pods('u'),
      reference: false,
    },
  ];
  (opts.candidates ?? []).forEach((file, i) => {
    const name = `twillcand${i}`;
    const dataDir = path.join(opts.dir, `ipam-${name}`);
    out.push({
      key: `candidate${i}`,
      label: `candidate ${file} (NODE_EXTRA_CA_CERTS set)`,
      plugin: file,
      extraEnv: { NODE_EXTRA_CA_CERTS: opts.nec },
      config: { ...ours(dataDir, `twbench${i + 1}`), name, ipam: { type: 'twill', subnet: `10.${240 + i}.0.0/16`, dataDir, subnetFile: path.join(opts.dir, 'no-subnet.env') } },
      pods: opts.pods(`c${i}`),
      reference: false,
    });
  });
  out.push({
    key: 'reference',
    label: 'reference bridge+host-local',
    plugin: path.join(opts.refDir, 'bridge'),
    extraEnv: { NODE_EXTRA_CA_CERTS: opts.nec },
    config: {
      cniVersion: '1.0.0',
      name: 'refbench',
      type: 'bridge',
      bridge: 'cnibench0',
      isGateway: true,
      isDefaultGateway: true,
      ipam: { type: 'host-local', subnet: '10.232.0.0/16', dataDir: path.join(opts.dir, 'ipam-ref') },
    },
    pods: opts.pods('r'),
    reference: true,
  });
  return out;
}

async function runOuter(opts: { iterations: number; warmup: number; json: boolean; plugin: string; candidates?: string[]; refDir: string }): Promise<void> {
  if (process.getuid?.() !== 0) fail('needs root (network namespaces)');
  for (const f of [opts.plugin, path.join(opts.refDir, 'bridge'), path.join(opts.refDir, 'host-local'), ...(opts.candidates ?? [])]) {
    if (!existsSync(f)) fail(`${f} does not exist (run npm run build; reference plugins: apt-get install containernetworking-plugins)`);
  }
  const nec = process.env.NODE_EXTRA_CA_CERTS || DEFAULT_CA;
  const scope = new Scope();
  let child: ReturnType<typeof spawn> | undefined;
  let lab: string | undefined;
  let cleaned = false;
  const cleanup = (): void => {
    if (cleaned) return;
    cleaned = true;
    if (child?.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    scope.cleanup();
    if (lab !== undefined) labDown(lab, () => undefined);
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`cni-latency: ${sig}, cleaning up\n`);
    cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  try {
    const dir = scope.tmpdir('cnibench');
    // The "host" is node 1 of a real 2-node vxlan lab (etcd, one twilld per node, resyncing every
    // second), so the agent-socket side is served by a twilld that is reconciling while it runs ADDs.
    // Every side's plugin runs from this node's netns: the agent serves only callers of its own.
    lab = `bcl${process.pid.toString(36).slice(-5)}`;
    if (!opts.json) process.stderr.write(`cni-latency: lab ${lab} (vxlan, 2 nodes, twilld resyncing every ${AGENT_RESYNC_SECONDS} s) ...\n`);
    const state = await labUp({ name: lab, nodes: 2, pods: 0, backend: 'vxlan', topology: 'l2', network: '10.244.0.0/16', subnetLen: 24 }, labPaths(opts.plugin), () => undefined, { resyncSeconds: AGENT_RESYNC_SECONDS });
    const node1 = state.plan.nodes[0];
    if (!node1) throw new Error(`lab ${lab}: no node`);
    const host = node1.netns;
    const total = opts.iterations + opts.warmup;
    // Namespaces are created ahead of time (not timed). Yielding to the event loop between them lets
    // a SIGINT during this long synchronous-looking phase run the cleanup handler at once.
    const pods = new Map<string, string[]>();
    for (const key of ['a', 't', 'u', ...(opts.candidates ?? []).map((_, i) => `c${i}`), 'r']) {
      const list: string[] = [];
      for (let i = 0; i < total; i++) {
        list.push(scope.netns(`p${key}`));
        await new Promise((resolve) => setImmediate(resolve));
      }
      pods.set(key, list);
    }
    const podsOf = (key: string): string[] => pods.get(key) ?? [];
    // The agent fast path: node 1's twilld socket; the pods become real pods of that node's subnet.
    const socket = nodePaths(lab, node1).cniSocket;
    for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(socket)) throw new Error(`twilld of ${node1.name} does not serve ${socket}`);
    const agentConfig = { ...cniConfig(lab, node1), cniVersion: '1.0.0', name: 'twillbench' };
    const params: InnerParams = {
      iterations: opts.iterations,
      warmup: opts.warmup,
      cniPath: opts.refDir,
      sides: sides({ ...opts, nec, dir, socket, agentConfig, pods: podsOf }),
      probeNetns: scope.netns('probe'),
      plugin: opts.plugin,
      nec,
      resultFile: path.join(dir, 'samples.json'),
    };
    const paramsFile = path.join(dir, 'params.json');
    writeFileSync(paramsFile, JSON.stringify(params));
    if (!opts.json) process.stderr.write(`cni-latency: ${total} x ${params.sides.length} ADD + DEL in host netns ${host} ...\n`);
    const startedAt = new Date();
    const before = reconcileMetrics(host);
    const code = await new Promise<number>((resolve, reject) => {
      child = spawn('ip', ['netns', 'exec', host, process.execPath, SELF, '--inner', paramsFile], { stdio: ['ignore', 'inherit', 'inherit'] });
      child.on('error', reject);
      child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
    });
    if (code !== 0) throw new Error(`inner benchmark process failed (exit ${code})`);
    const after = reconcileMetrics(host);
    const samples = JSON.parse(readFileSync(params.resultFile, 'utf8')) as Samples;
    const uptime = spawnSync('uptime', { encoding: 'utf8' }).stdout?.trim() ?? '';
    const r = report(params, samples, { reconcilePasses: after.count - before.count, reconcileSeconds: after.sum - before.sum, resyncSeconds: AGENT_RESYNC_SECONDS }, startedAt, uptime);
    if (!opts.json) printTable(r);
    process.stdout.write(`${JSON.stringify(r)}\n`);
  } finally {
    cleanup();
  }
}

function main(): void {
  const { values } = parseArgs({
    options: {
      iterations: { type: 'string', default: '60' },
      warmup: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
      plugin: { type: 'string', default: CNI_BIN },
      candidate: { type: 'string', multiple: true },
      'ref-dir': { type: 'string', default: '/usr/lib/cni' },
      inner: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node dist/bench/cni-latency.js [--iterations N] [--warmup N] [--json] [--plugin PATH] [--candidate PATH] [--ref-dir DIR]\n');
    return;
  }
  if (values.inner !== undefined) {
    runInner(values.inner);
    return;
  }
  const iterations = Number(values.iterations);
  const warmup = Number(values.warmup);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 2000) fail('--iterations must be an integer 1..2000');
  if (!Number.isInteger(warmup) || warmup < 0 || warmup > 100) fail('--warmup must be an integer 0..100');
  const abs = (p: string): string => path.resolve(ROOT, p);
  runOuter({
    iterations,
    warmup,
    json: values.json,
    plugin: abs(values.plugin),
    refDir: values['ref-dir'],
    ...(values.candidate !== undefined ? { candidates: values.candidate.map(abs) } : {}),
  }).catch((e: unknown) => {
    process.stderr.write(`cni-latency: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}

main();
