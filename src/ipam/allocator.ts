/**
 * The IPAM logic over an `IpamStore`: allocate, release, garbage-collect. Pure apart from the store.
 */
import { ErrorCode, TwillError } from '../common/errors.js';
import { formatIPv4 } from '../net/ipv4.js';
import { sameAttachment, attachmentKey, type Attachment, type IpamStore, type Reservation } from './types.js';

export interface Range {
  first: number;
  last: number;
  /** Addresses never handed out (the gateway). */
  exclude: readonly number[];
}

/**
 * Candidate order: round-robin from the address after the last one handed out, wrapping once,
 * so a just-released address is not reused at once (host-local does the same).
 */
export function* candidates(range: Range, lastReserved: number | undefined): Generator<number> {
  const count = range.last - range.first + 1;
  let start = 0;
  if (lastReserved !== undefined && lastReserved >= range.first && lastReserved <= range.last) {
    start = lastReserved - range.first + 1;
  }
  for (let i = 0; i < count; i++) {
    const ip = range.first + ((start + i) % count);
    if (!range.exclude.includes(ip)) yield ip;
  }
}

/** Same attachment twice gets the same address; otherwise the next free one. */
export function allocate(store: IpamStore, range: Range, owner: Attachment): { ip: number; existing: boolean } {
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
    `no free address in ${formatIPv4(range.first)}-${formatIPv4(range.last)}: every address is reserved`,
  );
}

/** Releases whatever `owner` holds. Idempotent: nothing held is success. Returns the released address. */
export function release(store: IpamStore, owner: Attachment): number | undefined {
  const known = store.lookup(owner);
  let released: number | undefined;
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
export function collectGarbage(store: IpamStore, valid: readonly Attachment[]): Reservation[] {
  // Sweep first: a release claim left by a killed process blocks its record until it is swept.
  store.sweepTemporary();
  const keep = new Set(valid.map(attachmentKey));
  const released: Reservation[] = [];
  for (const r of store.list()) {
    if (!keep.has(attachmentKey(r)) && store.release(r.ip, r)) released.push(r);
  }
  for (const a of store.listLookups()) {
    if (!keep.has(attachmentKey(a))) store.setLookup(a, undefined);
  }
  return released;
}

/** The reservation of `owner` at `ip`, as CHECK wants it confirmed. */
export function holds(store: IpamStore, ip: number, owner: Attachment): boolean {
  const holder = store.ownerOf(ip);
  return holder !== undefined && sameAttachment(holder, owner);
}
