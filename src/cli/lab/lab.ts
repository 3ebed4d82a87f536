/**
 * `twill lab up|down|status`: builds the planned topology with `ip`, starts a real etcd in the
 * infra netns and one `twilld` per node netns, and creates pods through `twill-cni` exactly as a
 * runtime does. Every process started is recorded (PID) in the lab's state file before anything
 * else happens, so `down` removes everything even after the lab itself crashed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { LAB_NETNS_PREFIX, labHasV6, labWarnings, planLab, planNode, validateLabSpec, type LabNode, type LabPlan, type LabSpec } from './topology.js';
import { spawnRunner, type CommandResult } from '../../dataplane/command.js';

export const LAB_STATE_ROOT = '/run/twill-lab';
export const LAB_HTTP_PORT = 8080;
const BUSYBOX = '/bin/busybox';

export interface LabPaths {
  root: string;
  /** The agent's launcher (bin/twilld; dist/src/agent/main.js works too): run with this Node, it shows as `twilld` in ps. */
  agentMain: string;
  cniPlugin: string;
}

export interface LabState {
  plan: LabPlan;
  pids: Record<string, number>;
  /** `ip`: the pod's first address (IPv4 where it has one); `ips`: all of them, IPv4 first (absent in older labs). */
  pods: Record<string, { node: string; ip: string; ips?: string[]; netns: string }>;
  createdAt: string;
  resyncSeconds?: number;
}

type Out = (line: string) => void;

const run = (argv: readonly string[], input = ''): CommandResult => spawnRunner.run(argv, input);

function must(argv: readonly string[], input = ''): string {
  const r = run(argv, input);
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr.trim() || `exit ${r.status}`}`);
  return r.stdout;
}

/** `ip -n NS -batch -`: one process for all of a namespace's lines. */
function ipBatch(netns: string, lines: string[]): void {
  must(['ip', '-n', netns, '-batch', '-'], `${lines.join('\n')}\n`);
}

export function stateDir(name: string): string {
  return path.join(LAB_STATE_ROOT, name);
}

function statePath(name: string): string {
  return path.join(stateDir(name), 'state.json');
}

export function readState(name: string): LabState | undefined {
  try {
    return JSON.parse(readFileSync(statePath(name), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

function saveState(s: LabState): void {
  writeFileSync(statePath(s.plan.spec.name), JSON.stringify(s, null, 2));
}

/** Starts a daemon in a netns, detached, output to a log file; its PID is saved at once. */
function startDaemon(state: LabState, key: string, netns: string, argv: string[], logFile: string): number {
  const fd = openSync(logFile, 'a');
  const child = spawn('nsenter', [`--net=/run/netns/${netns}`, ...argv], { detached: true, stdio: ['ignore', fd, fd] });
  child.unref();
  if (child.pid === undefined) throw new Error(`cannot start ${argv[0]}`);
  state.pids[key] = child.pid;
  saveState(state);
  return child.pid;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(what: string, timeoutMs: number, check: () => boolean): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (check()) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function etcdctl(plan: LabPlan, args: string[]): { status: number; stdout: string; stderr: string } {
  return run(['nsenter', `--net=/run/netns/${plan.infraNetns}`, 'env', 'ETCDCTL_API=3', 'etcdctl', `--endpoints=${plan.etcdClientUrl}`, '--dial-timeout=2s', ...args]);
}

export function nodePaths(name: string, node: LabNode): { dir: string; subnetFile: string; ipamDir: string; log: string; cniSocket: string } {
  const dir = path.join(stateDir(name), node.name);
  return { dir, subnetFile: path.join(dir, 'subnet.env'), ipamDir: path.join(dir, 'ipam'), log: path.join(dir, 'twilld.log'), cniSocket: path.join(dir, 'cni.sock') };
}

export function cniConfig(name: string, node: LabNode): Record<string, unknown> {
  const p = nodePaths(name, node);
  return { cniVersion: '1.1.0', name: 'twill', type: 'twill', mode: 'bridge', ipam: { type: 'twill', subnetFile: p.subnetFile, dataDir: p.ipamDir } };
}

/** The agent's command line for one node (also used by tests to restart an agent). */
export function agentArgv(paths: LabPaths, plan: LabPlan, node: LabNode, resyncSeconds: number): string[] {
  const p = nodePaths(plan.spec.name, node);
  return [
    process.execPath,
    paths.agentMain,
    '--node-name', node.name,
    '--etcd-endpoints', plan.etcdClientUrl,
    '--subnet-file', p.subnetFile,
    '--cni-socket', p.cniSocket,
    '--public-ip', node.address,
    ...(node.address6 !== undefined ? ['--public-ipv6', node.address6] : []),
    '--health-listen', '127.0.0.1:9402',
    '--resync-interval', String(resyncSeconds),
  ];
}

export async function labUp(spec: LabSpec, paths: LabPaths, out: Out, opts: { resyncSeconds?: number } = {}): Promise<LabState> {
  const errors = validateLabSpec(spec);
  if (errors.length > 0) throw new Error(errors.join('; '));
  if (readState(spec.name) || listLabNetns(spec.name).length > 0) {
    throw new Error(`lab ${spec.name} exists already: run 'twill lab down --name ${spec.name}' first`);
  }
  for (const w of labWarnings(spec)) out(`warning: ${w}`);
  const plan = planLab(spec);
  mkdirSync(stateDir(spec.name), { recursive: true });
  const state: LabState = { plan, pids: {}, pods: {}, createdAt: new Date().toISOString() };
  saveState(state);
  try {
    buildUnderlay(plan);
    out(`underlay: ${plan.segments.map((s) => s.cidr).join(' + ')} (${spec.topology}), ${plan.nodes.length} nodes`);

    await startEtcd(state);
    const put = etcdctl(plan, ['put', '/twill/config', JSON.stringify(plan.clusterConfig)]);
    if (put.status !== 0) throw new Error(`writing the cluster config: ${put.stderr}`);
    out(`etcd: ${plan.etcdClientUrl} (pid ${state.pids.etcd}); config ${JSON.stringify(plan.clusterConfig)}`);

    for (const node of plan.nodes) startAgent(state, paths, node, opts.resyncSeconds ?? 10);
    for (const node of plan.nodes) {
      await waitFor(`${node.name}'s subnet lease (see ${nodePaths(spec.name, node).log})`, 60_000, () => existsSync(nodePaths(spec.name, node).subnetFile));
    }
    out(`twilld: running on ${plan.nodes.map((n) => n.name).join(', ')}`);

    for (const node of plan.nodes) {
      for (const pod of node.pods) addPod(state, paths, node, pod);
    }
    saveState(state);
    out(`pods: ${Object.entries(state.pods).map(([n, p]) => `${n}=${p.ip}`).join(' ')}`);
    return state;
  } catch (e) {
    out(`lab up failed: ${(e as Error).message}; tearing down`);
    labDown(spec.name, () => undefined);
    throw e;
  }
}

function buildUnderlay(plan: LabPlan): void {
  must(['ip', 'netns', 'add', plan.infraNetns]);
  const infra = ['link set lo up'];
  for (const s of plan.segments) {
    infra.push(`link add ${s.bridge} type bridge`, `addr add ${s.gateway}/${s.prefix} dev ${s.bridge}`);
    // nodad: the lab's addresses are unique by construction; DAD would only delay the first packet.
    if (s.gateway6 !== undefined && s.cidr6 !== undefined) infra.push(`addr add ${s.gateway6}/${s.cidr6.split('/')[1]} dev ${s.bridge} nodad`);
    infra.push(`link set ${s.bridge} up`);
  }
  ipBatch(plan.infraNetns, infra);
  must(['ip', 'netns', 'exec', plan.infraNetns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  if (labHasV6(plan.spec)) must(['ip', 'netns', 'exec', plan.infraNetns, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
  for (const node of plan.nodes) buildNode(plan, node);
}

function buildNode(plan: LabPlan, node: LabNode): void {
  const seg = plan.segments[node.segment];
  if (!seg) throw new Error(`node ${node.name}: no segment ${node.segment}`);
  must(['ip', 'netns', 'add', node.netns]);
  ipBatch(plan.infraNetns, [`link add ${node.infraLink} type veth peer name eth0 netns /run/netns/${node.netns}`, `link set ${node.infraLink} master ${seg.bridge} up`]);
  const lines = ['link set lo up', 'link set eth0 up', `addr add ${node.address}/${seg.prefix} dev eth0`, `route add default via ${seg.gateway} dev eth0`];
  if (node.address6 !== undefined && seg.cidr6 !== undefined && seg.gateway6 !== undefined) {
    lines.push(`addr add ${node.address6}/${seg.cidr6.split('/')[1]} dev eth0 nodad`, `route add default via ${seg.gateway6} dev eth0`);
  }
  ipBatch(node.netns, lines);
  must(['ip', 'netns', 'exec', node.netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  if (node.address6 !== undefined) must(['ip', 'netns', 'exec', node.netns, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
}

/** Starts the lab's etcd (again, after a stop: same data dir) in the infra netns and waits until it is healthy. */
export async function startEtcd(state: LabState): Promise<number> {
  const { plan } = state;
  const dir = stateDir(plan.spec.name);
  const pid = startDaemon(state, 'etcd', plan.infraNetns, [
    'etcd', '--name', 'lab', '--data-dir', path.join(dir, 'etcd'),
    '--listen-client-urls', 'http://0.0.0.0:2379', '--advertise-client-urls', plan.etcdClientUrl,
    '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
    '--initial-cluster', 'lab=http://127.0.0.1:2380',
  ], path.join(dir, 'etcd.log'));
  await waitFor('etcd', 30_000, () => etcdctl(plan, ['endpoint', 'health']).status === 0);
  return pid;
}

/** Stops the lab's etcd (SIGKILL: an outage, not a clean shutdown) and waits until it is gone. */
export async function stopEtcd(state: LabState): Promise<void> {
  const pid = state.pids.etcd;
  if (pid === undefined) return;
  killPid(pid, 'SIGKILL');
  await waitFor('etcd to exit', 15_000, () => !killPid(pid, 0));
  delete state.pids.etcd;
  saveState(state);
}

/** Starts (or restarts) a node's agent; its PID goes into the state file. */
export function startAgent(state: LabState, paths: LabPaths, node: LabNode, resyncSeconds = 10): number {
  const p = nodePaths(state.plan.spec.name, node);
  mkdirSync(p.dir, { recursive: true });
  state.resyncSeconds = resyncSeconds;
  return startDaemon(state, `twilld-${node.name}`, node.netns, agentArgv(paths, state.plan, node, resyncSeconds), p.log);
}

/** Stops a node's agent with `signal` and waits until it is gone. The dataplane stays. */
export async function stopAgent(state: LabState, node: LabNode, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const pid = state.pids[`twilld-${node.name}`];
  if (pid === undefined) return;
  killPid(pid, signal);
  await waitFor(`${node.name}'s agent to exit`, 15_000, () => !killPid(pid, 0));
  delete state.pids[`twilld-${node.name}`];
  saveState(state);
}

/** Adds node number `i` to a running lab: underlay port, agent, pods. */
export async function labAddNode(state: LabState, paths: LabPaths, i: number): Promise<LabNode> {
  const node = planNode(state.plan.spec, i);
  state.plan.nodes.push(node);
  saveState(state);
  buildNode(state.plan, node);
  startAgent(state, paths, node, state.resyncSeconds ?? 10);
  await waitFor(`${node.name}'s subnet lease`, 60_000, () => existsSync(nodePaths(state.plan.spec.name, node).subnetFile));
  for (const pod of node.pods) addPod(state, paths, node, pod);
  return node;
}

export function addPod(state: LabState, paths: LabPaths, node: LabNode, pod: LabNode['pods'][number]): string {
  if (!listLabNetns(state.plan.spec.name).includes(pod.netns)) must(['ip', 'netns', 'add', pod.netns]);
  must(['ip', '-n', pod.netns, 'link', 'set', 'lo', 'up']);
  const r = run(
    ['nsenter', `--net=/run/netns/${node.netns}`, 'env', `TWILL_CNI_SOCKET=${nodePaths(state.plan.spec.name, node).cniSocket}`, 'CNI_COMMAND=ADD', `CNI_CONTAINERID=${pod.containerId}`, `CNI_NETNS=/run/netns/${pod.netns}`, 'CNI_IFNAME=eth0', 'CNI_PATH=/opt/cni/bin', paths.cniPlugin],
    JSON.stringify(cniConfig(state.plan.spec.name, node)),
  );
  if (r.status !== 0) throw new Error(`CNI ADD for ${pod.name} failed: ${r.stdout}${r.stderr}`);
  const ips = podAddresses(r.stdout);
  const ip = ips[0] ?? '';
  // A tiny TCP server in every pod for the connectivity test's TCP probe.
  const fd = openSync('/dev/null', 'a');
  const child = spawn('nsenter', [`--net=/run/netns/${pod.netns}`, BUSYBOX, 'nc', '-ll', '-p', String(LAB_HTTP_PORT), '-e', BUSYBOX, 'echo', 'twill'], { detached: true, stdio: ['ignore', fd, fd] });
  child.unref();
  if (child.pid !== undefined) state.pids[`tcp-${pod.name}`] = child.pid;
  state.pods[pod.name] = { node: node.name, ip, ips, netns: pod.netns };
  saveState(state);
  return ip;
}

/** The addresses of a CNI ADD result (any version with `ips[]`), IPv4 first. */
export function podAddresses(resultJson: string): string[] {
  const result = JSON.parse(resultJson) as { ips?: Array<{ address?: string }> };
  const ips = (result.ips ?? []).map((x) => (x.address ?? '').split('/')[0] ?? '').filter((a) => a !== '');
  return [...ips.filter((a) => !a.includes(':')), ...ips.filter((a) => a.includes(':'))];
}

export function listLabNetns(name: string): string[] {
  const prefix = `${LAB_NETNS_PREFIX}${name}-`;
  return run(['ip', 'netns', 'list'])
    .stdout.split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

function killPid(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Removes every process, namespace and file of the lab; works from the state file or, without it, from the netns prefix. */
export function labDown(name: string, out: Out): void {
  const state = readState(name);
  const pids = Object.values(state?.pids ?? {});
  for (const pid of pids) killPid(pid, 'SIGTERM');
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && pids.some((p) => killPid(p, 0))) spawnSync('sleep', ['0.1']);
  for (const pid of pids) killPid(pid, 'SIGKILL');
  const namespaces = listLabNetns(name);
  for (const ns of namespaces) {
    for (const pid of run(['ip', 'netns', 'pids', ns]).stdout.split('\n').filter(Boolean)) killPid(Number(pid), 'SIGKILL');
  }
  // Pods first, then nodes, then the infra netns.
  const order = [...namespaces].sort((a, b) => b.length - a.length);
  for (const ns of order) run(['ip', 'netns', 'del', ns]);
  rmSync(stateDir(name), { recursive: true, force: true });
  out(`lab ${name}: removed ${pids.length} processes and ${namespaces.length} namespaces`);
}

export function labStatus(name: string): string[] {
  const state = readState(name);
  if (!state) return [`lab ${name}: not running`];
  const lines = [`lab ${name}: ${state.plan.spec.nodes} nodes, backend ${state.plan.spec.backend}, topology ${state.plan.spec.topology}, ip family ${state.plan.spec.ipFamily ?? 'ipv4'}, since ${state.createdAt}`];
  for (const node of state.plan.nodes) {
    const pid = state.pids[`twilld-${node.name}`];
    const alive = pid !== undefined && killPid(pid, 0);
    let subnets = '?';
    try {
      const env = readFileSync(nodePaths(name, node).subnetFile, 'utf8');
      const found = [/TWILL_SUBNET=(\S+)/.exec(env)?.[1], /TWILL_IPV6_SUBNET=(\S+)/.exec(env)?.[1]].filter((x): x is string => x !== undefined);
      if (found.length > 0) subnets = found.join(',');
    } catch {
      /* no lease yet */
    }
    const pods = Object.entries(state.pods).filter(([, p]) => p.node === node.name).map(([n, p]) => `${n}=${(p.ips ?? [p.ip]).join(',')}`);
    const addresses = [node.address, ...(node.address6 !== undefined ? [node.address6] : [])].join(',');
    lines.push(`  ${node.name}  ${addresses}  subnet ${subnets}  twilld ${alive ? `pid ${pid}` : 'NOT RUNNING'}  ${pods.join(' ')}`);
  }
  return lines;
}
