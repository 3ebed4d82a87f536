/**
 * Acquires, renews and releases this node's subnet lease over the Datastore seam.
 *
 * Safety comes from the store alone: a new subnet is taken with `create` (Conflict when another
 * agent got there first: re-list and try another), an existing key only with a compare-and-swap
 * `update`/`delete` at the revision we read. Two agents racing can therefore never hold the same
 * subnet, whatever their clocks say.
 *
 * acquire(node), each attempt on a fresh list:
 *   1. a lease with this node name inside the configured range (expired or not, as long as the key is
 *      still there) is re-taken by CAS with fresh attributes and expiry: same node -> same subnet
 *      across restarts;
 *   2. else a subnet with no key at all is created (random start, see chooseSubnet);
 *   3. else the lease that expired longest ago (expiresAt <= now, key still present) is reclaimed by CAS;
 *   4. else LeaseError('SubnetsExhausted').
 * Keys that hold invalid values are reported through `onInvalid` and treated as occupied (never
 * overwritten, never fatal). After success, other leases under the same node name (e.g. from an
 * older config) are deleted by CAS, best effort, so a node never advertises two subnets.
 *
 * Dual stack (config.ipv6): every write of a lease is one datastore transaction with its IPv6
 * reservation key (lease.ts): create lease + create reservation for a new lease; update lease +
 * create reservation when a v4-only lease (an upgrade, or IPv6 enabled later) gains its IPv6
 * subnet, keeping its key and IPv4 subnet; update both on renew; delete both on release. A
 * reservation that another lease key holds is a Conflict of the whole transaction: re-list and
 * choose again. A taken-over lease keeps its IPv6 subnet when its reservation is its own (or gone).
 *
 * Node identity: before step 1, a live (unexpired) lease under this node name written by another
 * host (`sameHost` false: other host id and other public IP) refuses the request with
 * LeaseError('NodeNameConflict'): the first host keeps its lease, nothing is written. Two hosts that
 * list at the same moment both write; each then re-lists, and the one whose lease is younger (higher
 * modRevision) releases it and is refused, so exactly one keeps the name.
 */
import { LEASE_RENEW_MARGIN_SECONDS, LEASE_TTL_SECONDS, SUBNETS_PREFIX } from '../common/constants.js';
import { isDatastoreError, type Datastore, type TxnOp } from '../datastore/types.js';
import type { IpPrefix } from '../net/ip.js';
import { formatCidr, type Cidr } from '../net/ipv4.js';
import { subnetCount, type ClusterConfig } from './cluster-config.js';
import {
  IPV6_SUBNETS_PREFIX,
  chooseIpv6Subnet,
  chooseSubnet,
  inConfigRange,
  inIpv6ConfigRange,
  ipv6SubnetKey,
  parseIpv6Reservation,
  renderIpv6Reservation,
  sameIpv6Subnet,
  type Ipv6Reservation,
  isExpired,
  leaseKey,
  sameHost,
  parseLease,
  parseLeases,
  renderLeaseValue,
  type InvalidLease,
  type Lease,
  type LeaseAttributes,
  type ParsedLeases,
} from './lease.js';

export type LeaseErrorCode = 'SubnetsExhausted' | 'LeaseLost' | 'AcquireContention' | 'NodeNameConflict';

export class LeaseError extends Error {
  constructor(
    readonly code: LeaseErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LeaseError';
  }
}

export function isLeaseError(e: unknown, code?: LeaseErrorCode): e is LeaseError {
  return e instanceof LeaseError && (code === undefined || e.code === code);
}

/** The node asking for a lease. */
export interface NodeLeaseRequest extends LeaseAttributes {
  readonly name: string;
  /** This host's identity (src/agent/host-id.ts); without one, no conflict can be detected. */
  readonly hostId?: string;
}

export interface LeaseManagerOptions {
  readonly store: Datastore;
  readonly config: ClusterConfig;
  /** Clock, epoch milliseconds. Default Date.now. */
  readonly now?: () => number;
  /** [0, 1) source for the subnet choice. Default Math.random. */
  readonly random?: () => number;
  /** Default LEASE_TTL_SECONDS. */
  readonly ttlSeconds?: number;
  /** Default LEASE_RENEW_MARGIN_SECONDS (capped at half the TTL). */
  readonly renewMarginSeconds?: number;
  /** Attempts (each a fresh list) before acquire/renew give up with 'AcquireContention'. Default 64. */
  readonly maxAttempts?: number;
  /** Called once per acquire for each key under SUBNETS_PREFIX whose value is invalid. */
  readonly onInvalid?: (invalid: InvalidLease) => void;
}

export interface LeaseSnapshot extends ParsedLeases {
  /** Store revision of the list: watch from revision + 1. */
  readonly revision: number;
}

export class LeaseManager {
  private readonly store: Datastore;
  private readonly config: ClusterConfig;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly ttlSeconds: number;
  private readonly marginMs: number;
  private readonly maxAttempts: number;
  private readonly onInvalid: (invalid: InvalidLease) => void;
  /** The reservations listed by the current acquire attempt. */
  private reservations: Ipv6Reservation[] = [];

  constructor(opts: LeaseManagerOptions) {
    this.store = opts.store;
    this.config = opts.config;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.ttlSeconds = opts.ttlSeconds ?? LEASE_TTL_SECONDS;
    this.marginMs = Math.min(opts.renewMarginSeconds ?? LEASE_RENEW_MARGIN_SECONDS, this.ttlSeconds / 2) * 1000;
    this.maxAttempts = opts.maxAttempts ?? 64;
    this.onInvalid = opts.onInvalid ?? (() => {});
  }

  /** All leases under SUBNETS_PREFIX, validated (invalid ones listed apart, not reported). */
  async list(): Promise<LeaseSnapshot> {
    const { items, revision } = await this.store.list(SUBNETS_PREFIX);
    return { ...parseLeases(items), revision };
  }

  /** The IPv6 subnet reservations (empty when the config has no IPv6). */
  async listIpv6Reservations(): Promise<Ipv6Reservation[]> {
    if (!this.config.ipv6) return [];
    const { items } = await this.store.list(IPV6_SUBNETS_PREFIX);
    return items.flatMap((kv) => parseIpv6Reservation(kv) ?? []);
  }

  async acquire(node: NodeLeaseRequest): Promise<Lease> {
    const reported = new Set<string>();
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const { leases, invalid } = await this.list();
      this.reservations = await this.listIpv6Reservations();
      for (const bad of invalid) {
        if (reported.has(bad.key)) continue;
        reported.add(bad.key);
        this.onInvalid(bad);
      }
      const lease = await this.tryAcquire(node, leases, invalid);
      if (lease !== undefined) {
        await this.dropOtherLeases(node, lease, leases);
        await this.settleNameRace(node, lease);
        return lease;
      }
    }
    throw new LeaseError('AcquireContention', `no subnet lease for node ${node.name} after ${this.maxAttempts} attempts (lost every race)`);
  }

  /**
   * Extends the expiry (CAS), and publishes new attributes when given (a backend change: peers see
   * the new backend type/data at once). Re-creates the key if the store expired it; 'LeaseLost' if
   * another node owns it now.
   */
  async renew(lease: Lease, attributes?: LeaseAttributes): Promise<Lease> {
    const base: Lease = attributes === undefined ? lease : withAttributes(lease, attributes);
    let current: Lease = base;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const next = this.withExpiry(current);
      try {
        const ops: TxnOp[] = [{ op: 'update', key: lease.key, value: renderLeaseValue(next), expectedRevision: current.modRevision }, ...(await this.reservationKeep(next))];
        const t = await this.store.txn(ops, { ttlSeconds: this.ttlSeconds });
        return { ...next, modRevision: t.revision };
      } catch (e) {
        if (!isDatastoreError(e, 'Conflict') && !isDatastoreError(e, 'NotFound')) throw e;
      }
      const kv = await this.store.get(lease.key);
      if (kv === undefined) return this.recreate(this.withExpiry(current));
      const parsed = parseLease(kv);
      if (!parsed.ok || parsed.lease.nodeName !== lease.nodeName || !sameHost(parsed.lease, lease)) throw this.lost(lease);
      current = { ...base, modRevision: parsed.lease.modRevision };
    }
    throw new LeaseError('AcquireContention', `could not renew ${formatCidr(lease.subnet)} after ${this.maxAttempts} attempts`);
  }

  /** The reservation op that keeps this lease's IPv6 subnet: update it, or create it when gone; LeaseLost when another lease holds it. */
  private async reservationKeep(lease: Lease): Promise<TxnOp[]> {
    if (lease.ipv6Subnet === undefined) return [];
    const key = ipv6SubnetKey(lease.ipv6Subnet);
    const value = renderIpv6Reservation(lease.key, lease.nodeName);
    const kv = await this.store.get(key);
    if (kv === undefined) return [{ op: 'create', key, value }];
    const r = parseIpv6Reservation(kv);
    if (r?.lease !== lease.key) throw this.lost(lease);
    return [{ op: 'update', key, value, expectedRevision: kv.modRevision }];
  }

  /** Deletes of the reservations (read now) that belong to this lease key. */
  private async reservationDrop(lease: Pick<Lease, 'key' | 'ipv6Subnet'>): Promise<TxnOp[]> {
    if (lease.ipv6Subnet === undefined) return [];
    const kv = await this.store.get(ipv6SubnetKey(lease.ipv6Subnet));
    if (kv === undefined || parseIpv6Reservation(kv)?.lease !== lease.key) return [];
    return [{ op: 'delete', key: kv.key, expectedRevision: kv.modRevision }];
  }

  /** When the agent should call renew: expiresAt - renew margin (epoch ms). */
  renewDueAt(lease: Pick<Lease, 'expiresAt'>): number {
    return lease.expiresAt - this.marginMs;
  }

  /** Deletes the lease if it is still this node's; a missing key is success. */
  async release(lease: Lease): Promise<void> {
    let revision = lease.modRevision;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      try {
        await this.store.txn([{ op: 'delete', key: lease.key, expectedRevision: revision }, ...(await this.reservationDrop(lease))]);
        return;
      } catch (e) {
        if (!isDatastoreError(e, 'NotFound') && !isDatastoreError(e, 'Conflict')) throw e;
      }
      const kv = await this.store.get(lease.key);
      if (kv === undefined) return;
      const parsed = parseLease(kv);
      if (!parsed.ok || parsed.lease.nodeName !== lease.nodeName) return;
      revision = kv.modRevision;
    }
    throw new LeaseError('AcquireContention', `could not release ${formatCidr(lease.subnet)} after ${this.maxAttempts} attempts`);
  }

  /** One attempt on one list; undefined = lost a race, list again. */
  private async tryAcquire(node: NodeLeaseRequest, leases: Lease[], invalid: InvalidLease[]): Promise<Lease | undefined> {
    const now = this.now();
    const holder = this.otherHost(node, leases);
    if (holder !== undefined) throw this.conflict(node, holder);
    const own = leases
      .filter((l) => l.nodeName === node.name && inConfigRange(this.config, l.subnet))
      .sort((a, b) => b.expiresAt - a.expiresAt)[0];
    if (own !== undefined) return this.takeOver(own, node, leases);

    const occupied: Cidr[] = [...leases.map((l) => l.subnet), ...invalid.flatMap((i) => (i.subnet ? [i.subnet] : []))];
    const free = chooseSubnet(this.config, occupied, this.random);
    if (free !== undefined) {
      const key = leaseKey(free);
      const v6 = this.pickIpv6(key, node.name, undefined, leases);
      if (v6 === null) return this.exhausted6(node);
      const lease = this.newLease(node, free, key, 0, v6?.subnet);
      const ops: TxnOp[] = [{ op: 'create', key, value: renderLeaseValue(lease) }, ...(v6 ? [v6.op] : [])];
      try {
        const t = await this.store.txn(ops, { ttlSeconds: this.ttlSeconds });
        return { ...lease, modRevision: t.revision };
      } catch (e) {
        if (isDatastoreError(e, 'Conflict') || isDatastoreError(e, 'NotFound')) return undefined;
        throw e;
      }
    }

    const expired = leases
      .filter((l) => isExpired(l, now) && inConfigRange(this.config, l.subnet))
      .sort((a, b) => a.expiresAt - b.expiresAt)[0];
    if (expired !== undefined) return this.takeOver(expired, node, leases);

    throw new LeaseError(
      'SubnetsExhausted',
      `no free subnet for node ${node.name}: all ${subnetCount(this.config)} /${this.config.subnetLen} subnets of ` +
        `${formatCidr(this.config.network)} are leased (widen Network, SubnetMin/SubnetMax or lower SubnetLen)`,
    );
  }

  /** CAS-overwrites an existing key (own lease or an expired one) with this node's lease (and its IPv6 reservation). */
  private async takeOver(existing: Lease, node: NodeLeaseRequest, leases: readonly Lease[]): Promise<Lease | undefined> {
    const v6 = this.pickIpv6(existing.key, node.name, existing.ipv6Subnet, leases);
    if (v6 === null) return this.exhausted6(node);
    const lease = this.newLease(node, existing.subnet, existing.key, existing.modRevision, v6?.subnet);
    const ops: TxnOp[] = [{ op: 'update', key: lease.key, value: renderLeaseValue(lease), expectedRevision: existing.modRevision }];
    if (v6) ops.push(v6.op);
    // The old IPv6 subnet of this key, when it is not kept: its reservation goes in the same transaction.
    const old = existing.ipv6Subnet && !sameIpv6Subnet(existing.ipv6Subnet, v6?.subnet) ? this.reservations.find((r) => sameIpv6Subnet(r.subnet, existing.ipv6Subnet) && r.lease === existing.key) : undefined;
    if (old) ops.push({ op: 'delete', key: old.key, expectedRevision: old.modRevision });
    try {
      const t = await this.store.txn(ops, { ttlSeconds: this.ttlSeconds });
      return { ...lease, modRevision: t.revision };
    } catch (e) {
      if (isDatastoreError(e, 'Conflict') || isDatastoreError(e, 'NotFound')) return undefined;
      throw e;
    }
  }

  /**
   * The IPv6 subnet for the lease at `key` and the reservation op that claims it: the current one when
   * it is in range and its reservation is this key's (or gone), else a free one. undefined without
   * IPv6 in the config; null when every IPv6 subnet is taken.
   */
  private pickIpv6(key: string, nodeName: string, current: IpPrefix | undefined, leases: readonly Lease[]): { subnet: IpPrefix; op: TxnOp } | undefined | null {
    const v6 = this.config.ipv6;
    if (!v6) return undefined;
    const claim = (subnet: IpPrefix): { subnet: IpPrefix; op: TxnOp } => {
      const res = this.reservations.find((r) => sameIpv6Subnet(r.subnet, subnet));
      const value = renderIpv6Reservation(key, nodeName);
      return { subnet, op: res ? { op: 'update', key: res.key, value, expectedRevision: res.modRevision } : { op: 'create', key: ipv6SubnetKey(subnet), value } };
    };
    if (current && inIpv6ConfigRange(v6, current)) {
      const res = this.reservations.find((r) => sameIpv6Subnet(r.subnet, current));
      const usedElsewhere = leases.some((l) => l.key !== key && sameIpv6Subnet(l.ipv6Subnet, current));
      if ((res === undefined || res.lease === key) && !usedElsewhere) return claim(current);
    }
    const taken: IpPrefix[] = [...this.reservations.map((r) => r.subnet), ...leases.flatMap((l) => (l.ipv6Subnet && l.key !== key ? [l.ipv6Subnet] : []))];
    const free = chooseIpv6Subnet(v6, taken, this.random);
    return free === undefined ? null : claim(free);
  }

  private exhausted6(node: NodeLeaseRequest): never {
    const v6 = this.config.ipv6 as NonNullable<ClusterConfig['ipv6']>;
    throw new LeaseError('SubnetsExhausted', `no free IPv6 subnet for node ${node.name}: every /${v6.subnetLen} in [IPv6SubnetMin, IPv6SubnetMax] is reserved (widen IPv6Network or the bounds)`);
  }

  private async recreate(lease: Lease): Promise<Lease> {
    try {
      const t = await this.store.txn([{ op: 'create', key: lease.key, value: renderLeaseValue(lease) }, ...(await this.reservationKeep(lease))], { ttlSeconds: this.ttlSeconds });
      return { ...lease, modRevision: t.revision };
    } catch (e) {
      if (isDatastoreError(e, 'Conflict') || isDatastoreError(e, 'NotFound')) throw this.lost(lease);
      throw e;
    }
  }

  /** A live lease under this node name that another host wrote. */
  private otherHost(node: NodeLeaseRequest, leases: readonly Lease[], except?: string): Lease | undefined {
    const now = this.now();
    return leases
      .filter((l) => l.nodeName === node.name && l.key !== except && !isExpired(l, now) && !sameHost(l, { publicIP: node.publicIP, ...(node.hostId === undefined ? {} : { hostId: node.hostId }) }))
      .sort((a, b) => a.modRevision - b.modRevision)[0];
  }

  /** Two hosts wrote leases for one name from the same list: the younger lease is released and refused. */
  private async settleNameRace(node: NodeLeaseRequest, mine: Lease): Promise<void> {
    const { leases } = await this.list();
    const holder = this.otherHost(node, leases, mine.key);
    if (holder === undefined || holder.modRevision > mine.modRevision) return;
    await this.release(mine);
    throw this.conflict(node, holder);
  }

  private conflict(node: NodeLeaseRequest, holder: Lease): LeaseError {
    return new LeaseError(
      'NodeNameConflict',
      `node name ${node.name} is held by another host: lease ${formatCidr(holder.subnet)} of ${holder.publicIP} (host id ${holder.hostId ?? '-'}), ` +
        `valid until ${new Date(holder.expiresAt).toISOString()}; this host is ${node.publicIP} (host id ${node.hostId ?? '-'}). ` +
        `Start this host with another node name, or stop the other host and delete its lease (${holder.key})`,
    );
  }

  private async dropOtherLeases(node: NodeLeaseRequest, kept: Lease, leases: Lease[]): Promise<void> {
    for (const stale of leases) {
      if (stale.nodeName !== node.name || stale.key === kept.key || this.otherHost(node, [stale]) !== undefined) continue;
      try {
        await this.store.txn([{ op: 'delete', key: stale.key, expectedRevision: stale.modRevision }, ...(await this.reservationDrop(stale))]);
      } catch (e) {
        if (!isDatastoreError(e, 'NotFound') && !isDatastoreError(e, 'Conflict')) throw e;
      }
    }
  }

  private newLease(node: NodeLeaseRequest, subnet: Cidr, key: string, modRevision: number, ipv6Subnet?: IpPrefix): Lease {
    return {
      key,
      subnet,
      ...(ipv6Subnet === undefined ? {} : { ipv6Subnet }),
      ...(node.publicIPv6 === undefined ? {} : { publicIPv6: node.publicIPv6 }),
      nodeName: node.name,
      publicIP: node.publicIP,
      backendType: node.backendType,
      backendData: { ...node.backendData },
      expiresAt: this.now() + this.ttlSeconds * 1000,
      modRevision,
      ...(node.hostId === undefined ? {} : { hostId: node.hostId }),
    };
  }

  private withExpiry(lease: Lease): Lease {
    return { ...lease, expiresAt: this.now() + this.ttlSeconds * 1000 };
  }

  private lost(lease: Lease): LeaseError {
    return new LeaseError('LeaseLost', `lease ${formatCidr(lease.subnet)} of node ${lease.nodeName} now belongs to another node`);
  }
}

function withAttributes(lease: Lease, a: LeaseAttributes): Lease {
  const { publicIPv6: _drop, ...rest } = lease;
  void _drop;
  return { ...rest, publicIP: a.publicIP, backendType: a.backendType, backendData: { ...a.backendData }, ...(a.publicIPv6 === undefined ? {} : { publicIPv6: a.publicIPv6 }) };
}
