/**
 * `IpamStore` on the local disk, safe for many plugin processes at once without locks:
 *
 *   <dataDir>/<network>/<a.b.c.d>                  the reservation: "containerId\nifName\n"
 *   <dataDir>/<network>/by-attachment/<cid>@<if>    symlink to the address (index)
 *   <dataDir>/<network>/last_reserved_ip            round-robin hint
 *   <dataDir>/<network>/.tmp-<pid>-<time>-<random>  a write in progress (unique across processes and restarts)
 *   <dataDir>/<network>/.tmp-rel-<a.b.c.d>-<inode>  a release in progress: a claim on one record
 *
 * A reservation is written complete into a temporary file and then hard-linked to its address:
 * link(2) fails with EEXIST when the address is taken, so two plugins never get the same one, and
 * a crash leaves either a complete record or none.
 *
 * A record is removed only by the process that holds its claim: a hard link of the record under a
 * name made of the address and the record's inode number. link(2) creates it for one process only;
 * the holder reads the owner from the claimed inode (not from the address name, which may by then
 * name a newer record) and unlinks the address only then. No other process can remove that record
 * meanwhile (it would need the same claim), so a release racing another release and a re-reserve
 * never deletes the newer record. Leftovers of killed writers (temporary files, claims) are swept by
 * age, not by PID: PIDs repeat across containers and restarts (an agent runs as PID 1).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, TwillError } from '../common/errors.js';
import { formatIPv4, parseIPv4 } from '../net/ipv4.js';
import { attachmentKey, sameAttachment, type Attachment, type IpamStore, type Reservation } from './types.js';

const INDEX_DIR = 'by-attachment';
const LAST = 'last_reserved_ip';
const TMP = '.tmp-';
const CLAIM = `${TMP}rel-`;
/**
 * Age after which a temporary file or claim is a leftover of a killed process. A writer holds one for
 * a few system calls; only a process stopped for longer than this in the middle of a write could be
 * disturbed by the sweep (and then its write fails, it never corrupts a record).
 */
export const STALE_TEMP_MS = 60_000;
/** How many 1 ms naps a release waits for another process's claim on the same record. */
const CLAIM_WAIT_TRIES = 50;
const NAP = new Int32Array(new SharedArrayBuffer(4));

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

function io(what: string, e: unknown): TwillError {
  return new TwillError(ErrorCode.IoFailure, `IPAM store: ${what}: ${(e as Error).message}`, { cause: e });
}

/** A name no other process, and no earlier run of this PID, uses: pid + monotonic time + random. */
function uniqueSuffix(): string {
  const rnd = Math.floor(Math.random() * 0x1000000000000).toString(36);
  return `${process.pid}-${process.hrtime.bigint().toString(36)}-${rnd}`;
}

export class FsIpamStore implements IpamStore {
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
    return path.join(this.dir, `${TMP}${uniqueSuffix()}`);
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
    return this.readRecordAt(path.join(this.dir, name), name);
  }

  private readRecordAt(file: string, name: string): Attachment | undefined {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if (code(e) === 'ENOENT') return undefined;
      throw io(`cannot read ${name}`, e);
    }
    const [containerId, ifName] = text.split('\n');
    if (!containerId || !ifName) return undefined;
    return { containerId, ifName };
  }

  release(ip: number, owner: Attachment): boolean {
    return this.removeRecordIf(formatIPv4(ip), (holder) => holder !== undefined && sameAttachment(holder, owner));
  }

  /**
   * Removes the record `name` if `doomed` says so of the owner read from the record itself, holding
   * the record's claim (see the header). False when the record is gone or not doomed. A claim held by
   * another process (for a few system calls: it may be checking a record that is not its own) is
   * waited for briefly; one that stays is a killed release's, swept by GC, and this call gives up.
   */
  private removeRecordIf(name: string, doomed: (holder: Attachment | undefined) => boolean): boolean {
    for (let attempt = 0; ; attempt++) {
      const r = this.tryRemoveRecordIf(name, doomed);
      if (r !== 'busy') return r === 'removed';
      if (attempt >= CLAIM_WAIT_TRIES) return false;
      Atomics.wait(NAP, 0, 0, 1);
    }
  }

  private tryRemoveRecordIf(name: string, doomed: (holder: Attachment | undefined) => boolean): 'removed' | 'kept' | 'busy' {
    const file = path.join(this.dir, name);
    // Cheap first look: most calls concern a record that is or is not the caller's for sure.
    if (!doomed(this.readRecordAt(file, name))) return 'kept';
    let ino: number;
    try {
      ino = fs.lstatSync(file).ino;
    } catch (e) {
      if (code(e) === 'ENOENT') return 'kept';
      throw io(`cannot read ${name}`, e);
    }
    const claim = path.join(this.dir, `${CLAIM}${name}-${ino}`);
    try {
      fs.linkSync(file, claim);
    } catch (e) {
      if (code(e) === 'ENOENT') return 'kept'; // removed meanwhile
      if (code(e) === 'EEXIST') return 'busy'; // another process holds the claim on this very record
      throw io(`cannot claim ${name}`, e);
    }
    try {
      // The address may name a newer record than the one stat-ed above: then the claim is on that
      // one under a name nobody else uses for it, and it is simply dropped.
      if (fs.lstatSync(claim).ino !== ino || !doomed(this.readRecordAt(claim, name))) return 'kept';
      this.unlinkQuiet(file);
      return 'removed';
    } finally {
      this.unlinkQuiet(claim);
    }
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

  sweepTemporary(now = Date.now()): number {
    let removed = 0;
    for (const name of this.names()) {
      // A record is created whole by link(2), so one without owner lines can only be the remnant of a
      // power loss before the data reached the disk: it would block its address forever.
      if (parseIPv4(name) !== undefined) {
        if (this.readRecord(name) === undefined && this.removeRecordIf(name, (holder) => holder === undefined)) removed += 1;
        continue;
      }
      if (name.startsWith(TMP) && this.isStale(name, now)) {
        this.unlinkQuiet(path.join(this.dir, name));
        removed += 1;
      }
    }
    return removed;
  }

  /**
   * A temporary file's age is its mtime (written once, at creation). A claim is a hard link to an old
   * record, whose mtime is the record's: its age is the inode's ctime, which link(2) sets.
   */
  private isStale(name: string, now: number): boolean {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(path.join(this.dir, name));
    } catch (e) {
      if (code(e) === 'ENOENT') return false;
      throw io(`cannot read ${name}`, e);
    }
    const born = name.startsWith(CLAIM) ? st.ctimeMs : st.mtimeMs;
    return now - born > STALE_TEMP_MS;
  }
}
