/**
 * The peer list the backends consume, computed from the lease snapshot, and a diff of two peer
 * lists for logging. Pure.
 */
import { formatPrefix, type IpPrefix } from '../net/ip.js';
import { formatCidr, type Cidr } from '../net/ipv4.js';
import { isExpired, type Lease } from './lease.js';

export interface Peer {
  readonly nodeName: string;
  readonly subnet: Cidr;
  readonly publicIP: string;
  readonly backendType: string;
  readonly backendData: Readonly<Record<string, string>>;
  /** Dual stack: the peer's IPv6 pod subnet (validated with the lease). */
  readonly subnet6?: IpPrefix;
  /** The peer's IPv6 underlay address (canonical text), when it announced one. */
  readonly publicIPv6?: string;
}

export interface PeerChange {
  readonly before: Peer;
  readonly after: Peer;
}

export interface PeerDiff {
  readonly added: Peer[];
  readonly removed: Peer[];
  readonly changed: PeerChange[];
}

/**
 * Every other node's live lease as a peer, sorted by subnet. Leases of `localNodeName` and
 * expired ones (expiresAt <= nowMs) are left out.
 */
export function peersFromLeases(leases: readonly Lease[], localNodeName: string, nowMs: number): Peer[] {
  return leases
    .filter((l) => l.nodeName !== localNodeName && !isExpired(l, nowMs))
    .map((l) => ({
      nodeName: l.nodeName,
      subnet: { network: l.subnet.network, prefix: l.subnet.prefix },
      publicIP: l.publicIP,
      backendType: l.backendType,
      backendData: { ...l.backendData },
      ...(l.ipv6Subnet === undefined ? {} : { subnet6: { ...l.ipv6Subnet } }),
      ...(l.publicIPv6 === undefined ? {} : { publicIPv6: l.publicIPv6 }),
    }))
    .sort((a, b) => a.subnet.network - b.subnet.network || a.subnet.prefix - b.subnet.prefix);
}

/** Peers are identified by their subnet; any other difference is a change. Results sorted by subnet. */
export function diffPeers(before: readonly Peer[], after: readonly Peer[]): PeerDiff {
  const old = new Map(before.map((p) => [formatCidr(p.subnet), p]));
  const cur = new Map(after.map((p) => [formatCidr(p.subnet), p]));
  const added: Peer[] = [];
  const removed: Peer[] = [];
  const changed: PeerChange[] = [];
  for (const [key, p] of cur) {
    const o = old.get(key);
    if (o === undefined) added.push(p);
    else if (!samePeer(o, p)) changed.push({ before: o, after: p });
  }
  for (const [key, p] of old) if (!cur.has(key)) removed.push(p);
  const bySubnet = (a: Peer, b: Peer): number => a.subnet.network - b.subnet.network || a.subnet.prefix - b.subnet.prefix;
  added.sort(bySubnet);
  removed.sort(bySubnet);
  changed.sort((a, b) => bySubnet(a.after, b.after));
  return { added, removed, changed };
}

export function isEmptyDiff(d: PeerDiff): boolean {
  return d.added.length === 0 && d.removed.length === 0 && d.changed.length === 0;
}

/** One line per difference, e.g. `+ 10.244.2.0/24 node-b 192.0.2.2 vxlan` (dual stack: `10.244.2.0/24,fd00:10:244:2::/64 node-b 192.0.2.2,2001:db8::2 vxlan`). */
export function describePeerDiff(d: PeerDiff): string[] {
  const line = (p: Peer): string =>
    `${formatCidr(p.subnet)}${p.subnet6 ? `,${formatPrefix(p.subnet6)}` : ''} ${p.nodeName} ${p.publicIP}${p.publicIPv6 ? `,${p.publicIPv6}` : ''} ${p.backendType}`;
  return [
    ...d.added.map((p) => `+ ${line(p)}`),
    ...d.removed.map((p) => `- ${line(p)}`),
    ...d.changed.map((c) => `~ ${line(c.before)} -> ${line(c.after)}${dataChange(c)}`),
  ];
}

function dataChange(c: PeerChange): string {
  const keys = [...new Set([...Object.keys(c.before.backendData), ...Object.keys(c.after.backendData)])].sort();
  const diffs = keys.filter((k) => c.before.backendData[k] !== c.after.backendData[k]);
  if (diffs.length === 0) return '';
  const show = (k: string): string => `${k}: ${c.before.backendData[k] ?? '-'} -> ${c.after.backendData[k] ?? '-'}`;
  return ` (${diffs.map(show).join(', ')})`;
}

function samePeer(a: Peer, b: Peer): boolean {
  if (a.nodeName !== b.nodeName || a.publicIP !== b.publicIP || a.backendType !== b.backendType) return false;
  if (a.publicIPv6 !== b.publicIPv6 || (a.subnet6 ? formatPrefix(a.subnet6) : '') !== (b.subnet6 ? formatPrefix(b.subnet6) : '')) return false;
  const ka = Object.keys(a.backendData);
  const kb = Object.keys(b.backendData);
  return ka.length === kb.length && ka.every((k) => a.backendData[k] === b.backendData[k]);
}
