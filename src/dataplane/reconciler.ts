/**
 * Makes the kernel hold exactly a DesiredState: read Twill's objects, diff, apply the lines in
 * batches, re-read and report what still differs. Every apply starts from a fresh read (full
 * resync, never deltas), so a restarted agent, a hand-deleted route or a failed line is repaired by
 * the next apply; when nothing differs nothing is written. Calls are serialised.
 *
 * Batches: consecutive lines for the same program go in one `-force -batch`, except `neigh` lines,
 * which get their own batch because `ip` exits on the first failing neighbour line. When a batch
 * was aborted that way, apply re-reads and goes round again (at most `maxRounds`).
 */
import type { DesiredState } from '../backends/types.js';
import { computeDiff } from './diff.js';
import type { KernelCommand, KernelPort, Program } from './state.js';

export type ReconcileErrorCode = 'invalid-spec' | 'command-failed' | 'read-failed';

export interface ReconcileError {
  readonly code: ReconcileErrorCode;
  readonly message: string;
  /** The batch line, for command-failed when known. */
  readonly line?: string;
}

export interface ApplyReport {
  /** Lines that took effect. 0 when the kernel already matched. */
  readonly changes: number;
  /** Every line sent, in order (`ip: ...`, `bridge: ...`). */
  readonly commands: readonly string[];
  readonly errors: readonly ReconcileError[];
  /** Lines that would still be needed after the final re-read; empty when converged. */
  readonly pending: readonly string[];
  readonly converged: boolean;
}

export interface ReconcilerOptions {
  /** Apply rounds when a batch was aborted (default 3). */
  readonly maxRounds?: number;
}

export class Reconciler {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly maxRounds: number;

  constructor(
    private readonly kernel: KernelPort,
    opts: ReconcilerOptions = {},
  ) {
    this.maxRounds = opts.maxRounds ?? 3;
  }

  apply(desired: DesiredState): Promise<ApplyReport> {
    const run = this.queue.then(() => this.applyNow(desired));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async applyNow(desired: DesiredState): Promise<ApplyReport> {
    const errors: ReconcileError[] = [];
    const sent: string[] = [];
    const failed = new Set<string>();
    const read = async () => {
      try {
        return await this.kernel.read();
      } catch (e) {
        errors.push({ code: 'read-failed', message: e instanceof Error ? e.message : String(e) });
        return undefined;
      }
    };
    let actual = await read();
    let pending: readonly KernelCommand[] = [];
    for (let round = 0; actual !== undefined && round < this.maxRounds; round += 1) {
      const diff = computeDiff(desired, actual);
      if (round === 0) for (const message of diff.rejected) errors.push({ code: 'invalid-spec', message });
      pending = diff.commands;
      if (pending.length === 0) break;
      let aborted = false;
      for (const batch of batches(pending)) {
        sent.push(...batch.lines.map((l) => `${batch.program}: ${l}`));
        for (const f of await this.kernel.execute(batch.program, batch.lines)) {
          if (f.line === undefined) aborted = true;
          else failed.add(`${batch.program}: ${f.line}`);
          errors.push({ code: 'command-failed', message: f.message, ...(f.line === undefined ? {} : { line: `${batch.program}: ${f.line}` }) });
        }
      }
      actual = await read();
      if (actual !== undefined) pending = computeDiff(desired, actual).commands;
      if (!aborted) break;
    }
    const left = new Set(pending.map((c) => `${c.program}: ${c.line}`));
    const changes = new Set(sent.filter((l) => !failed.has(l) && !left.has(l))).size;
    return { changes, commands: sent, errors: dedupe(errors), pending: [...left], converged: actual !== undefined && left.size === 0 };
  }
}

interface Batch {
  program: Program;
  lines: string[];
}

/** Groups consecutive commands by program; neighbour lines never share a batch with others. */
export function batches(commands: readonly KernelCommand[]): Batch[] {
  const out: Batch[] = [];
  let key = '';
  for (const c of commands) {
    const k = c.kind === 'neigh' ? `${c.program}:neigh` : c.program;
    const last = out[out.length - 1];
    if (last !== undefined && k === key) last.lines.push(c.line);
    else out.push({ program: c.program, lines: [c.line] });
    key = k;
  }
  return out;
}

function dedupe(errors: ReconcileError[]): ReconcileError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = `${e.code}|${e.line ?? ''}|${e.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
