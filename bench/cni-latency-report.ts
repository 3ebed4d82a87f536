/** The CNI latency benchmark's report: ratios against the reference, breakdown, table. */
import type { InnerParams, Samples, Side, Stat } from './cni-latency-types.js';
import { mean, pairedRatio, stat } from './stats.js';

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');

function pad(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ');
}

/** What node 1's twilld did while the calls ran (from its metrics, before and after). */
export interface AgentActivity {
  reconcilePasses: number;
  reconcileSeconds: number;
  resyncSeconds: number;
}

export interface Report {
  date: string;
  uptime: string;
  agent: AgentActivity;
  iterations: number;
  warmup: number;
  node: string;
  loadavg: { before: number[]; after: number[] };
  rows: Array<{
    op: string;
    side: string;
    twill: Stat;
    reference: Stat;
    ratioMedian: number;
    ratioP95: number;
    ratioPairedMedian: number;
    /** For sides other than the shipped plugin: median of per-iteration ratios side/twill. */
    vsTwillPairedMedian?: number;
    /** Mean CPU ms (user + system) of the call's whole process tree. */
    twillCpuMean: number;
    referenceCpuMean: number;
  }>;
  probes: Record<string, Stat>;
  probesCpuMean: Record<string, number>;
  breakdown: Record<string, number>;
  unit: 'ms';
}

export function report(p: InnerParams, s: Samples, agent: AgentActivity, date: Date, uptime: string): Report {
  const ref = p.sides.find((x) => x.reference) as Side;
  const rows: Report['rows'] = [];
  for (const op of ['ADD', 'DEL'] as const) {
    const bucket = op === 'ADD' ? s.add : s.del;
    const cpu = op === 'ADD' ? s.addCpu : s.delCpu;
    const r = bucket[ref.key] ?? [];
    const rs = stat(r);
    for (const side of p.sides.filter((x) => !x.reference)) {
      const t = bucket[side.key] ?? [];
      const ts = stat(t);
      rows.push({
        op,
        side: side.label,
        twill: ts,
        reference: rs,
        ratioMedian: ts.median / rs.median,
        ratioP95: ts.p95 / rs.p95,
        ratioPairedMedian: pairedRatio(t, r),
        ...(side.key === 'twill' ? {} : { vsTwillPairedMedian: pairedRatio(t, bucket.twill ?? []) }),
        twillCpuMean: mean(cpu[side.key] ?? []),
        referenceCpuMean: mean(cpu[ref.key] ?? []),
      });
    }
  }
  const probesOut: Record<string, Stat> = {};
  for (const [k, v] of Object.entries(s.probes)) probesOut[k] = stat(v);
  const probesCpuMean: Record<string, number> = {};
  for (const [k, v] of Object.entries(s.probesCpu)) probesCpuMean[k] = mean(v);
  const med = (k: string): number => probesOut[k]?.median ?? NaN;
  const addMed = stat(s.add.twill ?? []).median;
  const delMed = stat(s.del.twill ?? []).median;
  const nodeStart = med('node -e 0');
  const bundleLoad = med('plugin VERSION') - nodeStart;
  const ipHost = med('ip -batch -');
  const ipPod = med('nsenter ip -batch -');
  return {
    date: date.toISOString(),
    uptime,
    agent,
    iterations: p.iterations,
    warmup: p.warmup,
    node: process.version,
    loadavg: { before: s.loadBefore, after: s.loadAfter },
    rows,
    probes: probesOut,
    probesCpuMean,
    breakdown: {
      add: addMed,
      del: delMed,
      nodeStart,
      bundleLoad,
      ipSpawnsAdd: ipHost + ipPod,
      restAdd: addMed - nodeStart - bundleLoad - ipHost - ipPod,
      ipSpawnsDel: ipHost,
      restDel: delMed - nodeStart - bundleLoad - ipHost,
      caCertsCost: med('node -e 0 (NODE_EXTRA_CA_CERTS set)') - nodeStart,
    },
    unit: 'ms',
  };
}

export function printTable(r: Report): void {
  const first = Math.max(24, ...r.rows.map((x) => x.op.length + 1 + x.side.length));
  const w = [first, 12, 9, 10, 7, 12, 9, 12, 9, 7];
  const out: string[] = [];
  out.push(`twill-cni vs reference bridge+host-local: ${r.iterations} iterations (+${r.warmup} warm-up discarded), times in ms, node ${r.node}`);
  out.push(`load average before ${r.loadavg.before.map(f2).join(' ')}, after ${r.loadavg.after.map(f2).join(' ')}`);
  out.push(pad(['op', 'twill median', 'twill p95', 'ref median', 'ref p95', 'ratio median', 'ratio p95', 'paired ratio', 'twill min', 'ref min'], w));
  out.push(w.map((n) => '-'.repeat(n)).join('-+-'));
  for (const row of r.rows) {
    out.push(
      pad(
        [
          `${row.op} ${row.side}`,
          f1(row.twill.median),
          f1(row.twill.p95),
          f1(row.reference.median),
          f1(row.reference.p95),
          `${f2(row.ratioMedian)}x`,
          `${f2(row.ratioP95)}x`,
          `${f2(row.ratioPairedMedian)}x`,
          f1(row.twill.min),
          f1(row.reference.min),
        ],
        w,
      ),
    );
  }
  const others = r.rows.filter((x) => x.vsTwillPairedMedian !== undefined);
  if (others.length > 0) {
    out.push('');
    out.push('against the shipped plugin with NODE_EXTRA_CA_CERTS set (median of per-iteration ratios, median difference):');
    for (const x of others) {
      const base = r.rows.find((y) => y.op === x.op && y.vsTwillPairedMedian === undefined);
      out.push(`  ${x.op} ${x.side}: ${f2(x.vsTwillPairedMedian ?? NaN)}x, ${f1(x.twill.median - (base?.twill.median ?? NaN))} ms`);
    }
  }
  out.push('');
  out.push('noise (median absolute deviation / median): ' + r.rows.map((x) => `${x.op} ${x.side.split(' ')[0]}${x.side.includes('unset') ? '-noCA' : ''} ${f1(x.twill.madPct)}%`).join(', ') +
    `, ADD reference ${f1(r.rows.find((x) => x.op === 'ADD')?.reference.madPct ?? NaN)}%, DEL reference ${f1(r.rows.find((x) => x.op === 'DEL')?.reference.madPct ?? NaN)}%`);
  out.push('');
  out.push('CPU per call (user + system of the whole process tree, mean, ms; 10 ms ticks averaged; less sensitive to load than wall time):');
  for (const x of r.rows) {
    out.push(`  ${`${x.op} ${x.side}`.padEnd(first)}  twill ${f1(x.twillCpuMean).padStart(6)}  reference ${f1(x.referenceCpuMean).padStart(6)}  ratio ${f2(x.twillCpuMean / x.referenceCpuMean)}x`);
  }
  out.push('');
  out.push('probes (same run, interleaved with the ADDs):');
  for (const [k, v] of Object.entries(r.probes)) {
    out.push(`  ${k.padEnd(58)} median ${f1(v.median).padStart(6)}  p95 ${f1(v.p95).padStart(6)}  min ${f1(v.min).padStart(6)}  cpu ${f1(r.probesCpuMean[k] ?? NaN).padStart(6)}`);
  }
  const b = r.breakdown;
  out.push('');
  out.push(`ADD = node start ${f1(b.nodeStart ?? NaN)} + bundle load ${f1(b.bundleLoad ?? NaN)} + 2 ip spawns ${f1(b.ipSpawnsAdd ?? NaN)} + rest ${f1(b.restAdd ?? NaN)}  (median ${f1(b.add ?? NaN)} ms)`);
  out.push(`DEL = node start ${f1(b.nodeStart ?? NaN)} + bundle load ${f1(b.bundleLoad ?? NaN)} + 1 ip spawn ${f1(b.ipSpawnsDel ?? NaN)} + rest ${f1(b.restDel ?? NaN)}  (median ${f1(b.del ?? NaN)} ms)`);
  out.push(`NODE_EXTRA_CA_CERTS costs ${f1(b.caCertsCost ?? NaN)} ms per Node start when a Node honours it (the plugin's shebang drops it)`);
  out.push(`node 1's twilld ran ${r.agent.reconcilePasses} reconcile passes (${f2(r.agent.reconcileSeconds)} s, resync every ${r.agent.resyncSeconds} s) while the calls ran`);
  out.push('');
  out.push(...markdown(r));
  process.stdout.write(`${out.join('\n')}\n`);
}


/** The ready-to-paste table: date, load, one row per op and side (times in ms, medians). */
export function markdown(r: Report): string[] {
  const out = [
    `CNI latency, ${r.date.replace(/\.\d+Z$/, 'Z')}, ${r.iterations} iterations, node ${r.node}, \`uptime\`: ${r.uptime}`,
    '',
    '| op | side | median ms | p95 ms | CPU ms | vs reference (paired) |',
    '|---|---|---|---|---|---|',
  ];
  for (const op of ['ADD', 'DEL']) {
    const rows = r.rows.filter((x) => x.op === op);
    for (const x of rows) out.push(`| ${op} | ${x.side} | ${f1(x.twill.median)} | ${f1(x.twill.p95)} | ${f1(x.twillCpuMean)} | ${f2(x.ratioPairedMedian)}x |`);
    const any = rows[0];
    if (any) out.push(`| ${op} | reference bridge+host-local | ${f1(any.reference.median)} | ${f1(any.reference.p95)} | ${f1(any.referenceCpuMean)} | 1.00x |`);
  }
  out.push('');
  out.push(
    `"via a reconciling twilld": node 1 of a 2-node vxlan lab (real etcd; twilld resyncing every ${r.agent.resyncSeconds} s, ${r.agent.reconcilePasses} reconcile passes during the run); ` +
      `"standalone": the same bin/twill-cni with no agent socket. Interleaved call by call in one run. ` +
      'CPU: the calling process tree (for the agent path the work done inside twilld is not in it).',
  );
  return out;
}
