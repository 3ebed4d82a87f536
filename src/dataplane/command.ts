/**
 * The one place Twill runs programs: argument arrays only, never a shell. Batches go on stdin
 * (`ip -batch -`, `nft -f -`). In-namespace work is `nsenter --net=<path> <program>`: Node never
 * calls setns itself (libuv's thread pool would run file I/O in whichever namespace).
 */
import { spawnSync } from 'node:child_process';
import { ErrorCode, TwillError } from '../common/errors.js';

/** Upper bound for one `ip`/`nft`/`nsenter` run; they normally take a few milliseconds. */
export const COMMAND_TIMEOUT_MS = 30_000;

export interface CommandResult {
  status: number;
  stdout: string;
  stderr: string;
}

export interface CommandRunner {
  run(argv: readonly string[], input?: string): CommandResult;
}

/** Runs programs with spawnSync; each run is killed after `timeoutMs`. */
export function createSpawnRunner(timeoutMs: number): CommandRunner {
  return {
    run(argv, input) {
      const [file, ...args] = argv;
      if (file === undefined) throw new TwillError(ErrorCode.Internal, 'empty command');
      // A hung program must not hang the plugin, nor the agent that serves CNI calls in its own loop.
      const r = spawnSync(file, args, { input: input ?? '', encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs, killSignal: 'SIGKILL' });
      if (r.error) {
        const timedOut = (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT';
        const msg = timedOut ? `${file} did not finish within ${timeoutMs / 1000} s` : `cannot run ${file}: ${r.error.message}`;
        throw new TwillError(ErrorCode.KernelFailure, msg, { cause: r.error });
      }
      return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

export const spawnRunner: CommandRunner = createSpawnRunner(COMMAND_TIMEOUT_MS);

/** argv prefix that runs `program` in the network namespace at `netns` (or here, when undefined). */
export function inNetns(netns: string | undefined, program: readonly string[]): string[] {
  return netns === undefined ? [...program] : ['nsenter', `--net=${netns}`, ...program];
}

/** Runs an `ip -batch -`; throws KernelFailure with ip's own message on failure. */
export function ipBatch(runner: CommandRunner, lines: readonly string[], opts: { netns?: string; json?: boolean; what: string }): string {
  if (lines.length === 0) return '';
  const argv = inNetns(opts.netns, opts.json ? ['ip', '-json', '-details', '-batch', '-'] : ['ip', '-batch', '-']);
  const r = runner.run(argv, `${lines.join('\n')}\n`);
  if (r.status !== 0) {
    throw new TwillError(ErrorCode.KernelFailure, `${opts.what} failed: ${r.stderr.trim() || `exit status ${r.status}`}`, {
      details: lines.join('; '),
    });
  }
  return r.stdout;
}

/** Parses the output of `ip -json -batch`: one JSON array per command, one per line. */
export function parseJsonLines(text: string): unknown[][] {
  const out: unknown[][] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const v: unknown = JSON.parse(line);
    out.push(Array.isArray(v) ? v : [v]);
  }
  return out;
}
