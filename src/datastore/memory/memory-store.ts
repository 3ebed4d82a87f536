/**
 * MemoryDatastore: an in-process Datastore with etcd v3 semantics, shipped as the fake for tests.
 *
 * - One global revision counter (a fresh store is at revision 1, as a fresh etcd); every change takes
 *   the next revision and becomes the key's modRevision.
 * - create/update/delete are compare-and-swap exactly like the etcd transactions in etcd-store.ts.
 * - TTL: a put with `ttlSeconds` gets a fresh lease id; when the injectable clock passes its expiry the
 *   key is deleted with a delete event of its own revision. Expiry is checked before every operation,
 *   by `expire()`, and (optionally) on a timer while watches are open.
 * - History: the last `historyLimit` events are kept for watches from older revisions; `compact(rev)`
 *   (or trimming) drops older ones and a watch from before the compacted revision throws Compacted.
 * - `setUnavailable(true)` simulates an outage: every operation throws Unavailable and open watches
 *   end with Unavailable. The stored data and history survive (the server is fine, the client is cut off).
 */
import { AsyncQueue } from '../async-queue.js';
import {
  DatastoreError,
  checkTxnOps,
  type Datastore,
  type KeyValue,
  type ListResult,
  type PutOptions,
  type TxnOp,
  type TxnResult,
  type WatchEvent,
  type WatchHooks,
} from '../types.js';

export interface Clock {
  /** Milliseconds; only differences matter. */
  now(): number;
}

export interface MemoryDatastoreOptions {
  /** Time source for TTLs (default: Date.now). */
  clock?: Clock;
  /** Events kept for watches from older revisions (default 10000); older ones are compacted away. */
  historyLimit?: number;
  /** While watches are open, expire keys every this many real milliseconds (default: never; call `expire()`). */
  sweepIntervalMs?: number;
}

interface Entry {
  kv: KeyValue;
  expiresAt?: number;
}

interface Watcher {
  prefix: string;
  from: number;
  queue: AsyncQueue<WatchEvent>;
}

/** A clock that moves only when told to (tests). */
export class ManualClock implements Clock {
  constructor(private ms = 0) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

const systemClock: Clock = { now: () => Date.now() };

function copyEvent(ev: WatchEvent): WatchEvent {
  return ev.type === 'put' ? { type: 'put', kv: { ...ev.kv }, revision: ev.revision } : { ...ev };
}

export class MemoryDatastore implements Datastore {
  private readonly clock: Clock;
  private readonly historyLimit: number;
  private readonly sweepIntervalMs: number | undefined;
  private revision = 1;
  private compactRevision = 0;
  private leaseSeq = 0;
  private readonly data = new Map<string, Entry>();
  private readonly history: WatchEvent[] = [];
  private readonly watchers = new Set<Watcher>();
  private unavailable = false;
  private closed = false;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;

  constructor(opts: MemoryDatastoreOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.historyLimit = opts.historyLimit ?? 10000;
    this.sweepIntervalMs = opts.sweepIntervalMs;
    if (!(this.historyLimit >= 0)) throw new RangeError(`historyLimit must be >= 0, got ${this.historyLimit}`);
  }

  /** The store's current revision (the revision of the last change). */
  get currentRevision(): number {
    return this.revision;
  }

  /** Watches from a revision below this one throw Compacted. */
  get compactedRevision(): number {
    return this.compactRevision;
  }

  /** Number of open watches (for tests that check watches are released). */
  get watchCount(): number {
    return this.watchers.size;
  }

  /** Simulates losing (true) or regaining (false) the connection to the store. */
  setUnavailable(down: boolean): void {
    this.unavailable = down;
    if (!down) return;
    for (const w of this.watchers) w.queue.fail(new DatastoreError('Unavailable', 'memory datastore: simulated outage'));
    this.watchers.clear();
    this.updateSweeper();
  }

  /**
   * Deletes every key whose TTL has passed on the clock, oldest expiry first, each with a delete
   * event. Runs even during a simulated outage (expiry happens on the server). Returns the count.
   */
  expire(): number {
    const now = this.clock.now();
    const due = [...this.data.values()]
      .filter((e): e is Entry & { expiresAt: number } => e.expiresAt !== undefined && e.expiresAt <= now)
      .sort((a, b) => a.expiresAt - b.expiresAt || (a.kv.key < b.kv.key ? -1 : 1));
    for (const e of due) this.remove(e.kv.key);
    return due.length;
  }

  /**
   * Forgets the history before `revision`: watches from an older revision then throw Compacted.
   * Like etcd, compacting a future revision is an error and an already compacted one is Compacted.
   */
  compact(revision: number): void {
    if (revision > this.revision) throw new RangeError(`cannot compact future revision ${revision} (current ${this.revision})`);
    if (revision <= this.compactRevision) {
      throw new DatastoreError('Compacted', `revision ${revision} is already compacted (at ${this.compactRevision})`);
    }
    this.compactRevision = revision;
    let drop = 0;
    while (drop < this.history.length && (this.history[drop] as WatchEvent).revision < revision) drop += 1;
    this.history.splice(0, drop);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.check();
    const e = this.data.get(key);
    return e ? { ...e.kv } : undefined;
  }

  async list(prefix: string): Promise<ListResult> {
    this.check();
    const items = [...this.data.values()]
      .filter((e) => e.kv.key.startsWith(prefix))
      .map((e) => ({ ...e.kv }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { items, revision: this.revision };
  }

  async create(key: string, value: string, opts?: PutOptions): Promise<KeyValue> {
    this.check();
    if (this.data.has(key)) throw new DatastoreError('Conflict', `key ${key} already exists`);
    return this.write(key, value, opts);
  }

  async update(key: string, value: string, expectedRevision: number, opts?: PutOptions): Promise<KeyValue> {
    this.check();
    const e = this.data.get(key);
    if (!e) throw new DatastoreError('NotFound', `key ${key} not found`);
    if (e.kv.modRevision !== expectedRevision) {
      throw new DatastoreError('Conflict', `key ${key} is at revision ${e.kv.modRevision}, not ${expectedRevision}`);
    }
    return this.write(key, value, opts);
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    this.check();
    const e = this.data.get(key);
    if (!e) throw new DatastoreError('NotFound', `key ${key} not found`);
    if (expectedRevision !== undefined && e.kv.modRevision !== expectedRevision) {
      throw new DatastoreError('Conflict', `key ${key} is at revision ${e.kv.modRevision}, not ${expectedRevision}`);
    }
    this.remove(key);
  }

  async txn(ops: readonly TxnOp[], opts?: PutOptions): Promise<TxnResult> {
    this.check();
    checkTxnOps(ops);
    const ttl = opts?.ttlSeconds;
    if (ttl !== undefined && !(ttl > 0)) throw new RangeError(`ttlSeconds must be > 0, got ${ttl}`);
    for (const op of ops) {
      const e = this.data.get(op.key);
      if (op.op === 'create') {
        if (e) throw new DatastoreError('Conflict', `key ${op.key} already exists`);
        continue;
      }
      if (!e) throw new DatastoreError('NotFound', `key ${op.key} not found`);
      if (op.expectedRevision !== undefined && e.kv.modRevision !== op.expectedRevision) {
        throw new DatastoreError('Conflict', `key ${op.key} is at revision ${e.kv.modRevision}, not ${op.expectedRevision}`);
      }
    }
    if (ops.length === 0) return { revision: this.revision, results: [] };
    // One revision for the whole transaction, one lease for all its puts (as etcd).
    this.revision += 1;
    const revision = this.revision;
    let lease: string | undefined;
    if (ttl !== undefined) {
      this.leaseSeq += 1;
      lease = String(this.leaseSeq);
    }
    const results: Array<KeyValue | undefined> = [];
    for (const op of ops) {
      if (op.op === 'delete') {
        this.data.delete(op.key);
        this.record({ type: 'delete', key: op.key, revision });
        results.push(undefined);
        continue;
      }
      const kv: KeyValue = { key: op.key, value: op.value, modRevision: revision };
      const entry: Entry = { kv };
      if (lease !== undefined && ttl !== undefined) {
        kv.lease = lease;
        entry.expiresAt = this.clock.now() + ttl * 1000;
      }
      this.data.set(op.key, entry);
      this.record({ type: 'put', kv: { ...kv }, revision });
      results.push({ ...kv });
    }
    return { revision, results };
  }

  async *watch(prefix: string, fromRevision: number, signal: AbortSignal, hooks?: WatchHooks): AsyncIterable<WatchEvent> {
    if (signal.aborted) return;
    this.check();
    const from = fromRevision > 0 ? fromRevision : this.revision + 1;
    if (from < this.compactRevision) {
      throw new DatastoreError('Compacted', `revision ${from} is compacted (history starts at ${this.compactRevision})`);
    }
    // Replay and registration happen in the same synchronous step: no change can fall in between.
    const w: Watcher = { prefix, from, queue: new AsyncQueue<WatchEvent>() };
    for (const ev of this.history) if (ev.revision >= from && keyOf(ev).startsWith(prefix)) w.queue.push(copyEvent(ev));
    this.watchers.add(w);
    this.updateSweeper();
    hooks?.onEstablished?.();
    const onAbort = (): void => w.queue.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      yield* w.queue;
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.watchers.delete(w);
      this.updateSweeper();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.watchers) w.queue.end();
    this.watchers.clear();
    this.updateSweeper();
  }

  private check(): void {
    if (this.closed) throw new DatastoreError('Unavailable', 'memory datastore: closed');
    if (this.unavailable) throw new DatastoreError('Unavailable', 'memory datastore: simulated outage');
    this.expire();
  }

  private write(key: string, value: string, opts: PutOptions | undefined): KeyValue {
    const ttl = opts?.ttlSeconds;
    if (ttl !== undefined && !(ttl > 0)) throw new RangeError(`ttlSeconds must be > 0, got ${ttl}`);
    this.revision += 1;
    const kv: KeyValue = { key, value, modRevision: this.revision };
    const entry: Entry = { kv };
    if (ttl !== undefined) {
      this.leaseSeq += 1;
      kv.lease = String(this.leaseSeq);
      entry.expiresAt = this.clock.now() + ttl * 1000;
    }
    this.data.set(key, entry);
    this.record({ type: 'put', kv: { ...kv }, revision: this.revision });
    return { ...kv };
  }

  private remove(key: string): void {
    this.revision += 1;
    this.data.delete(key);
    this.record({ type: 'delete', key, revision: this.revision });
  }

  private record(ev: WatchEvent): void {
    this.history.push(ev);
    while (this.history.length > this.historyLimit) {
      const old = this.history.shift() as WatchEvent;
      this.compactRevision = Math.max(this.compactRevision, old.revision + 1);
    }
    for (const w of this.watchers) {
      if (ev.revision >= w.from && keyOf(ev).startsWith(w.prefix)) w.queue.push(copyEvent(ev));
    }
  }

  private updateSweeper(): void {
    const want = this.sweepIntervalMs !== undefined && this.watchers.size > 0 && !this.closed;
    if (want && this.sweepTimer === undefined) {
      this.sweepTimer = setInterval(() => this.expire(), this.sweepIntervalMs);
      this.sweepTimer.unref();
    } else if (!want && this.sweepTimer !== undefined) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }
}

function keyOf(ev: WatchEvent): string {
  return ev.type === 'put' ? ev.kv.key : ev.key;
}
