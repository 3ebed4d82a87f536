/**
 * `twill connectivity test`: from every pod to one pod on every node (and to every node's
 * underlay IP), ICMP and TCP, as a pass/fail matrix per address family: a dual-stack pod is probed
 * at each of its addresses from the source pod's address of the same family. Exit status 1 on any
 * failure.
 */
import { spawnSync } from 'node:child_process';
import { LAB_HTTP_PORT, type LabState } from './lab.js';

export interface Probe {
  from: string;
  fromNetns: string;
  to: string;
  ip: string;
  /** Address family of `ip` (absent in results of older versions: 4). */
  family?: 4 | 6;
  tcp: boolean;
}

const familyOf = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4);

export interface ProbeResult extends Probe {
  icmp: boolean;
  tcpOk: boolean | undefined;
}

/** Pure: the probes for a lab's current pods. */
export function planProbes(state: LabState): Probe[] {
  const pods = Object.entries(state.pods);
  const addressesOf = (p: { ip: string; ips?: string[] }): string[] => p.ips ?? [p.ip];
  const targets: Array<{ to: string; ip: string; family: 4 | 6; tcp: boolean }> = [];
  for (const node of state.plan.nodes) {
    const first = pods.find(([, p]) => p.node === node.name);
    if (first) for (const ip of addressesOf(first[1])) targets.push({ to: first[0], ip, family: familyOf(ip), tcp: true });
    targets.push({ to: node.name, ip: node.address, family: 4, tcp: false });
    if (node.address6 !== undefined) targets.push({ to: node.name, ip: node.address6, family: 6, tcp: false });
  }
  const probes: Probe[] = [];
  for (const [name, pod] of pods) {
    // A pod probes only the families it has an address in.
    const own = new Set(addressesOf(pod).map(familyOf));
    for (const t of targets) if (t.to !== name && own.has(t.family)) probes.push({ from: name, fromNetns: pod.netns, ...t });
  }
  return probes;
}

function icmp(netns: string, ip: string): boolean {
  return spawnSync('ip', ['netns', 'exec', netns, 'ping', '-c', '1', '-W', '2', ip], { stdio: 'ignore' }).status === 0;
}

function tcp(netns: string, ip: string): boolean {
  const r = spawnSync('ip', ['netns', 'exec', netns, '/bin/busybox', 'nc', '-w', '2', ip, String(LAB_HTTP_PORT)], { encoding: 'utf8', input: '', timeout: 5000 });
  return (r.stdout ?? '').includes('twill');
}

function probe(p: Probe): ProbeResult {
  let ok = icmp(p.fromNetns, p.ip);
  if (!ok) ok = icmp(p.fromNetns, p.ip); // one retry: the first packet may wait for ARP/neighbour resolution
  return { ...p, icmp: ok, tcpOk: p.tcp ? tcp(p.fromNetns, p.ip) : undefined };
}

/** Runs the probes one by one; `onResult` hears each as soon as it completes (`i` counts from 1 of `n`). */
export function runProbes(probes: Probe[], opts: { onResult?: (r: ProbeResult, i: number, n: number) => void; probe?: (p: Probe) => ProbeResult } = {}): ProbeResult[] {
  const run = opts.probe ?? probe;
  return probes.map((p, k) => {
    const r = run(p);
    opts.onResult?.(r, k + 1, probes.length);
    return r;
  });
}

/** A probe's cell: ok, FAIL (both), FAIL-icmp or FAIL-tcp. */
export function verdict(r: ProbeResult): string {
  return r.icmp && r.tcpOk !== false ? 'ok' : !r.icmp && r.tcpOk === false ? 'FAIL' : !r.icmp ? 'FAIL-icmp' : 'FAIL-tcp';
}

/** One progress line: `[3/24] pod1-1 -> node2 192.0.2.12 icmp: ok` (an IPv6 target shows its address). */
export function probeLine(r: ProbeResult, i: number, n: number): string {
  return `[${String(i).padStart(String(n).length)}/${n}] ${r.from} -> ${r.to} ${r.ip} ${r.tcp ? 'icmp+tcp' : 'icmp'}: ${verdict(r)}`;
}

/**
 * Renders one matrix per address family: rows = source pods, columns = targets; cell "ok",
 * "FAIL-icmp", "FAIL-tcp" or "FAIL". With more than one family each matrix has a title line.
 */
export function renderMatrix(results: ProbeResult[]): string[] {
  const byName = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });
  const families = [...new Set(results.map((r) => r.family ?? familyOf(r.ip)))].sort();
  const lines: string[] = [];
  for (const family of families) {
    const of = results.filter((r) => (r.family ?? familyOf(r.ip)) === family);
    const cols = [...new Set(of.map((r) => r.to))].sort(byName);
    const rows = [...new Set(of.map((r) => r.from))].sort(byName);
    const width = Math.max(...cols.map((c) => c.length), 6) + 1;
    if (families.length > 1) lines.push(`IPv${family}:`);
    lines.push(`${''.padEnd(14)}${cols.map((c) => c.padEnd(width)).join('')}`);
    for (const row of rows) {
      const cells = cols.map((c) => {
        const r = of.find((x) => x.from === row && x.to === c);
        return (r ? verdict(r) : '-').padEnd(width);
      });
      lines.push(`${row.padEnd(14)}${cells.join('')}`);
    }
  }
  const failed = results.filter((r) => !r.icmp || r.tcpOk === false).length;
  lines.push(`connectivity: ${results.length - failed} of ${results.length} probes ok${failed ? `, ${failed} FAILED` : ''}`);
  return lines;
}
