/**
 * The one place Twill runs programs: argument arrays only, never a shell. Batches go on stdin
 * (`ip -batch -`, `nft -f -`). In-namespace work is `nsenter --net=<path> <program>`: Node never
 * calls setns itself (libuv's thread pool would run file I/O in whichever namespace).
 */
import { spawnSync } from 'node:child_process';
import { ErrorCode, TwillError } from '../common/errors.js';

export interface CommandResult {
  status: number;
  stdout: string;
  stderr: string;
}

export interface CommandRunner {
  run(argv: readonly string[], input?: string): CommandResult;
}

export const spawnRunner: CommandRunner = {
  run(argv, input) {
    const [file, ...args] = argv;
    if (file === undefined) throw new TwillError(ErrorCode.Internal, 'empty command');
    const r = spawnSync(file, args, { input: input ?? '', encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (r.error) {
      throw new TwillError(ErrorCode.KernelFailure, `cannot run ${file}: ${r.error.message}`, { cause: r.error });
    }
    return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  },
};

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
