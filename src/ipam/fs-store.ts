/**
 * `IpamStore` on the local disk, safe for many plugin processes at once without locks:
 *
 *   <dataDir>/<network>/<a.b.c.d>                  the reservation: "containerId\nifName\n"
 *   <dataDir>/<network>/by-attachment/<cid>@<if>    symlink to the address (index)
 *   <dataDir>/<network>/last_reserved_ip            round-robin hint
 *   <dataDir>/<network>/.tmp-<pid>-<n>              a write in progress
 *
 * A reservation is written complete into a temporary file and then hard-linked to its address:
 * link(2) fails with EEXIST when the address is taken, so two plugins never get the same one, and
 * a crash leaves either a complete record or none. Temporary files of dead processes are swept.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, TwillError } from '../common/errors.js';
import { formatIPv4, parseIPv4 } from '../net/ipv4.js';
import { attachmentKey, type Attachment, type IpamStore, type Reservation } from './types.js';

const INDEX_DIR = 'by-attachment';
const LAST = 'last_reserved_ip';
const TMP = '.tmp-';

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

function io(what: string, e: unknown): TwillError {
  return new TwillError(ErrorCode.IoFailure, `IPAM store: ${what}: ${(e as Error).message}`, { cause: e });
}

export class FsIpamStore implements IpamStore {
  private seq = 0;
  private constructor(readonly dir: string) {}

  /** Opens (creating if needed) the store of `network` under `dataDir`. */
  static open(dataDir: string, network: string): FsIpamStore {
    const dir = path.join(dataDir, network);
    try {
      fs.mkdirSync(path.join(dir, INDEX_DIR), { recursive: true, mode: 0o755 });
    } catch (e) {
      throw io(`cannot create ${dir}`, e);
    }
    return new FsIpamStore(dir);
  }

  /** Opens the store only if it exists (DEL and GC must not create directories). */
  static openExisting(dataDir: string, network: string): FsIpamStore | undefined {
    const dir = path.join(dataDir, network);
    return fs.existsSync(dir) ? new FsIpamStore(dir) : undefined;
  }

  private tmpName(): string {
    this.seq += 1;
    return path.join(this.dir, `${TMP}${process.pid}-${this.seq}`);
  }

  private writeTmp(content: string): string {
    const tmp = this.tmpName();
    try {
      fs.writeFileSync(tmp, content, { flag: 'wx', mode: 0o644 });
    } catch (e) {
      throw io('cannot write a temporary record', e);
    }
    return tmp;
  }

  private unlinkQuiet(p: string): void {
    try {
      fs.unlinkSync(p);
    } catch (e) {
      if (code(e) !== 'ENOENT') throw io(`cannot remove ${p}`, e);
    }
  }

  tryReserve(ip: number, owner: Attachment): boolean {
    const target = path.join(this.dir, formatIPv4(ip));
    const tmp = this.writeTmp(`${owner.containerId}\n${owner.ifName}\n`);
    try {
      fs.linkSync(tmp, target);
      return true;
    } catch (e) {
      if (code(e) === 'EEXIST') return false;
      throw io(`cannot reserve ${formatIPv4(ip)}`, e);
    } finally {
      this.unlinkQuiet(tmp);
    }
  }

  ownerOf(ip: number): Attachment | undefined {
    return this.readRecord(formatIPv4(ip));
  }

  private readRecord(name: string): Attachment | undefined {
    let text: string;
    try {
      text = fs.readFileSync(path.join(this.dir, name), 'utf8');
    } catch (e) {
      if (code(e) === 'ENOENT') return undefined;
      throw io(`cannot read ${name}`, e);
    }
    const [containerId, ifName] = text.split('\n');
    if (!containerId || !ifName) return undefined;
    return { containerId, ifName };
  }

  release(ip: number, owner: Attachment): boolean {
    const holder = this.ownerOf(ip);
    if (!holder || holder.containerId !== owner.containerId || holder.ifName !== owner.ifName) return false;
    this.unlinkQuiet(path.join(this.dir, formatIPv4(ip)));
    return true;
  }

  lookup(owner: Attachment): number | undefined {
    try {
      return parseIPv4(fs.readlinkSync(path.join(this.dir, INDEX_DIR, attachmentKey(owner))));
    } catch (e) {
      if (code(e) === 'ENOENT' || code(e) === 'EINVAL') return undefined;
      throw io('cannot read the attachment index', e);
    }
  }

  setLookup(owner: Attachment, ip: number | undefined): void {
    const link = path.join(this.dir, INDEX_DIR, attachmentKey(owner));
    if (ip === undefined) {
      this.unlinkQuiet(link);
      return;
    }
    const tmp = this.tmpName();
    try {
      fs.symlinkSync(formatIPv4(ip), tmp);
      fs.renameSync(tmp, link);
    } catch (e) {
      this.unlinkQuiet(tmp);
      throw io('cannot write the attachment index', e);
    }
  }

  list(): Reservation[] {
    const out: Reservation[] = [];
    for (const name of this.names()) {
      const ip = parseIPv4(name);
      if (ip === undefined) continue;
      const owner = this.readRecord(name);
      if (owner) out.push({ ip, ...owner });
    }
    return out;
  }

  listLookups(): Attachment[] {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(this.dir, INDEX_DIR));
    } catch (e) {
      if (code(e) === 'ENOENT') return [];
      throw io('cannot list the attachment index', e);
    }
    const out: Attachment[] = [];
    for (const name of names) {
      const at = name.lastIndexOf('@');
      if (at > 0) out.push({ containerId: name.slice(0, at), ifName: name.slice(at + 1) });
    }
    return out;
  }

  private names(): string[] {
    try {
      return fs.readdirSync(this.dir);
    } catch (e) {
      if (code(e) === 'ENOENT') return [];
      throw io(`cannot list ${this.dir}`, e);
    }
  }

  lastReserved(): number | undefined {
    try {
      return parseIPv4(fs.readFileSync(path.join(this.dir, LAST), 'utf8').trim());
    } catch {
      return undefined;
    }
  }

  setLastReserved(ip: number): void {
    const tmp = this.tmpName();
    try {
      fs.writeFileSync(tmp, formatIPv4(ip));
      fs.renameSync(tmp, path.join(this.dir, LAST));
    } catch {
      // Only a hint for round-robin order: losing it is harmless.
      try {
        fs.unlinkSync(tmp);
      } catch {
        /* already gone */
      }
    }
  }

  sweepTemporary(): number {
    let removed = 0;
    for (const name of this.names()) {
      // A record is created whole by link(2), so one without owner lines can only be the remnant of a
      // power loss before the data reached the disk: it would block its address forever.
      if (parseIPv4(name) !== undefined && this.readRecord(name) === undefined) {
        this.unlinkQuiet(path.join(this.dir, name));
        removed += 1;
        continue;
      }
      if (!name.startsWith(TMP)) continue;
      const pid = Number(name.slice(TMP.length).split('-')[0]);
      if (Number.isInteger(pid) && pid !== process.pid && fs.existsSync(`/proc/${pid}`)) continue;
      if (pid === process.pid) continue;
      this.unlinkQuiet(path.join(this.dir, name));
      removed += 1;
    }
    return removed;
  }
}
