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
 * Values come from the datastore, so they are validated: a bad record is reported (ParsedLeases.invalid)
 * and ignored, never thrown. Unknown extra fields are dropped, so newer agents may add some.
 */
import * as z from 'zod';
import { SUBNETS_PREFIX } from '../common/constants.js';
import type { KeyValue } from '../datastore/types.js';
import { formatCidr, formatIPv4, overlaps, parseCidr, parseIPv4, type Cidr } from '../net/ipv4.js';
import { subnetCount, type ClusterConfig } from './cluster-config.js';
import { formatIssues } from './zod-issues.js';

/** What a node publishes about itself in its lease. */
export interface LeaseAttributes {
  /** Underlay address other nodes reach this node at (vxlan remote, host-gw next hop). */
  readonly publicIP: string;
  /** Backend the node runs (`vxlan`, `host-gw`); a string because peers may run newer backends. */
  readonly backendType: string;
  /** Backend specific data, e.g. `{vtepMAC}` for vxlan. */
  readonly backendData: Readonly<Record<string, string>>;
}

/** A validated lease as read from (or written to) the datastore. */
export interface Lease extends LeaseAttributes {
  readonly key: string;
  readonly subnet: Cidr;
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
});

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
