/** In-memory `IpamStore` for unit tests: the same contract as the file store. */
import { attachmentKey, sameAttachment, type Attachment, type IpamStore, type Reservation } from './types.js';

export class MemoryIpamStore implements IpamStore {
  private readonly records = new Map<number, Attachment>();
  private readonly index = new Map<string, { owner: Attachment; ip: number }>();
  private last: number | undefined;
  tryReserve(ip: number, owner: Attachment): boolean {
    if (this.records.has(ip)) return false;
    this.records.set(ip, { containerId: owner.containerId, ifName: owner.ifName });
    return true;
  }
  ownerOf(ip: number): Attachment | undefined {
    return this.records.get(ip);
  }
  release(ip: number, owner: Attachment): boolean {
    const holder = this.records.get(ip);
    if (!holder || !sameAttachment(holder, owner)) return false;
    this.records.delete(ip);
    return true;
  }
  lookup(owner: Attachment): number | undefined {
    return this.index.get(attachmentKey(owner))?.ip;
  }
  setLookup(owner: Attachment, ip: number | undefined): void {
    if (ip === undefined) this.index.delete(attachmentKey(owner));
    else this.index.set(attachmentKey(owner), { owner, ip });
  }
  list(): Reservation[] {
    return [...this.records].map(([ip, a]) => ({ ip, ...a }));
  }
  listLookups(): Attachment[] {
    return [...this.index.values()].map((v) => v.owner);
  }
  lastReserved(): number | undefined {
    return this.last;
  }
  setLastReserved(ip: number): void {
    this.last = ip;
  }
  sweepTemporary(): number {
    return 0;
  }
}
