/**
 * Builds the Go helpers the integration tests need into ROOT/.cache/ (gitignored): the libcni
 * driver (test/libcni-driver, rebuilt when missing or older than its sources) and, on request,
 * reference CNI plugins of a pinned version (built once per version). Go fetches modules through
 * the Go module proxy; GOFLAGS=-mod=mod lets it complete go.sum itself. Each build prints how long
 * it took, so a cold cache (a fresh CI machine) is visible in the test log.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './harness.js';

export const CACHE_DIR = path.join(ROOT, '.cache');
export const DRIVER_SRC = path.join(ROOT, 'test/libcni-driver');
export const DRIVER_BIN = path.join(CACHE_DIR, 'twill-libcni-driver');

/** A cold build (empty module and build caches, 2 busy cores) can take minutes. */
const BUILD_TIMEOUT_MS = 15 * 60 * 1000;

function goBinary(): string {
  return existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
}

function goEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GOFLAGS: '-mod=mod',
    GOPROXY: process.env.GOPROXY ?? 'https://proxy.golang.org,direct',
    GOTOOLCHAIN: 'local',
    ...extra,
  };
}

function runGo(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv, what: string): void {
  const started = process.hrtime.bigint();
  const r = spawnSync(goBinary(), args, { cwd, env, encoding: 'utf8', timeout: BUILD_TIMEOUT_MS });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.error || r.status !== 0) {
    throw new Error(`go ${args.join(' ')} (${what}) failed after ${seconds.toFixed(1)} s: ${r.error?.message ?? ''}${r.stderr}`);
  }
  console.log(`# go build: ${what} took ${seconds.toFixed(1)} s`);
}

function newestSourceMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    if (name.endsWith('.go') || name === 'go.mod' || name === 'go.sum') {
      newest = Math.max(newest, statSync(path.join(dir, name)).mtimeMs);
    }
  }
  return newest;
}

/** Returns the path of the libcni driver, building it first when missing or stale. */
export function ensureLibcniDriver(): string {
  if (existsSync(DRIVER_BIN) && statSync(DRIVER_BIN).mtimeMs >= newestSourceMtime(DRIVER_SRC)) return DRIVER_BIN;
  mkdirSync(CACHE_DIR, { recursive: true });
  // Build beside the target and rename: a concurrent reader never sees half a binary.
  const tmp = `${DRIVER_BIN}.tmp-${process.pid}`;
  try {
    runGo(['build', '-o', tmp, '.'], DRIVER_SRC, goEnv(), 'twill-libcni-driver');
    renameSync(tmp, DRIVER_BIN);
  } finally {
    rmSync(tmp, { force: true });
  }
  return DRIVER_BIN;
}

/**
 * Returns a directory holding the named reference plugins (e.g. ['meta/portmap', 'meta/bandwidth'])
 * of github.com/containernetworking/plugins at `version`, installing the missing ones.
 */
export function ensureReferencePlugins(version: string, plugins: readonly string[]): string {
  const dir = path.join(CACHE_DIR, `cni-plugins-${version}`);
  const missing = plugins.filter((p) => !existsSync(path.join(dir, path.basename(p))));
  if (missing.length === 0) return dir;
  mkdirSync(dir, { recursive: true });
  const pkgs = missing.map((p) => `github.com/containernetworking/plugins/plugins/${p}@${version}`);
  // `go install pkg@version` ignores any go.mod, so run it from the cache dir.
  runGo(['install', ...pkgs], CACHE_DIR, goEnv({ GOBIN: dir }), `reference plugins ${version} (${missing.join(', ')})`);
  return dir;
}
