/** Robust statistics for benchmarks: nearest-rank quantiles, median absolute deviation, paired ratios. */
import type { Stat } from './cni-latency-types.js';

export function quantile(sorted: readonly number[], q: number): number {
  // nearest-rank
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

export function stat(xs: readonly number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  const median = quantile(s, 0.5);
  const dev = s.map((x) => Math.abs(x - median)).sort((a, b) => a - b);
  return {
    n: s.length,
    median,
    p95: quantile(s, 0.95),
    min: s[0] ?? NaN,
    mean: mean(s),
    madPct: (100 * quantile(dev, 0.5)) / median,
  };
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

/** Median of per-iteration ratios a[i]/b[i]: pairs calls that ran back to back. */
export function pairedRatio(a: readonly number[], b: readonly number[]): number {
  const r = a.map((x, i) => x / (b[i] ?? NaN)).filter((x) => Number.isFinite(x));
  return quantile(r.sort((x, y) => x - y), 0.5);
}


/** Median with interpolation between the two middle values of an even count. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Nearest-rank percentile of unsorted samples. */
export function percentile(xs: readonly number[], q: number): number {
  return quantile([...xs].sort((a, b) => a - b), q);
}
