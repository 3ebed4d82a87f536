/**
 * The Datastore seam (etcd v3 and the Kubernetes API behind one interface; a memory fake for tests).
 * Keys are strings under a prefix; values are JSON text. Every write is compare-and-swap capable.
 */

export interface KeyValue {
  key: string;
  value: string;
  /** Revision of the last change of this key (etcd mod_revision). */
  modRevision: number;
  /** Lease id the key is attached to, if any (etcd leases expire keys). */
  lease?: string;
}

export interface ListResult {
  items: KeyValue[];
  /** Store revision the list was read at; watch from revision + 1 to see every later change. */
  revision: number;
}

export type WatchEvent =
  | { type: 'put'; kv: KeyValue; revision: number }
  | { type: 'delete'; key: string; revision: number };

export interface PutOptions {
  /** Seconds to live: the key disappears when not renewed (etcd lease). */
  ttlSeconds?: number;
}

/** One operation of a multi-key transaction (see Datastore.txn). */
export type TxnOp =
  | { readonly op: 'create'; readonly key: string; readonly value: string }
  | { readonly op: 'update'; readonly key: string; readonly value: string; readonly expectedRevision: number }
  | { readonly op: 'delete'; readonly key: string; readonly expectedRevision?: number };

export interface TxnResult {
  /** The revision every write of the transaction got (each written key's modRevision). */
  revision: number;
  /** One entry per op, in order: the written key for create/update, undefined for delete. */
  results: Array<KeyValue | undefined>;
}

export interface WatchHooks {
  onEstablished?: () => void;
}

export interface Datastore {
  get(key: string): Promise<KeyValue | undefined>;
  list(prefix: string): Promise<ListResult>;
  /** Creates the key; Conflict when it exists. */
  create(key: string, value: string, opts?: PutOptions): Promise<KeyValue>;
  /** Replaces the key only if its modRevision is still `expectedRevision`; Conflict otherwise, NotFound when gone. */
  update(key: string, value: string, expectedRevision: number, opts?: PutOptions): Promise<KeyValue>;
  /** Deletes the key (only at `expectedRevision` when given). Deleting a missing key is NotFound. */
  delete(key: string, expectedRevision?: number): Promise<void>;
  /**
   * Applies every op atomically at one revision, or none of them: each op has the precondition of its
   * single-key form (create: key absent; update: present at expectedRevision; delete: present [at
   * expectedRevision]). The first failing precondition, in op order, decides the error (Conflict or
   * NotFound, naming its key) and nothing is written. Every put of the transaction shares one TTL
   * (`opts.ttlSeconds`): on etcd one lease, so the keys also expire together. A key may appear once.
   */
  txn(ops: readonly TxnOp[], opts?: PutOptions): Promise<TxnResult>;
  /**
   * Changes under `prefix` after `fromRevision` (exclusive of earlier ones), in order, until `signal`
   * aborts. Throws DatastoreError(Compacted) when `fromRevision` was compacted away: re-list then.
   * `hooks.onEstablished` is called once the store confirmed the watch (etcd: the `created` response).
   */
  watch(prefix: string, fromRevision: number, signal: AbortSignal, hooks?: WatchHooks): AsyncIterable<WatchEvent>;
  close(): Promise<void>;
}

export type DatastoreErrorKind = 'NotFound' | 'Conflict' | 'Compacted' | 'Unavailable';

export class DatastoreError extends Error {
  constructor(
    readonly kind: DatastoreErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DatastoreError';
  }
}

export function isDatastoreError(e: unknown, kind?: DatastoreErrorKind): e is DatastoreError {
  return e instanceof DatastoreError && (kind === undefined || e.kind === kind);
}

/** A transaction names each key once (etcd refuses duplicate keys in one txn). */
export function checkTxnOps(ops: readonly TxnOp[]): void {
  const seen = new Set<string>();
  for (const op of ops) {
    if (seen.has(op.key)) throw new RangeError(`txn: key ${op.key} appears twice`);
    seen.add(op.key);
  }
}
