/**
 * The IPAM logic over an `IpamStore`: allocate, release, garbage-collect. Pure apart from the store.
 */
import { ErrorCode, TwillError } from '../common/errors.js';
import { formatIp } from '../net/ip.js';
import { formatIPv4 } from '../net/ipv4.js';
import { sameAttachment, attachmentKey, type Addr, type Attachment, type IpamStore, type Reservation } from './types.js';

/** An inclusive range of one family: `number` for IPv4, `bigint` (an `Ip` value of family 6) for IPv6. */
export interface Range<A extends Addr = number> {
  first: A;
  last: A;
  /** Addresses never handed out (the gateway). */
  exclude: readonly A[];
}

/**
 * How many candidates one allocation tries at most. Candidates start after the last address handed
 * out, so in a large range (an IPv6 /64 holds 2^64) the ones tried are the reserved run behind that
 * hint: far fewer than this on any node. A range is never scanned whole beyond this bound; when
 * every tried candidate is taken the allocation fails with code 100 (range exhausted).
 */
export const MAX_CANDIDATES = 1 << 20;

function show(a: Addr): string {
  return typeof a === 'bigint' ? formatIp({ family: 6, value: a }) : formatIPv4(a);
}

/**
 * Candidate order: round-robin from the address after the last one handed out, wrapping once,
 * so a just-released address is not reused at once (host-local does the same). At most
 * `MAX_CANDIDATES` addresses, whatever the range's size.
 */
export function* candidates<A extends Addr>(range: Range<A>, lastReserved: A | undefined, limit = MAX_CANDIDATES): Generator<A> {
  if (typeof range.first === 'number') {
    // IPv4: plain numbers (the hot path of every IPv4 ADD).
    const r = range as unknown as Range<number>;
    const last = lastReserved as number | undefined;
    const count = r.last - r.first + 1;
    let start = 0;
    if (last !== undefined && last >= r.first && last <= r.last) start = last - r.first + 1;
    const n = Math.min(count, limit);
    for (let i = 0; i < n; i++) {
      const ip = r.first + ((start + i) % count);
      if (!r.exclude.includes(ip)) yield ip as A;
    }
    return;
  }
  const r = range as unknown as Range<bigint>;
  const last = lastReserved as bigint | undefined;
  const count = r.last - r.first + 1n;
  let start = 0n;
  if (last !== undefined && last >= r.first && last <= r.last) start = last - r.first + 1n;
  const n = count < BigInt(limit) ? count : BigInt(limit);
  for (let i = 0n; i < n; i++) {
    const ip = r.first + ((start + i) % count);
    if (!r.exclude.includes(ip)) yield ip as A;
  }
}

/** Same attachment twice gets the same address; otherwise the next free one. */
export function allocate<A extends Addr>(store: IpamStore<A>, range: Range<A>, owner: Attachment): { ip: A; existing: boolean } {
  const known = store.lookup(owner);
  if (known !== undefined) {
    const holder = store.ownerOf(known);
    if (holder && sameAttachment(holder, owner)) return { ip: known, existing: true };
  }
  // The index is written before each record: a plugin killed right after the record was created
  // still leaves the index pointing at it, so a retried ADD finds the same address and DEL frees it.
  for (const ip of candidates(range, store.lastReserved())) {
    store.setLookup(owner, ip);
    if (store.tryReserve(ip, owner)) {
      store.setLastReserved(ip);
      return { ip, existing: false };
    }
  }
  store.setLookup(owner, undefined);
  throw new TwillError(
    ErrorCode.RangeExhausted,
    `no free address in ${show(range.first)}-${show(range.last)}: every address tried is reserved`,
  );
}

/** Releases whatever `owner` holds. Idempotent: nothing held is success. Returns the released address. */
export function release<A extends Addr>(store: IpamStore<A>, owner: Attachment): A | undefined {
  const known = store.lookup(owner);
  let released: A | undefined;
  if (known !== undefined && store.release(known, owner)) released = known;
  if (released === undefined) {
    // The index may be missing (an ADD killed between record and index): fall back to a scan.
    for (const r of store.list()) {
      if (sameAttachment(r, owner) && store.release(r.ip, owner)) released = r.ip;
    }
  }
  if (known !== undefined) store.setLookup(owner, undefined);
  return released;
}

/** Releases every reservation (and index entry) whose attachment is not in `valid`. */
export function collectGarbage<A extends Addr>(store: IpamStore<A>, valid: readonly Attachment[]): Array<Reservation<A>> {
  // Sweep first: a release claim left by a killed process blocks its record until it is swept.
  store.sweepTemporary();
  const keep = new Set(valid.map(attachmentKey));
  const released: Array<Reservation<A>> = [];
  for (const r of store.list()) {
    if (!keep.has(attachmentKey(r)) && store.release(r.ip, r)) released.push(r);
  }
  for (const a of store.listLookups()) {
    if (!keep.has(attachmentKey(a))) store.setLookup(a, undefined);
  }
  return released;
}

/** The reservation of `owner` at `ip`, as CHECK wants it confirmed. */
export function holds<A extends Addr>(store: IpamStore<A>, ip: A, owner: Attachment): boolean {
  const holder = store.ownerOf(ip);
  return holder !== undefined && sameAttachment(holder, owner);
}
