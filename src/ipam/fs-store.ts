/**
 * `IpamStore` on the local disk, safe for many plugin processes at once without locks:
 *
 *   <dataDir>/<network>/<a.b.c.d>                  the reservation: "containerId\nifName\n"
 *   <dataDir>/<network>/by-attachment/<cid>@<if>    symlink to the address (index)
 *   <dataDir>/<network>/last_reserved_ip            round-robin hint
 *   <dataDir>/<network>/.tmp-<pid>-<time>-<random>  a write in progress (unique across processes and restarts)
 *   <dataDir>/<network>/.tmp-rel-<a.b.c.d>-<inode>  a release in progress: a claim on one record
 *
 * IPv6 (dual stack) shares the directory with its own names: records under the canonical RFC 5952
 * text (`fd00:10:244:1::5`; ':' is valid in Linux file names, the same spelling host-local uses),
 * index `by-attachment-v6/`, hint `last_reserved_ip.v6`. Each family's store reads only names of its
 * own family (a record name must parse *and* be canonical), so a v4 store never sees a v6 record.
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
import { formatIp, parseIpOf } from '../net/ip.js';
import { formatIPv4, parseIPv4 } from '../net/ipv4.js';
import { attachmentKey, sameAttachment, type Addr, type Attachment, type IpamStore, type Reservation } from './types.js';

/** How one family's addresses are named on disk. */
export interface AddrCodec<A extends Addr> {
  readonly family: 4 | 6;
  format(a: A): string;
  /** The address a file name spells, only for the canonical spelling of this family. */
  parse(name: string): A | undefined;
  readonly indexDir: string;
  readonly lastFile: string;
}

export const V4_CODEC: AddrCodec<number> = {
  family: 4,
  format: formatIPv4,
  parse: parseIPv4,
  indexDir: 'by-attachment',
  lastFile: 'last_reserved_ip',
};

const formatV6 = (v: bigint): string => formatIp({ family: 6, value: v });

export const V6_CODEC: AddrCodec<bigint> = {
  family: 6,
  format: formatV6,
  parse(name) {
    const a = parseIpOf(6, name);
    return a !== undefined && formatV6(a.value) === name ? a.value : undefined;
  },
  indexDir: 'by-attachment-v6',
  lastFile: 'last_reserved_ip.v6',
};
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

export class FsIpamStore<A extends Addr = number> implements IpamStore<A> {
  private constructor(
    readonly dir: string,
    private readonly codec: AddrCodec<A>,
  ) {}

  /** Opens (creating if needed) the store of `network` under `dataDir`: IPv4 unless a codec says otherwise. */
  static open(dataDir: string, network: string): FsIpamStore;
  static open<B extends Addr>(dataDir: string, network: string, codec: AddrCodec<B>): FsIpamStore<B>;
  static open(dataDir: string, network: string, codec: AddrCodec<Addr> = V4_CODEC as AddrCodec<Addr>): FsIpamStore<Addr> {
    const dir = path.join(dataDir, network);
    try {
      fs.mkdirSync(path.join(dir, codec.indexDir), { recursive: true, mode: 0o755 });
    } catch (e) {
      throw io(`cannot create ${dir}`, e);
    }
    return new FsIpamStore(dir, codec);
  }

  /** Opens the store only if it exists (DEL and GC must not create directories). */
  static openExisting(dataDir: string, network: string): FsIpamStore | undefined;
  static openExisting<B extends Addr>(dataDir: string, network: string, codec: AddrCodec<B>): FsIpamStore<B> | undefined;
  static openExisting(dataDir: string, network: string, codec: AddrCodec<Addr> = V4_CODEC as AddrCodec<Addr>): FsIpamStore<Addr> | undefined {
    const dir = path.join(dataDir, network);
    // IPv6 records exist only where an IPv6 store was opened (its index dir): an IPv4-only network's
    // DEL and GC skip the IPv6 pass without listing the directory.
    const marker = codec === (V4_CODEC as AddrCodec<Addr>) ? dir : path.join(dir, codec.indexDir);
    return fs.existsSync(marker) ? new FsIpamStore(dir, codec) : undefined;
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

  tryReserve(ip: A, owner: Attachment): boolean {
    const target = path.join(this.dir, this.codec.format(ip));
    const tmp = this.writeTmp(`${owner.containerId}\n${owner.ifName}\n`);
    try {
      fs.linkSync(tmp, target);
      return true;
    } catch (e) {
      if (code(e) === 'EEXIST') return false;
      throw io(`cannot reserve ${this.codec.format(ip)}`, e);
    } finally {
      this.unlinkQuiet(tmp);
    }
  }

  ownerOf(ip: A): Attachment | undefined {
    return this.readRecord(this.codec.format(ip));
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

  release(ip: A, owner: Attachment): boolean {
    return this.removeRecordIf(this.codec.format(ip), (holder) => holder !== undefined && sameAttachment(holder, owner));
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

  lookup(owner: Attachment): A | undefined {
    try {
      return this.codec.parse(fs.readlinkSync(path.join(this.dir, this.codec.indexDir, attachmentKey(owner))));
    } catch (e) {
      if (code(e) === 'ENOENT' || code(e) === 'EINVAL') return undefined;
      throw io('cannot read the attachment index', e);
    }
  }

  setLookup(owner: Attachment, ip: A | undefined): void {
    const link = path.join(this.dir, this.codec.indexDir, attachmentKey(owner));
    if (ip === undefined) {
      this.unlinkQuiet(link);
      return;
    }
    const tmp = this.tmpName();
    try {
      fs.symlinkSync(this.codec.format(ip), tmp);
      fs.renameSync(tmp, link);
    } catch (e) {
      this.unlinkQuiet(tmp);
      throw io('cannot write the attachment index', e);
    }
  }

  list(): Array<Reservation<A>> {
    const out: Array<Reservation<A>> = [];
    for (const name of this.names()) {
      const ip = this.codec.parse(name);
      if (ip === undefined) continue;
      const owner = this.readRecord(name);
      if (owner) out.push({ ip, ...owner });
    }
    return out;
  }

  listLookups(): Attachment[] {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(this.dir, this.codec.indexDir));
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

  lastReserved(): A | undefined {
    try {
      return this.codec.parse(fs.readFileSync(path.join(this.dir, this.codec.lastFile), 'utf8').trim());
    } catch {
      return undefined;
    }
  }

  setLastReserved(ip: A): void {
    const tmp = this.tmpName();
    try {
      fs.writeFileSync(tmp, this.codec.format(ip));
      fs.renameSync(tmp, path.join(this.dir, this.codec.lastFile));
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
      if (this.codec.parse(name) !== undefined) {
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
