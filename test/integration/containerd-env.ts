/**
 * A throw-away containerd "node" for integration tests: containerd 1.6 + runc from the Debian
 * packages, started by PID with its own root, state and sockets, inside
 *  - its own network namespace (Scope.netns): `ctr run --cni` runs the CNI plugin in ctr's netns, so
 *    the bridge and host veths land there and vanish with it, never in the machine's root netns;
 *  - its own mount namespace (a slave of the host's, held by a `sleep` started with unshare): there
 *    overlays on /etc, /opt, /var/lib and /run catch everything that containerd 1.6 and ctr insist on
 *    reading or writing at fixed paths (/etc/cni/net.d, /opt/cni/bin, libcni's /var/lib/cni cache,
 *    shim sockets in /run/containerd/s, runc state in /run/containerd/runc). Each overlay's upper dir
 *    is a tmp dir, so nothing reaches the host's files, and the mounts die with the namespace.
 * Every command is an argv array entered with nsenter; stop() removes containers, stops the daemon
 * (SIGTERM, then SIGKILL), kills every process left in the mount namespace or any shim that names
 * this node's socket, and removes the cgroups runc created.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CNI_BIN, must, type Scope } from './harness.js';

/** containerd namespace: per test process, so cgroup cleanup never touches another run's. */
export const CTR_NAMESPACE = `twilltest-${process.pid.toString(36)}`;
export const BUSYBOX = '/bin/busybox';
const REFERENCE_PLUGINS = '/usr/lib/cni';
/** Host paths that get a private overlay in the node's mount namespace. */
const OVERLAID = ['/etc', '/opt', '/var/lib', '/run'] as const;

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** spawnSync with a hard timeout (SIGKILL to the child's PID). */
export function run(argv: readonly string[], timeoutMs = 120_000): Run {
  const [file, ...args] = argv;
  const t0 = Date.now();
  const r = spawnSync(file as string, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
  const timedOut = r.error !== undefined || r.signal === 'SIGKILL';
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${timedOut ? `\n[${r.error?.message ?? 'killed'}]` : ''}`, ms: Date.now() - t0 };
}

export interface Background {
  pid: number;
  done: Promise<Run>;
  exited(): boolean;
}

/** Starts argv in the background, collecting its output; killed by PID after timeoutMs. */
export function runInBackground(argv: readonly string[], timeoutMs: number): Background {
  const [file, ...args] = argv;
  const t0 = Date.now();
  const child = spawn(file as string, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<Run>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ status: code ?? (signal ? 128 : 1), stdout, stderr: signal ? `${stderr}\n[${signal}]` : stderr, ms: Date.now() - t0 });
    });
  });
  return { pid: child.pid ?? -1, done, exited: () => child.exitCode !== null || child.signalCode !== null };
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function ociArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
}

/**
 * A one-layer OCI image-layout tar from the static busybox: /bin/busybox plus `tools` as symlinks.
 * `ref` must be fully qualified (docker.io/library/x:1); it is both annotations ctr import reads.
 */
export function buildBusyboxImage(s: Scope, ref: string, tools: readonly string[] = ['sh', 'ping', 'ip', 'nc', 'sleep']): string {
  const dir = s.tmpdir('image');
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  copyFileSync(BUSYBOX, path.join(rootfs, 'bin/busybox'));
  for (const tool of tools) symlinkSync('busybox', path.join(rootfs, 'bin', tool));
  const layerFile = path.join(dir, 'layer.tar');
  must(['tar', '--create', '--file', layerFile, '--directory', rootfs, '--owner=0', '--group=0', '--numeric-owner', '--sort=name', '--mtime=@0', 'bin']);

  const layout = path.join(dir, 'layout');
  const blobs = path.join(layout, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const blob = (data: Buffer | string): { digest: string; size: number } => {
    const hex = sha256(data);
    writeFileSync(path.join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: Buffer.byteLength(data) };
  };
  const layer = blob(readFileSync(layerFile));
  const config = blob(
    JSON.stringify({
      architecture: ociArch(),
      os: 'linux',
      config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'], WorkingDir: '/' },
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
    }),
  );
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    }),
  );
  writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          platform: { architecture: ociArch(), os: 'linux' },
          annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref },
        },
      ],
    }),
  );
  const out = path.join(dir, 'image.tar');
  must(['tar', '--create', '--file', out, '--directory', layout, 'oci-layout', 'index.json', 'blobs']);
  return out;
}

export interface ContainerdPaths {
  dir: string;
  root: string;
  state: string;
  socket: string;
  ttrpcSocket: string;
  configFile: string;
}

const toml = (s: string): string => JSON.stringify(s);

/**
 * A containerd 1.6 config with everything under `dir`. The CRI plugin is disabled (ctr does not need
 * it); its section still records the settings a kubelet test would use (cgroupfs, tmp CNI dirs).
 */
export function writeContainerdConfig(dir: string, cni: { binDir: string; confDir: string }): ContainerdPaths {
  const p: ContainerdPaths = {
    dir,
    root: path.join(dir, 'root'),
    state: path.join(dir, 'state'),
    socket: path.join(dir, 'containerd.sock'),
    ttrpcSocket: path.join(dir, 'containerd-ttrpc.sock'),
    configFile: path.join(dir, 'config.toml'),
  };
  const text = `version = 2
root = ${toml(p.root)}
state = ${toml(p.state)}
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = ${toml(p.socket)}

[ttrpc]
  address = ${toml(p.ttrpcSocket)}

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ${toml(path.join(dir, 'opt'))}

[plugins."io.containerd.grpc.v1.cri"]
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${toml(cni.binDir)}
    conf_dir = ${toml(cni.confDir)}
    max_conf_num = 1
`;
  writeFileSync(p.configFile, text);
  return p;
}

function mntNs(pid: number | 'self'): string {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return '';
  }
}

interface Proc {
  pid: number;
  ppid: number;
  argv: string[];
  mnt: string;
}

function listProcs(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(name), ppid, argv, mnt: mntNs(Number(name)) });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitGone(pids: readonly number[], ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!pids.some(alive)) return true;
    await sleep(100);
  }
  return !pids.some(alive);
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
}

/** Removes empty cgroup dirs under every hierarchy's `<rel>`, deepest first. Returns what it removed. */
function removeCgroupTree(rel: string): string[] {
  const removed: string[] = [];
  const walk = (dir: string): void => {
    let entries: string[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) walk(path.join(dir, e));
    try {
      rmdirSync(dir);
      removed.push(dir);
    } catch {
      /* busy or gone */
    }
  };
  for (const h of readdirSync('/sys/fs/cgroup')) walk(path.join('/sys/fs/cgroup', h, rel));
  return removed;
}

export interface NodeOptions {
  /** The conflist the node's /etc/cni/net.d holds (file name 10-<name>.conflist). */
  conflist: { name: string } & Record<string, unknown>;
  /** Milliseconds to wait for containerd's socket (default 90 s). */
  startTimeoutMs?: number;
}

export class ContainerdNode {
  constructor(
    readonly netns: string,
    readonly paths: ContainerdPaths,
    /** Upper dirs of the overlays: what the node wrote at /etc, /opt, /var/lib, /run. */
    readonly upper: Readonly<Record<(typeof OVERLAID)[number], string>>,
    private readonly holderPid: number,
    readonly mntNs: string,
    private readonly daemonPid: number,
  ) {}

  /** argv inside the node: its mount namespace and network namespace. */
  enter(argv: readonly string[]): string[] {
    return ['nsenter', `--mount=/proc/${this.holderPid}/ns/mnt`, `--net=/run/netns/${this.netns}`, ...argv];
  }

  ctrArgv(args: readonly string[]): string[] {
    return this.enter(['ctr', '--address', this.paths.socket, '--namespace', CTR_NAMESPACE, ...args]);
  }

  ctr(args: readonly string[], timeoutMs = 120_000): Run {
    return run(this.ctrArgv(args), timeoutMs);
  }

  ctrInBackground(args: readonly string[], timeoutMs = 300_000): Background {
    return runInBackground(this.ctrArgv(args), timeoutMs);
  }

  daemonAlive(): boolean {
    return alive(this.daemonPid);
  }

  /** Processes that belong to this node: in its mount namespace, shims naming its socket, and their descendants. */
  processes(): Proc[] {
    const all = listProcs();
    const mine = new Set<number>();
    for (const p of all) {
      if (p.pid === process.pid) continue;
      if (p.mnt === this.mntNs || (p.argv.some((a) => a.includes('containerd-shim')) && p.argv.some((a) => a.includes(this.paths.dir)))) mine.add(p.pid);
    }
    let grew = true;
    while (grew) {
      grew = false;
      for (const p of all) if (!mine.has(p.pid) && mine.has(p.ppid)) {
        mine.add(p.pid);
        grew = true;
      }
    }
    return all.filter((p) => mine.has(p.pid));
  }

  /** Idempotent teardown; returns what it observed and did. Never throws. */
  async stop(): Promise<string[]> {
    const log: string[] = [];
    if (this.daemonAlive()) {
      const ids = this.ctr(['containers', 'list', '--quiet'], 30_000).stdout.split('\n').filter(Boolean);
      for (const id of ids) {
        this.ctr(['tasks', 'kill', '--signal', 'SIGKILL', id], 30_000);
        for (let i = 0; i < 20; i += 1) {
          const d = this.ctr(['tasks', 'delete', id], 30_000);
          if (d.status === 0 || /not found/.test(d.stderr)) break;
          await sleep(250);
        }
        const rm = this.ctr(['containers', 'delete', id], 30_000);
        log.push(`left-over container ${id}: removed=${rm.status === 0}`);
      }
      kill(this.daemonPid, 'SIGTERM');
      const graceful = await waitGone([this.daemonPid], 15_000);
      log.push(`containerd pid ${this.daemonPid}: ${graceful ? 'exited on SIGTERM' : 'needed SIGKILL'}`);
    }
    kill(this.daemonPid, 'SIGKILL');
    for (let round = 0; round < 3; round += 1) {
      const left = this.processes();
      if (left.length === 0) break;
      log.push(`killing ${left.map((p) => `${p.pid}:${path.basename(p.argv[0] ?? '?')}`).join(' ')}`);
      for (const p of left) kill(p.pid, 'SIGKILL');
      await waitGone(left.map((p) => p.pid), 10_000);
    }
    kill(this.holderPid, 'SIGKILL');
    await waitGone([this.holderPid], 10_000);
    const cg = removeCgroupTree(CTR_NAMESPACE);
    if (cg.length > 0) log.push(`removed ${cg.length} cgroup dirs under /sys/fs/cgroup/*/${CTR_NAMESPACE}`);
    return log;
  }
}

async function waitFor(what: string, ms: number, check: () => boolean, failFast?: () => string | undefined): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    const why = failFast?.();
    if (why !== undefined) throw new Error(`${what}: ${why}`);
    await sleep(200);
  }
  throw new Error(`${what}: not after ${ms} ms`);
}

/**
 * Starts a node: netns, private mount namespace with the CNI config and plugin dirs, containerd by PID.
 * Everything is registered with `s` (netns, tmp dirs, PIDs); call stop() for the orderly teardown.
 */
export async function startContainerdNode(s: Scope, opts: NodeOptions): Promise<ContainerdNode> {
  const dir = s.tmpdir('containerd');
  const netns = s.netns('node');

  const upper = {} as Record<(typeof OVERLAID)[number], string>;
  const work: Record<string, string> = {};
  for (const target of OVERLAID) {
    const base = path.join(dir, 'overlay', target.slice(1).replace('/', '-'));
    upper[target] = path.join(base, 'upper');
    work[target] = path.join(base, 'work');
    mkdirSync(upper[target], { recursive: true });
    mkdirSync(work[target], { recursive: true });
  }
  const confDir = path.join(upper['/etc'], 'cni/net.d');
  const binDir = path.join(upper['/opt'], 'cni/bin');
  mkdirSync(confDir, { recursive: true });
  mkdirSync(binDir, { recursive: true });
  writeFileSync(path.join(confDir, `10-${opts.conflist.name}.conflist`), JSON.stringify(opts.conflist, null, 2));
  for (const p of readdirSync(REFERENCE_PLUGINS)) symlinkSync(path.join(REFERENCE_PLUGINS, p), path.join(binDir, p));
  symlinkSync(CNI_BIN, path.join(binDir, 'twill'));

  const hostMnt = mntNs('self');
  const holder = s.spawn(['unshare', '--mount', '--propagation', 'slave', 'sleep', 'infinity']);
  const holderPid = holder.pid ?? -1;
  // Only once unshare has exec'd sleep is /proc/PID/ns/mnt the new, slave namespace.
  await waitFor(
    'mount namespace holder',
    30_000,
    () => {
      try {
        return readlinkSync(`/proc/${holderPid}/exe`) === '/usr/bin/sleep' && mntNs(holderPid) !== '' && mntNs(holderPid) !== hostMnt;
      } catch {
        return false;
      }
    },
    () => (holder.exitCode !== null ? `exited with ${holder.exitCode}` : undefined),
  );
  const ns = mntNs(holderPid);
  for (const target of OVERLAID) {
    if (mntNs(holderPid) !== ns || ns === hostMnt) throw new Error('mount namespace holder changed; refusing to mount');
    must(['nsenter', `--mount=/proc/${holderPid}/ns/mnt`, 'mount', '-t', 'overlay', `twill-${path.basename(target)}`, '-o', `lowerdir=${target},upperdir=${upper[target]},workdir=${work[target]}`, target]);
  }

  // CRI (disabled) would read the same dirs; ctr reads /etc/cni/net.d and /opt/cni/bin in the node.
  const paths = writeContainerdConfig(dir, { binDir: '/opt/cni/bin', confDir: '/etc/cni/net.d' });
  const daemon = s.spawn(['nsenter', `--mount=/proc/${holderPid}/ns/mnt`, `--net=/run/netns/${netns}`, 'containerd', '--config', paths.configFile]);
  const node = new ContainerdNode(netns, paths, upper, holderPid, ns, daemon.pid ?? -1);
  try {
    await waitFor(
      `containerd (${paths.socket})`,
      opts.startTimeoutMs ?? 90_000,
      () => existsSync(paths.socket) && node.ctr(['version'], 20_000).status === 0,
      () => (daemon.exitCode !== null ? `containerd exited with ${daemon.exitCode}` : undefined),
    );
  } catch (e) {
    await node.stop();
    throw e;
  }
  return node;
}
