/** Shapes shared by the CNI latency benchmark's outer process, inner process and report. */
/** One plugin configuration exercised in the benchmark. */
export interface Side {
  key: string;
  label: string;
  plugin: string;
  /** Extra environment the runtime passes (NODE_EXTRA_CA_CERTS or not). */
  extraEnv: Record<string, string>;
  config: Record<string, unknown>;
  /** Pod namespaces: warm-up ones first, then one per iteration. */
  pods: string[];
  reference: boolean;
}

export interface InnerParams {
  iterations: number;
  warmup: number;
  cniPath: string;
  sides: Side[];
  /** Namespace used by the `nsenter ... ip -batch -` probe. */
  probeNetns: string;
  plugin: string;
  nec: string;
  resultFile: string;
}

export interface Samples {
  add: Record<string, number[]>;
  del: Record<string, number[]>;
  /** CPU ms of each call (same order as add/del). */
  addCpu: Record<string, number[]>;
  delCpu: Record<string, number[]>;
  probes: Record<string, number[]>;
  probesCpu: Record<string, number[]>;
  loadBefore: number[];
  loadAfter: number[];
}

export interface Stat {
  n: number;
  median: number;
  p95: number;
  min: number;
  mean: number;
  /** Median absolute deviation, as a share of the median: a robust noise figure. */
  madPct: number;
}

