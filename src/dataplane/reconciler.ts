/**
 * Makes the kernel hold exactly a DesiredState: read Twill's objects, diff, apply the lines in
 * batches, re-read and report what still differs. Every apply starts from a fresh read (full
 * resync, never deltas), so a restarted agent, a hand-deleted route or a failed line is repaired by
 * the next apply; when nothing differs nothing is written. Calls are serialised.
 *
 * Batches: consecutive lines for the same program go in one `-force -batch`, except `neigh` lines,
 * which get their own batch because `ip` exits on the first failing neighbour line. When a batch
 * was aborted that way (ip exits without saying which line failed), apply re-reads and goes round
 * again with every remaining line in a batch of its own, so the failing object is named and all the
 * others are applied. A line that failed on its own is remembered and sent alone in later applies
 * too, so one persistently failing object never aborts a batch again (nor costs a second round);
 * it is retried on every apply until it succeeds.
 */
import type { DesiredState } from '../backends/types.js';
import { computeDiff } from './diff.js';
import type { KernelCommand, KernelPort, ObjectKind, Program } from './state.js';

export type ReconcileErrorCode = 'invalid-spec' | 'command-failed' | 'read-failed';

export interface ReconcileError {
  readonly code: ReconcileErrorCode;
  readonly message: string;
  /** The batch line (`ip: ...`), for command-failed when known: it names the object. */
  readonly line?: string;
  /** The kind of object the failed line was for, when known. */
  readonly kind?: ObjectKind;
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
  /** Lines (`program: line`) that failed in a batch of their own; they keep being sent alone. */
  private readonly suspects = new Set<string>();

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
    let isolateAll = false;
    for (let round = 0; actual !== undefined && round < this.maxRounds; round += 1) {
      const diff = computeDiff(desired, actual);
      if (round === 0) for (const message of diff.rejected) errors.push({ code: 'invalid-spec', message });
      pending = diff.commands;
      if (pending.length === 0) break;
      let aborted = false;
      const lastRound = round === this.maxRounds - 1;
      for (const batch of batches(pending, (c) => isolateAll || this.suspects.has(keyOf(c)))) {
        sent.push(...batch.commands.map(keyOf));
        for (const f of await this.kernel.execute(batch.program, batch.commands.map((c) => c.line))) {
          // An aborted batch of one line: that line is the one that failed.
          const only = f.line === undefined && batch.commands.length === 1 ? batch.commands[0] : undefined;
          const cmd = only ?? batch.commands.find((c) => c.line === f.line);
          if (cmd === undefined) {
            aborted = true;
            // Not reported when another round will name the failing line.
            if (lastRound) errors.push({ code: 'command-failed', message: f.message });
            continue;
          }
          const key = keyOf(cmd);
          failed.add(key);
          if (batch.commands.length === 1) this.suspects.add(key);
          const message = only ? f.message.replace(/ \(batch aborted\)$/, '') : f.message;
          errors.push({ code: 'command-failed', message: `${key}: ${message}`, line: key, kind: cmd.kind });
        }
      }
      actual = await read();
      if (actual !== undefined) pending = computeDiff(desired, actual).commands;
      if (!aborted) break;
      isolateAll = true;
    }
    const left = new Set(pending.map(keyOf));
    for (const k of [...this.suspects]) if (!left.has(k)) this.suspects.delete(k);
    const changes = new Set(sent.filter((l) => !failed.has(l) && !left.has(l))).size;
    // A line that failed once but took effect in a later round is not an error of this apply.
    const current = errors.filter((e) => e.line === undefined || actual === undefined || left.has(e.line));
    return { changes, commands: sent, errors: dedupe(current), pending: [...left], converged: actual !== undefined && left.size === 0 };
  }
}

interface Batch {
  program: Program;
  commands: KernelCommand[];
}

const keyOf = (c: KernelCommand): string => `${c.program}: ${c.line}`;

/**
 * Groups consecutive commands by program; neighbour lines never share a batch with others, and a
 * command for which `alone` is true gets a batch of its own.
 */
export function batches(commands: readonly KernelCommand[], alone: (c: KernelCommand) => boolean = () => false): Batch[] {
  const out: Batch[] = [];
  let key = '';
  for (const c of commands) {
    const single = alone(c);
    const k = single ? '' : c.kind === 'neigh' ? `${c.program}:neigh` : c.program;
    const last = out[out.length - 1];
    if (last !== undefined && k !== '' && k === key) last.commands.push(c);
    else out.push({ program: c.program, commands: [c] });
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
