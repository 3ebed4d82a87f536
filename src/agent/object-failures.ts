/**
 * Per-object failure reporting of one reconcile: a log line naming each object the kernel refused,
 * and the per-kind failure metrics. The reconciler isolates such objects (see reconciler.ts); this
 * only makes them visible.
 */
import type { Logger } from 'pino';
import type { ApplyReport } from '../dataplane/reconciler.js';
import type { ObjectKind } from '../dataplane/state.js';
import type { AgentMetrics } from './health.js';

const KINDS: readonly ObjectKind[] = ['link', 'addr', 'neigh', 'fdb', 'route'];

/** Counts of failed objects by kind (pure). */
export function failedObjectsByKind(report: ApplyReport): Record<ObjectKind, number> {
  const counts = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<ObjectKind, number>;
  for (const e of report.errors) if (e.code === 'command-failed' && e.kind !== undefined) counts[e.kind] += 1;
  return counts;
}

export function recordObjectFailures(report: ApplyReport, metrics: AgentMetrics, log: Logger): void {
  for (const e of report.errors) {
    if (e.code === 'command-failed' && e.kind !== undefined) log.warn({ kind: e.kind, object: e.line }, `kernel object not applied: ${e.message}`);
  }
  const counts = failedObjectsByKind(report);
  for (const kind of KINDS) {
    metrics.objectsFailing.set({ kind }, counts[kind]);
    if (counts[kind] > 0) metrics.objectFailures.inc({ kind }, counts[kind]);
  }
}
