/** In-memory `IpamStore` for unit tests: the same contract as the file store. */
import { attachmentKey, sameAttachment, type Addr, type Attachment, type IpamStore, type Reservation } from './types.js';

export class MemoryIpamStore<A extends Addr = number> implements IpamStore<A> {
  private readonly records = new Map<A, Attachment>();
  private readonly index = new Map<string, { owner: Attachment; ip: A }>();
  private last: A | undefined;
  tryReserve(ip: A, owner: Attachment): boolean {
    if (this.records.has(ip)) return false;
    this.records.set(ip, { containerId: owner.containerId, ifName: owner.ifName });
    return true;
  }
  ownerOf(ip: A): Attachment | undefined {
    return this.records.get(ip);
  }
  release(ip: A, owner: Attachment): boolean {
    const holder = this.records.get(ip);
    if (!holder || !sameAttachment(holder, owner)) return false;
    this.records.delete(ip);
    return true;
  }
  lookup(owner: Attachment): A | undefined {
    return this.index.get(attachmentKey(owner))?.ip;
  }
  setLookup(owner: Attachment, ip: A | undefined): void {
    if (ip === undefined) this.index.delete(attachmentKey(owner));
    else this.index.set(attachmentKey(owner), { owner, ip });
  }
  list(): Array<Reservation<A>> {
    return [...this.records].map(([ip, a]) => ({ ip, ...a }));
  }
  listLookups(): Attachment[] {
    return [...this.index.values()].map((v) => v.owner);
  }
  lastReserved(): A | undefined {
    return this.last;
  }
  setLastReserved(ip: A): void {
    this.last = ip;
  }
  sweepTemporary(): number {
    return 0;
  }
}
