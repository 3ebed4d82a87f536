/** IPAM seam: the pure allocator talks to reservations only through `IpamStore`. */

export interface Attachment {
  containerId: string;
  ifName: string;
}

/**
 * An address as the IPAM stores it: IPv4 as the unsigned 32-bit `number` of src/net/ipv4.ts (the
 * fast, original path), IPv6 as the 128-bit `bigint` value of an `Ip` of family 6 (src/net/ip.ts).
 */
export type Addr = number | bigint;

export interface Reservation<A extends Addr = number> extends Attachment {
  ip: A;
}

/**
 * Reservation storage for one network on one node. Every method is synchronous (the CNI plugin
 * is a short-lived process) and each write is atomic on its own: `tryReserve` either creates a
 * complete record or nothing, so concurrent plugins never hand out the same address.
 */
export interface IpamStore<A extends Addr = number> {
  /** Creates the record for `ip` if no record exists. False when the address is taken. */
  tryReserve(ip: A, owner: Attachment): boolean;
  /** The owner recorded for `ip`, or undefined. */
  ownerOf(ip: A): Attachment | undefined;
  /**
   * Removes the record for `ip` if `owner` holds it, atomically: never a record another attachment
   * reserved after `owner`'s was released by someone else. False when not held by `owner`.
   */
  release(ip: A, owner: Attachment): boolean;
  /** Index from attachment to address (a hint: the record itself is the truth). */
  lookup(owner: Attachment): A | undefined;
  setLookup(owner: Attachment, ip: A | undefined): void;
  list(): Array<Reservation<A>>;
  /** Attachments that have an index entry (including stale ones whose record is gone). */
  listLookups(): Attachment[];
  lastReserved(): A | undefined;
  setLastReserved(ip: A): void;
  /** Removes leftovers of interrupted writes (temporary files older than a grace age); returns how many. */
  sweepTemporary(): number;
}

export function sameAttachment(a: Attachment, b: Attachment): boolean {
  return a.containerId === b.containerId && a.ifName === b.ifName;
}

export function attachmentKey(a: Attachment): string {
  return `${a.containerId}@${a.ifName}`;
}
