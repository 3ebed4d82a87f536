/**
 * Subnet leases: one key per node subnet, like flannel's registry.
 *
 *   key   SUBNETS_PREFIX + '10.244.1.0-24'
 *   value {"subnet":"10.244.1.0/24","nodeName":"node-a","publicIP":"192.0.2.10","backendType":"vxlan",
 *          "backendData":{"vtepMAC":"0e:..."},"expiresAt":"2024-01-01T00:00:00.000Z","hostId":"3f2a..."}
 *
 * `hostId` names the host that holds the node name (see src/agent/host-id.ts): a second host that
 * starts with the same name is refused instead of taking the lease over (LeaseManager). Leases
 * written by agents that predate it have none.
 *
 * Dual stack: a lease also carries `ipv6Subnet` (the node's IPv6 pod subnet, e.g. "fd00:10:244:1::/64")
 * and `publicIPv6` (its IPv6 underlay address, when it announces one): flannel's lease fields
 * `IPv6Subnet`/`PublicIPv6`, in this record's camelCase. Both are optional: a v4-only lease of an
 * older agent parses unchanged. The key stays the IPv4 subnet's (one key per node lease), so adding
 * IPv6 later is a CAS update of the same key. The IPv6 subnet is made unique cluster-wide by a second
 * key, its reservation, `IPV6_SUBNETS_PREFIX + ipv6SubnetKeyName(subnet)`, e.g.
 * `/twill/ipv6-subnets/fd00-10-244-1---64` (the RFC 5952 text with ':' spelled '-', then '-' and the
 * prefix length: safe in etcd keys and Kubernetes object names; an IPv6-only cluster would key its
 * leases by that spelling), value `{"lease": "<lease key>", "nodeName": "..."}`. The lease manager
 * writes, renews and deletes a lease and its reservation in ONE datastore transaction with one TTL,
 * so no node ever holds half a dual-stack lease and a v6 subnet is never in two leases.
 *
 * Values come from the datastore, so they are validated: a bad record is reported (ParsedLeases.invalid)
 * and ignored, never thrown. Unknown extra fields are dropped, so newer agents may add some.
 */
import * as z from 'zod';
import { SUBNETS_PREFIX } from '../common/constants.js';
import type { KeyValue } from '../datastore/types.js';
import { formatIp, formatPrefix, isV4Mapped, networkOf, parseIp, parsePrefix, prefixEquals, prefixesOverlap, type IpPrefix } from '../net/ip.js';
import { formatCidr, formatIPv4, overlaps, parseCidr, parseIPv4, type Cidr } from '../net/ipv4.js';
import { ipv6SubnetCount, subnetCount, type ClusterConfig, type Ipv6Layout } from './cluster-config.js';
import { formatIssues } from './zod-issues.js';

/** What a node publishes about itself in its lease. */
export interface LeaseAttributes {
  /** Underlay address other nodes reach this node at (vxlan remote, host-gw next hop). */
  readonly publicIP: string;
  /** Backend the node runs (`vxlan`, `host-gw`); a string because peers may run newer backends. */
  readonly backendType: string;
  /** Backend specific data, e.g. `{vtepMAC}` for vxlan. */
  readonly backendData: Readonly<Record<string, string>>;
  /** Dual stack: the node's IPv6 underlay address (canonical text), when it announces one. */
  readonly publicIPv6?: string;
}

/** A validated lease as read from (or written to) the datastore. */
export interface Lease extends LeaseAttributes {
  readonly key: string;
  readonly subnet: Cidr;
  /** Dual stack: the node's IPv6 pod subnet (reserved under IPV6_SUBNETS_PREFIX). */
  readonly ipv6Subnet?: IpPrefix;
  readonly nodeName: string;
  /** The identity of the host holding the node name; absent in leases of older agents. */
  readonly hostId?: string;
  /** Expiry, epoch milliseconds (stored as ISO text). Valid while now < expiresAt. */
  readonly expiresAt: number;
  /** modRevision of the key when read or written: the CAS token for renew/release. */
  readonly modRevision: number;
}

/** The stored JSON shape. */
export interface LeaseRecord {
  subnet: string;
  nodeName: string;
  publicIP: string;
  backendType: string;
  backendData: Record<string, string>;
  expiresAt: string;
  hostId?: string;
  ipv6Subnet?: string;
  publicIPv6?: string;
}

export interface InvalidLease {
  readonly key: string;
  /** The subnet named by the key, when the key itself is well formed (the subnet is still occupied). */
  readonly subnet?: Cidr;
  readonly error: string;
}

export type LeaseParse = { ok: true; lease: Lease } | ({ ok: false } & InvalidLease);

export interface ParsedLeases {
  readonly leases: Lease[];
  readonly invalid: InvalidLease[];
}

/** What a host id may look like (a UUID, a machine-id, ...). */
export const HOST_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const LeaseValue = z.object({
  subnet: z.string(),
  nodeName: z.string().min(1, { error: 'must not be empty' }).max(253, { error: 'is longer than 253 characters' }),
  publicIP: z.string().refine((s) => parseIPv4(s) !== undefined, { error: 'is not an IPv4 address' }),
  backendType: z.string().min(1, { error: 'must not be empty' }),
  backendData: z.record(z.string(), z.string()),
  expiresAt: z.iso.datetime({ offset: true, error: 'is not an ISO 8601 date-time' }),
  hostId: z.string().regex(HOST_ID_PATTERN, { error: 'is not a host id (1-64 letters, digits, - or _)' }).optional(),
  ipv6Subnet: z.string().refine((s) => parseIpv6Subnet(s) !== undefined, { error: 'is not a canonical IPv6 subnet (e.g. fd00:10:244:1::/64)' }).optional(),
  publicIPv6: z.string().refine((s) => parseUnderlayIpv6(s) !== undefined, { error: 'is not a canonical IPv6 unicast address' }).optional(),
});

/** A stored IPv6 subnet: canonical RFC 5952 text, host bits zero, not IPv4-mapped. */
export function parseIpv6Subnet(text: string): IpPrefix | undefined {
  const p = parsePrefix(text, true);
  if (p === undefined || p.family !== 6 || isV4Mapped(networkOf(p))) return undefined;
  const prefix: IpPrefix = { family: 6, network: p.network, prefix: p.prefix };
  return formatPrefix(prefix) === text ? prefix : undefined;
}

/** A stored IPv6 underlay address: canonical, not IPv4-mapped, not unspecified. */
export function parseUnderlayIpv6(text: string): string | undefined {
  const a = parseIp(text);
  if (a === undefined || a.family !== 6 || isV4Mapped(a) || a.value === 0n || formatIp(a) !== text) return undefined;
  return text;
}

/** Where the IPv6 subnet reservations live (not under SUBNETS_PREFIX: they are not leases). */
export const IPV6_SUBNETS_PREFIX = '/twill/ipv6-subnets/';

/** `fd00:10:244:1::/64` -> `fd00-10-244-1---64` (key-safe: no ':' or '/'). */
export function ipv6SubnetKeyName(subnet: IpPrefix): string {
  return `${formatIp(networkOf(subnet)).replaceAll(':', '-')}-${subnet.prefix}`;
}

/** The reservation key of an IPv6 subnet. */
export function ipv6SubnetKey(subnet: IpPrefix): string {
  return IPV6_SUBNETS_PREFIX + ipv6SubnetKeyName(subnet);
}

/** Inverse of ipv6SubnetKey; undefined for anything that is not exactly a canonical reservation key. */
export function ipv6SubnetFromKey(key: string): IpPrefix | undefined {
  if (!key.startsWith(IPV6_SUBNETS_PREFIX)) return undefined;
  const m = /^([0-9a-f-]{2,39})-(\d{1,3})$/.exec(key.slice(IPV6_SUBNETS_PREFIX.length));
  if (m === null) return undefined;
  const subnet = parseIpv6Subnet(`${(m[1] as string).replaceAll('-', ':')}/${m[2]}`);
  return subnet !== undefined && ipv6SubnetKey(subnet) === key ? subnet : undefined;
}

/** A reservation: which lease key holds the IPv6 subnet. */
export interface Ipv6Reservation {
  readonly key: string;
  readonly subnet: IpPrefix;
  readonly lease: string;
  readonly nodeName: string;
  readonly modRevision: number;
}

const ReservationValue = z.object({ lease: z.string().startsWith(SUBNETS_PREFIX), nodeName: z.string().min(1) });

export function renderIpv6Reservation(leaseKeyText: string, nodeName: string): string {
  return JSON.stringify({ lease: leaseKeyText, nodeName });
}

/**
 * A reservation entry; a key or value that does not parse still occupies its subnet when the key
 * names one (`lease` is then '' and matches no lease).
 */
export function parseIpv6Reservation(kv: KeyValue): Ipv6Reservation | undefined {
  const subnet = ipv6SubnetFromKey(kv.key);
  if (subnet === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(kv.value);
  } catch {
    json = undefined;
  }
  const r = ReservationValue.safeParse(json);
  return { key: kv.key, subnet, lease: r.success ? r.data.lease : '', nodeName: r.success ? r.data.nodeName : '', modRevision: kv.modRevision };
}

/** True when the IPv6 subnet is one this config hands out. */
export function inIpv6ConfigRange(v6: Ipv6Layout, subnet: IpPrefix): boolean {
  return subnet.family === 6 && subnet.prefix === v6.subnetLen && subnet.network >= v6.subnetMin && subnet.network <= v6.subnetMax;
}

/**
 * A free /IPv6SubnetLen in [IPv6SubnetMin, IPv6SubnetMax], or undefined when all are taken. Random
 * start, then upwards with wrap-around, as chooseSubnet; a taken prefix larger than a subnet is
 * skipped in one step, so the scan costs O(taken), not O(subnets) (there may be 2^62 of them).
 */
export function chooseIpv6Subnet(v6: Ipv6Layout, taken: readonly IpPrefix[], random: () => number): IpPrefix | undefined {
  const shift = BigInt(128 - v6.subnetLen);
  const count = ipv6SubnetCount(v6);
  const exact = new Set<bigint>();
  const other: IpPrefix[] = [];
  for (const t of taken) {
    if (t.family !== 6) continue;
    if (t.prefix === v6.subnetLen) exact.add(t.network);
    else other.push(t);
  }
  const r = Math.min(Math.max(random(), 0), 1 - Number.EPSILON);
  const start = (BigInt(Math.floor(r * 2 ** 53)) * count) >> 53n;
  let scanned = 0n;
  while (scanned < count) {
    const index = (start + scanned) % count;
    const network = v6.subnetMin + (index << shift);
    scanned += 1n;
    if (exact.has(network)) continue;
    const candidate: IpPrefix = { family: 6, network, prefix: v6.subnetLen };
    const big = other.find((t) => prefixesOverlap(t, candidate));
    if (big === undefined) return candidate;
    if (big.prefix < v6.subnetLen) {
      // Skip the rest of the subnets inside `big` (they lie at consecutive indexes from here, never past the end).
      const last = (big.network + (1n << BigInt(128 - big.prefix)) - 1n - v6.subnetMin) >> shift;
      const lastIndex = last < count - 1n ? last : count - 1n;
      scanned += lastIndex - index;
    }
  }
  return undefined;
}

export function sameIpv6Subnet(a: IpPrefix | undefined, b: IpPrefix | undefined): boolean {
  return a === undefined || b === undefined ? a === b : prefixEquals(a, b);
}

/** `10.244.1.0/24` -> `/twill/subnets/10.244.1.0-24`. */
export function leaseKey(subnet: Cidr): string {
  return `${SUBNETS_PREFIX}${formatIPv4(subnet.network)}-${subnet.prefix}`;
}

/** Inverse of leaseKey; undefined for anything that is not exactly a canonical lease key. */
export function subnetFromKey(key: string): Cidr | undefined {
  if (!key.startsWith(SUBNETS_PREFIX)) return undefined;
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})-(\d{1,2})$/.exec(key.slice(SUBNETS_PREFIX.length));
  if (m === null) return undefined;
  const cidr = parseCidr(`${m[1]}/${m[2]}`, true);
  if (cidr === undefined) return undefined;
  const subnet: Cidr = { network: cidr.network, prefix: cidr.prefix };
  return leaseKey(subnet) === key ? subnet : undefined;
}

export function renderLeaseValue(lease: Omit<Lease, 'key' | 'modRevision'>): string {
  const record: LeaseRecord = {
    subnet: formatCidr(lease.subnet),
    nodeName: lease.nodeName,
    publicIP: lease.publicIP,
    backendType: lease.backendType,
    backendData: { ...lease.backendData },
    expiresAt: new Date(lease.expiresAt).toISOString(),
  };
  if (lease.hostId !== undefined) record.hostId = lease.hostId;
  if (lease.ipv6Subnet !== undefined) record.ipv6Subnet = formatPrefix(lease.ipv6Subnet);
  if (lease.publicIPv6 !== undefined) record.publicIPv6 = lease.publicIPv6;
  return JSON.stringify(record);
}

/** Validates one datastore entry under SUBNETS_PREFIX. */
export function parseLease(kv: KeyValue): LeaseParse {
  const subnet = subnetFromKey(kv.key);
  if (subnet === undefined) return { ok: false, key: kv.key, error: `key is not ${SUBNETS_PREFIX}<a.b.c.d>-<prefix>` };
  const bad = (error: string): LeaseParse => ({ ok: false, key: kv.key, subnet, error });
  let json: unknown;
  try {
    json = JSON.parse(kv.value);
  } catch {
    return bad('value is not JSON');
  }
  const r = LeaseValue.safeParse(json, { reportInput: true });
  if (!r.success) return bad(formatIssues(r.error.issues).join('; '));
  if (r.data.subnet !== formatCidr(subnet)) return bad(`subnet: '${r.data.subnet}' does not match the key`);
  return {
    ok: true,
    lease: {
      key: kv.key,
      subnet,
      nodeName: r.data.nodeName,
      publicIP: r.data.publicIP,
      backendType: r.data.backendType,
      backendData: r.data.backendData,
      expiresAt: Date.parse(r.data.expiresAt),
      modRevision: kv.modRevision,
      ...(r.data.hostId === undefined ? {} : { hostId: r.data.hostId }),
      ...(r.data.ipv6Subnet === undefined ? {} : { ipv6Subnet: parseIpv6Subnet(r.data.ipv6Subnet) as IpPrefix }),
      ...(r.data.publicIPv6 === undefined ? {} : { publicIPv6: r.data.publicIPv6 }),
    },
  };
}

/** Splits a list of datastore entries into valid leases and reported invalid ones (never throws). */
export function parseLeases(items: readonly KeyValue[]): ParsedLeases {
  const leases: Lease[] = [];
  const invalid: InvalidLease[] = [];
  for (const kv of items) {
    const r = parseLease(kv);
    if (r.ok) leases.push(r.lease);
    else invalid.push(r.subnet === undefined ? { key: r.key, error: r.error } : { key: r.key, subnet: r.subnet, error: r.error });
  }
  return { leases, invalid };
}

/**
 * Whether a lease under a node name may have been written by `host` (then taking it over is a restart
 * of that node, not a second host): the same host id, or the same public IP (a host whose id file was
 * lost, e.g. /run after a reboot, keeps its address), or a lease or request without a host id (older agents).
 */
export function sameHost(lease: Pick<Lease, 'hostId' | 'publicIP'>, host: { hostId?: string; publicIP: string }): boolean {
  return lease.hostId === undefined || host.hostId === undefined || lease.hostId === host.hostId || lease.publicIP === host.publicIP;
}

/** A lease is valid strictly before its expiresAt. */
export function isExpired(lease: Pick<Lease, 'expiresAt'>, nowMs: number): boolean {
  return lease.expiresAt <= nowMs;
}

/** True when the lease's subnet is one this config hands out (right size, inside [SubnetMin, SubnetMax]). */
export function inConfigRange(config: ClusterConfig, subnet: Cidr): boolean {
  return subnet.prefix === config.subnetLen && subnet.network >= config.subnetMin && subnet.network <= config.subnetMax;
}

/**
 * Picks a free /SubnetLen in [SubnetMin, SubnetMax] (SubnetMin skips the network's first subnet
 * by default, like flannel), or undefined when every one overlaps something in `taken`.
 * Starts at a random index and scans upwards with wrap-around, so racing agents rarely collide
 * and a free subnet is always found when one exists. `random` returns [0, 1) like Math.random.
 */
export function chooseSubnet(config: ClusterConfig, taken: readonly Cidr[], random: () => number): Cidr | undefined {
  const step = 2 ** (32 - config.subnetLen);
  const count = subnetCount(config);
  const exact = new Set<number>();
  const other: Cidr[] = [];
  for (const t of taken) {
    if (t.prefix === config.subnetLen) exact.add(t.network);
    else other.push(t);
  }
  const start = Math.min(count - 1, Math.max(0, Math.floor(random() * count)));
  for (let i = 0; i < count; i++) {
    const network = config.subnetMin + ((start + i) % count) * step;
    if (exact.has(network)) continue;
    const candidate: Cidr = { network, prefix: config.subnetLen };
    if (other.some((t) => overlaps(t, candidate))) continue;
    return candidate;
  }
  return undefined;
}
