/**
 * Namespace test harness: fresh "host" and "pod" network namespaces per test, named with a
 * per-run prefix, always removed (with any process started in them) even when the test fails.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file runs from dist/test/integration/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CNI_BIN = path.join(ROOT, 'bin/twill-cni');

/** Prefix of every namespace this test process creates: `twt<pid36>-`. */
export const NS_PREFIX = `twt${process.pid.toString(36)}-`;
let counter = 0;

export function sh(argv: readonly string[], input?: string): { status: number; stdout: string; stderr: string } {
  const [file, ...args] = argv;
  const r = spawnSync(file as string, args, { input: input ?? '', encoding: 'utf8' });
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function must(argv: readonly string[], input?: string): string {
  const r = sh(argv, input);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export class Scope {
  private readonly namespaces: string[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly dirs: string[] = [];

  /** A new network namespace with lo up; returns its name (path: /run/netns/<name>). */
  netns(label: string): string {
    counter += 1;
    const name = `${NS_PREFIX}${label}${counter}`;
    must(['ip', 'netns', 'add', name]);
    this.namespaces.push(name);
    must(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  tmpdir(label: string): string {
    const d = mkdtempSync(path.join(tmpdir(), `twill-${label}-`));
    this.dirs.push(d);
    return d;
  }

  /** Starts a long-running process whose PID is killed at cleanup. */
  spawn(argv: readonly string[]): ChildProcess {
    const [file, ...args] = argv;
    const child = spawn(file as string, args, { stdio: 'ignore' });
    this.children.push(child);
    return child;
  }

  cleanup(): void {
    for (const c of this.children) if (c.exitCode === null && c.pid !== undefined) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const ns of this.namespaces.reverse()) {
      for (const pid of sh(['ip', 'netns', 'pids', ns]).stdout.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      sh(['ip', 'netns', 'del', ns]);
    }
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}

/** Runs fn with a fresh Scope that is always cleaned up. */
export async function withScope<T>(fn: (s: Scope) => Promise<T> | T): Promise<T> {
  const scope = new Scope();
  try {
    return await fn(scope);
  } finally {
    scope.cleanup();
  }
}

export interface CniCall {
  command: string;
  containerId?: string;
  netns?: string;
  ifName?: string;
  args?: string;
  /** Host namespace to run the plugin in (ip netns exec). */
  host: string;
  config: unknown;
  /** Override the plugin path (e.g. the reference plugins). */
  plugin?: string;
}

export interface CniReply {
  status: number;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
}

export function cniEnv(call: Omit<CniCall, 'host' | 'config'>): string[] {
  return [
    `CNI_COMMAND=${call.command}`,
    `CNI_CONTAINERID=${call.containerId ?? ''}`,
    `CNI_NETNS=${call.netns ?? ''}`,
    `CNI_IFNAME=${call.ifName ?? ''}`,
    `CNI_ARGS=${call.args ?? ''}`,
    'CNI_PATH=/usr/lib/cni',
  ];
}

/** Executes the plugin exactly as a runtime does: env + config on stdin, result on stdout. */
export function cni(call: CniCall): CniReply {
  const stdin = typeof call.config === 'string' ? call.config : JSON.stringify(call.config);
  const r = sh(['ip', 'netns', 'exec', call.host, 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', ...cniEnv(call), call.plugin ?? CNI_BIN], stdin);
  let json: Record<string, unknown> | undefined;
  try {
    json = r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { ...r, json };
}

/** ping from a namespace: true when at least one reply came back. */
export function ping(ns: string, dst: string, count = 2): boolean {
  return sh(['ip', 'netns', 'exec', ns, 'ping', '-c', String(count), '-i', '0.2', '-W', '1', dst]).status === 0;
}

/** Snapshot of what a plugin call could change on the host: links, routes, IPAM files. */
export function hostState(host: string, ipamDir?: string): string {
  const links = must(['ip', '-n', host, '-o', 'link', 'show']).replace(/^\d+: /gm, '');
  const routes = must(['ip', '-n', host, 'route', 'show', 'table', 'all']);
  const files = ipamDir ? sh(['find', ipamDir, '-mindepth', '1']).stdout.split('\n').sort().join('\n') : '';
  return `${links}\n--\n${routes}\n--\n${files}`;
}
