/** IPAM seam: the pure allocator talks to reservations only through `IpamStore`. */

export interface Attachment {
  containerId: string;
  ifName: string;
}

export interface Reservation extends Attachment {
  ip: number;
}

/**
 * Reservation storage for one network on one node. Every method is synchronous (the CNI plugin
 * is a short-lived process) and each write is atomic on its own: `tryReserve` either creates a
 * complete record or nothing, so concurrent plugins never hand out the same address.
 */
export interface IpamStore {
  /** Creates the record for `ip` if no record exists. False when the address is taken. */
  tryReserve(ip: number, owner: Attachment): boolean;
  /** The owner recorded for `ip`, or undefined. */
  ownerOf(ip: number): Attachment | undefined;
  /**
   * Removes the record for `ip` if `owner` holds it, atomically: never a record another attachment
   * reserved after `owner`'s was released by someone else. False when not held by `owner`.
   */
  release(ip: number, owner: Attachment): boolean;
  /** Index from attachment to address (a hint: the record itself is the truth). */
  lookup(owner: Attachment): number | undefined;
  setLookup(owner: Attachment, ip: number | undefined): void;
  list(): Reservation[];
  /** Attachments that have an index entry (including stale ones whose record is gone). */
  listLookups(): Attachment[];
  lastReserved(): number | undefined;
  setLastReserved(ip: number): void;
  /** Removes leftovers of interrupted writes (temporary files older than a grace age); returns how many. */
  sweepTemporary(): number;
}

export function sameAttachment(a: Attachment, b: Attachment): boolean {
  return a.containerId === b.containerId && a.ifName === b.ifName;
}

export function attachmentKey(a: Attachment): string {
  return `${a.containerId}@${a.ifName}`;
}
