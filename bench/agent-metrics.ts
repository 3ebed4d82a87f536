/** Reads a lab agent's reconcile counters from its health endpoint (127.0.0.1:9402 in the node netns). */
import { spawnSync } from 'node:child_process';

export interface ReconcileMetrics {
  /** Seconds spent in reconcile passes so far (`twill_reconcile_duration_seconds_sum`). */
  sum: number;
  /** Reconcile passes so far (`twill_reconcile_duration_seconds_count`). */
  count: number;
}

export function reconcileMetrics(netns: string): ReconcileMetrics {
  const r = spawnSync('nsenter', [`--net=/run/netns/${netns}`, 'curl', '-sf', 'http://127.0.0.1:9402/metrics'], { encoding: 'utf8' });
  const text = r.stdout ?? '';
  const sum = /^twill_reconcile_duration_seconds_sum (\S+)$/m.exec(text)?.[1];
  const count = /^twill_reconcile_duration_seconds_count (\S+)$/m.exec(text)?.[1];
  return { sum: Number(sum), count: Number(count) };
}
