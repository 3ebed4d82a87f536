/**
 * The real KernelPort: reads with kernel-reader.ts, writes with `ip -force -batch -` and
 * `bridge -force -batch -` (a failing line does not stop the others), optionally inside a network
 * namespace via nsenter. Failures are mapped back to their lines from the programs' stderr
 * ("Command failed -:N"); `ip neigh` exits on a kernel error instead of going on, which shows up as
 * a trailing message with no line: reported as an aborted batch.
 */
import { spawnAsyncRunner, type AsyncCommandRunner } from './async-command.js';
import { inNetns } from './command.js';
import { readKernelState } from './kernel-reader.js';
import type { KernelPort, LineFailure } from './state.js';

export interface SystemKernelOptions {
  readonly runner?: AsyncCommandRunner;
  /** Network namespace path; the agent's own namespace when absent. */
  readonly netns?: string;
}

export function systemKernel(opts: SystemKernelOptions = {}): KernelPort {
  const runner = opts.runner ?? spawnAsyncRunner;
  const netns = opts.netns === undefined ? {} : { netns: opts.netns };
  return {
    read: () => readKernelState(runner, netns),
    async execute(program, lines) {
      if (lines.length === 0) return [];
      const r = await runner.run(inNetns(opts.netns, [program, '-force', '-batch', '-']), `${lines.join('\n')}\n`);
      return parseBatchFailures(lines, r.stderr, r.status);
    },
  };
}

/** Maps `-force -batch` stderr to failing lines. */
export function parseBatchFailures(lines: readonly string[], stderr: string, status: number): LineFailure[] {
  const failures: LineFailure[] = [];
  let pending: string[] = [];
  for (const text of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)$/.exec(text.trim());
    if (m) {
      failures.push({ line: lines[Number(m[1]) - 1], message: pending.join('; ') || 'failed' });
      pending = [];
    } else if (text.trim() !== '') {
      pending.push(text.trim());
    }
  }
  if (pending.length > 0 || (status !== 0 && failures.length === 0)) {
    failures.push({ line: undefined, message: `${pending.join('; ') || `exit status ${status}`} (batch aborted)` });
  }
  return failures;
}
