/**
 * Cluster commands of the CLI: `twill config get|set`, `twill nodes`, `twill status`,
 * `twill ipam show`. Each reads the datastore (or the node's IPAM records); main.ts renders text, JSON or YAML.
 */
import { CONFIG_KEY, SUBNETS_PREFIX } from '../common/constants.js';
import type { Datastore } from '../datastore/types.js';
import { isDatastoreError } from '../datastore/types.js';
import { listHostVeths } from '../cni/host-veths.js';
import { hostVethName } from '../cni/naming.js';
import { spawnRunner } from '../dataplane/command.js';
import { FsIpamStore } from '../ipam/fs-store.js';
import { parseClusterConfig, renderClusterConfig } from '../model/cluster-config.js';
import { isExpired, parseLeases } from '../model/lease.js';
import { formatPrefix } from '../net/ip.js';
import { formatCidr, formatIPv4 } from '../net/ipv4.js';

export interface NodeRow {
  name: string;
  subnet: string;
  /** Dual stack: the node's IPv6 pod subnet, when its lease has one. */
  subnet6?: string;
  /** The node's announced IPv6 underlay address, when it has one. */
  publicIPv6?: string;
  publicIP: string;
  backend: string;
  leaseExpiry: string;
  expired: boolean;
  reachable: boolean | null;
}

export async function withStore<T>(endpoints: string[], fn: (store: Datastore) => Promise<T>): Promise<T> {
  // The etcd client (grpc) loads only for the commands that talk to the datastore.
  const { EtcdDatastore } = await import('../datastore/etcd/etcd-store.js');
  const store = new EtcdDatastore({ endpoints, requestTimeoutMs: 3000, dialTimeoutMs: 3000 });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export async function configGet(store: Datastore): Promise<string | undefined> {
  return (await store.get(CONFIG_KEY))?.value;
}

/** Validates, then writes (create or compare-and-swap update). Returns the errors, empty on success. */
export async function configSet(store: Datastore, text: string): Promise<string[]> {
  const parsed = parseClusterConfig(text);
  if (!parsed.ok) return parsed.errors;
  const value = renderClusterConfig(parsed.config);
  const current = await store.get(CONFIG_KEY);
  if (current) await store.update(CONFIG_KEY, value, current.modRevision);
  else await store.create(CONFIG_KEY, value);
  return [];
}

function pingable(ip: string): boolean {
  return spawnRunner.run(['ping', '-c', '1', '-W', '1', ip]).status === 0;
}

export async function listNodes(store: Datastore, opts: { probe: boolean; now?: number }): Promise<{ rows: NodeRow[]; invalid: string[] }> {
  const { items } = await store.list(SUBNETS_PREFIX);
  const parsed = parseLeases(items);
  const now = opts.now ?? Date.now();
  const rows = parsed.leases
    .map((l): NodeRow => ({
      name: l.nodeName,
      subnet: formatCidr(l.subnet),
      ...(l.ipv6Subnet ? { subnet6: formatPrefix(l.ipv6Subnet) } : {}),
      ...(l.publicIPv6 ? { publicIPv6: l.publicIPv6 } : {}),
      publicIP: l.publicIP,
      backend: l.backendType,
      leaseExpiry: new Date(l.expiresAt).toISOString(),
      expired: isExpired(l, now),
      reachable: opts.probe ? pingable(l.publicIP) : null,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  return { rows, invalid: parsed.invalid.map((i) => `${i.key}: ${i.error}`) };
}

export function renderTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

/** The IPv6 columns appear only when some node has an IPv6 subnet or address (a v4-only cluster's table is unchanged). */
export function renderNodes(rows: NodeRow[]): string[] {
  const v6 = rows.some((r) => r.subnet6 !== undefined || r.publicIPv6 !== undefined);
  const expiry = (r: NodeRow): string => (r.expired ? `${r.leaseExpiry} (expired)` : r.leaseExpiry);
  const reach = (r: NodeRow): string => (r.reachable === null ? '-' : r.reachable ? 'yes' : 'NO');
  if (!v6) return renderTable(['NAME', 'SUBNET', 'PUBLIC IP', 'BACKEND', 'LEASE EXPIRES', 'REACHABLE'], rows.map((r) => [r.name, r.subnet, r.publicIP, r.backend, expiry(r), reach(r)]));
  return renderTable(
    ['NAME', 'SUBNET', 'IPV6 SUBNET', 'PUBLIC IP', 'PUBLIC IPV6', 'BACKEND', 'LEASE EXPIRES', 'REACHABLE'],
    rows.map((r) => [r.name, r.subnet, r.subnet6 ?? '-', r.publicIP, r.publicIPv6 ?? '-', r.backend, expiry(r), reach(r)]),
  );
}

export interface ClusterStatus {
  datastore: { endpoints: string[]; ok: boolean; error?: string };
  config?: unknown;
  configError?: string;
  nodes: number;
  expiredLeases: number;
  agent?: unknown;
  agentError?: string;
}

/** The stored text as data for -o json/yaml; text that is not JSON stays a string. */
export function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

interface AgentStatusView {
  node?: string;
  phase?: string;
  subnet?: string;
  subnet6?: string;
  backend?: string;
  underlay?: { iface: string; ip: string; reason: string };
  peers?: Array<{ node: string; error?: string }>;
  lastReconcile?: { changes: number; converged: boolean };
}

/** `twill status` as text. */
export function renderStatus(s: ClusterStatus): string[] {
  const lines = [
    `datastore: ${s.datastore.ok ? 'ok' : `DOWN (${s.datastore.error})`} ${s.datastore.endpoints.join(',')}`,
    `config:    ${s.config ? JSON.stringify(s.config) : `INVALID: ${s.configError}`}`,
    `nodes:     ${s.nodes} (${s.expiredLeases} expired leases)`,
  ];
  const a = s.agent as AgentStatusView | undefined;
  if (!a) return [...lines, `agent:     ${s.agentError}`];
  lines.push(`agent:     ${a.node} ${a.phase}, subnet ${a.subnet}${a.subnet6 ? ` ${a.subnet6}` : ''}, backend ${a.backend}, ${a.peers?.length ?? 0} peers, last reconcile ${a.lastReconcile ? `${a.lastReconcile.changes} changes, ${a.lastReconcile.converged ? 'converged' : 'NOT converged'}` : 'none yet'}`);
  if (a.underlay) lines.push(`underlay:  ${a.underlay.iface} ${a.underlay.ip} (${a.underlay.reason})`);
  for (const p of a.peers ?? []) if (p.error) lines.push(`  peer ${p.node}: ${p.error}`);
  return lines;
}

export async function clusterStatus(endpoints: string[], healthUrl: string): Promise<ClusterStatus> {
  const status: ClusterStatus = { datastore: { endpoints, ok: false }, nodes: 0, expiredLeases: 0 };
  try {
    await withStore(endpoints, async (store) => {
      const text = await configGet(store);
      if (text === undefined) status.configError = `no config at ${CONFIG_KEY}`;
      else {
        const parsed = parseClusterConfig(text);
        if (parsed.ok) status.config = JSON.parse(renderClusterConfig(parsed.config)) as unknown;
        else status.configError = parsed.errors.join('; ');
      }
      const { rows } = await listNodes(store, { probe: false });
      status.nodes = rows.length;
      status.expiredLeases = rows.filter((r) => r.expired).length;
      status.datastore.ok = true;
    });
  } catch (e) {
    status.datastore.error = isDatastoreError(e) ? `${e.kind}: ${e.message}` : (e as Error).message;
  }
  try {
    const res = await fetch(`${healthUrl}/status`, { signal: AbortSignal.timeout(2000) });
    status.agent = await res.json();
  } catch (e) {
    status.agentError = `agent not reachable at ${healthUrl}: ${(e as Error).message}`;
  }
  return status;
}

export function ipamShow(dataDir: string, network: string): Array<{ ip: string; containerId: string; ifName: string }> {
  const store = FsIpamStore.openExisting(dataDir, network);
  if (!store) return [];
  return store
    .list()
    .sort((a, b) => a.ip - b.ip)
    .map((r) => ({ ip: formatIPv4(r.ip), containerId: r.containerId, ifName: r.ifName }));
}

export interface IpamProblem {
  kind: 'reservation-without-veth' | 'veth-without-reservation';
  ip?: string;
  containerId: string;
  ifName: string;
  veth: string;
}

/**
 * `twill ipam check`: reservations of `network` whose host-side veth is gone (a leak GC will take),
 * and Twill veths of `network` that hold no reservation. Reads the namespace it runs in.
 */
export function ipamCheck(dataDir: string, network: string): IpamProblem[] {
  const store = FsIpamStore.openExisting(dataDir, network);
  const reservations = store ? store.list() : [];
  const ours = new Map<string, { containerId: string; ifName: string }>();
  for (const v of listHostVeths(spawnRunner)) if (v.owner?.network === network) ours.set(v.name, v.owner.attachment);
  const problems: IpamProblem[] = [];
  const held = new Set<string>();
  for (const res of reservations) {
    const veth = hostVethName(res);
    held.add(veth);
    if (!ours.has(veth)) problems.push({ kind: 'reservation-without-veth', ip: formatIPv4(res.ip), containerId: res.containerId, ifName: res.ifName, veth });
  }
  for (const [veth, a] of ours) if (!held.has(veth)) problems.push({ kind: 'veth-without-reservation', containerId: a.containerId, ifName: a.ifName, veth });
  return problems;
}
