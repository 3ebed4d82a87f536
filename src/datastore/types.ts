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
