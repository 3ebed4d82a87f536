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
 * Node identity: before step 1, a live (unexpired) lease under this node name written by another
 * host (`sameHost` false: other host id and other public IP) refuses the request with
 * LeaseError('NodeNameConflict'): the first host keeps its lease, nothing is written. Two hosts that
 * list at the same moment both write; each then re-lists, and the one whose lease is younger (higher
 * modRevision) releases it and is refused, so exactly one keeps the name.
 */
import { LEASE_RENEW_MARGIN_SECONDS, LEASE_TTL_SECONDS, SUBNETS_PREFIX } from '../common/constants.js';
import { isDatastoreError, type Datastore, type KeyValue } from '../datastore/types.js';
import { formatCidr, type Cidr } from '../net/ipv4.js';
import { subnetCount, type ClusterConfig } from './cluster-config.js';
import {
  chooseSubnet,
  inConfigRange,
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

  async acquire(node: NodeLeaseRequest): Promise<Lease> {
    const reported = new Set<string>();
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const { leases, invalid } = await this.list();
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
    const base: Lease = attributes === undefined ? lease : { ...lease, publicIP: attributes.publicIP, backendType: attributes.backendType, backendData: { ...attributes.backendData } };
    let current: Lease = base;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const next = this.withExpiry(current);
      try {
        const kv = await this.store.update(lease.key, renderLeaseValue(next), current.modRevision, {
          ttlSeconds: this.ttlSeconds,
        });
        return { ...next, modRevision: kv.modRevision };
      } catch (e) {
        if (isDatastoreError(e, 'NotFound')) return this.recreate(next);
        if (!isDatastoreError(e, 'Conflict')) throw e;
      }
      const kv = await this.store.get(lease.key);
      if (kv === undefined) return this.recreate(this.withExpiry(current));
      const parsed = parseLease(kv);
      if (!parsed.ok || parsed.lease.nodeName !== lease.nodeName || !sameHost(parsed.lease, lease)) throw this.lost(lease);
      current = { ...base, modRevision: parsed.lease.modRevision };
    }
    throw new LeaseError('AcquireContention', `could not renew ${formatCidr(lease.subnet)} after ${this.maxAttempts} attempts`);
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
        await this.store.delete(lease.key, revision);
        return;
      } catch (e) {
        if (isDatastoreError(e, 'NotFound')) return;
        if (!isDatastoreError(e, 'Conflict')) throw e;
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
    if (own !== undefined) return this.takeOver(own, node);

    const occupied: Cidr[] = [...leases.map((l) => l.subnet), ...invalid.flatMap((i) => (i.subnet ? [i.subnet] : []))];
    const free = chooseSubnet(this.config, occupied, this.random);
    if (free !== undefined) {
      const lease = this.newLease(node, free, leaseKey(free), 0);
      try {
        const kv = await this.store.create(lease.key, renderLeaseValue(lease), { ttlSeconds: this.ttlSeconds });
        return { ...lease, modRevision: kv.modRevision };
      } catch (e) {
        if (isDatastoreError(e, 'Conflict')) return undefined;
        throw e;
      }
    }

    const expired = leases
      .filter((l) => isExpired(l, now) && inConfigRange(this.config, l.subnet))
      .sort((a, b) => a.expiresAt - b.expiresAt)[0];
    if (expired !== undefined) return this.takeOver(expired, node);

    throw new LeaseError(
      'SubnetsExhausted',
      `no free subnet for node ${node.name}: all ${subnetCount(this.config)} /${this.config.subnetLen} subnets of ` +
        `${formatCidr(this.config.network)} are leased (widen Network, SubnetMin/SubnetMax or lower SubnetLen)`,
    );
  }

  /** CAS-overwrites an existing key (own lease or an expired one) with this node's lease. */
  private async takeOver(existing: Lease, node: NodeLeaseRequest): Promise<Lease | undefined> {
    const lease = this.newLease(node, existing.subnet, existing.key, existing.modRevision);
    try {
      const kv = await this.store.update(lease.key, renderLeaseValue(lease), existing.modRevision, {
        ttlSeconds: this.ttlSeconds,
      });
      return { ...lease, modRevision: kv.modRevision };
    } catch (e) {
      if (isDatastoreError(e, 'Conflict') || isDatastoreError(e, 'NotFound')) return undefined;
      throw e;
    }
  }

  private async recreate(lease: Lease): Promise<Lease> {
    let kv: KeyValue;
    try {
      kv = await this.store.create(lease.key, renderLeaseValue(lease), { ttlSeconds: this.ttlSeconds });
    } catch (e) {
      if (isDatastoreError(e, 'Conflict')) throw this.lost(lease);
      throw e;
    }
    return { ...lease, modRevision: kv.modRevision };
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
        await this.store.delete(stale.key, stale.modRevision);
      } catch (e) {
        if (!isDatastoreError(e, 'NotFound') && !isDatastoreError(e, 'Conflict')) throw e;
      }
    }
  }

  private newLease(node: NodeLeaseRequest, subnet: Cidr, key: string, modRevision: number): Lease {
    return {
      key,
      subnet,
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
