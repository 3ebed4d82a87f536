/**
 * listWatch: the one way to follow a prefix of the datastore (client-go's ListWatch, flannel's
 * LeaseWatcher). It yields one `snapshot` (the initial list), then one `event` per change, forever,
 * until `signal` aborts (then the iterable simply ends):
 *
 * - Compacted (the watch start revision is gone): re-list and yield the difference between the last
 *   known state and the new list as synthetic put/delete events (`synthetic: true`, flannel's
 *   `LeaseWatcher.Reset`). Consumers never see a second snapshot; applying every event in order to the
 *   snapshot always gives the store's state.
 * - Unavailable (list or watch): wait with capped exponential backoff, then resume watching from the
 *   last revision seen (which may in turn be Compacted: then re-list as above). No change is lost or
 *   delivered twice, including several changes at one revision (one etcd transaction).
 * - Any other error is a bug or misuse and is thrown to the consumer.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { isDatastoreError, type Datastore, type DatastoreError, type KeyValue, type WatchEvent } from './types.js';

export type ListWatchUpdate =
  /** First item: every key under the prefix at `revision`. */
  | { kind: 'snapshot'; items: KeyValue[]; revision: number }
  /** A change after the snapshot. `synthetic` marks changes computed by a re-list after compaction. */
  | { kind: 'event'; event: WatchEvent; synthetic?: true };

export interface ListWatchRetry {
  error: DatastoreError;
  /** 1 for the first retry after a success. */
  attempt: number;
  delayMs: number;
}

export interface ListWatchOptions {
  /** Waits `ms`; must settle early (resolve or reject) when `signal` aborts. Default: a timer. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** First retry delay (default 200 ms); doubles per failed attempt up to `maxBackoffMs` (default 10 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Told about every Unavailable before its backoff (logs, metrics). */
  onRetry?: (retry: ListWatchRetry) => void;
  /** Told about every re-list after compaction: the new revision and the number of synthetic events. */
  onResync?: (resync: { revision: number; changes: number }) => void;
}

const defaultSleep = (ms: number, signal: AbortSignal): Promise<void> => delay(ms, undefined, { signal });

/**
 * The changes that turn `known` into `items` (a list read at `revision`): deletes first, then puts
 * of new or changed keys (modRevision differs), each group in key order; all at `revision`. Pure.
 */
export function diffSnapshot(known: ReadonlyMap<string, KeyValue>, items: readonly KeyValue[], revision: number): WatchEvent[] {
  const next = new Map(items.map((kv) => [kv.key, kv]));
  const deletes: WatchEvent[] = [...known.keys()]
    .filter((key) => !next.has(key))
    .sort()
    .map((key) => ({ type: 'delete', key, revision }));
  const puts: WatchEvent[] = [...next.values()]
    .filter((kv) => known.get(kv.key)?.modRevision !== kv.modRevision)
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((kv) => ({ type: 'put', kv: { ...kv }, revision }));
  return [...deletes, ...puts];
}

function eventKey(ev: WatchEvent): string {
  return ev.type === 'put' ? ev.kv.key : ev.key;
}

export async function* listWatch(
  store: Datastore,
  prefix: string,
  signal: AbortSignal,
  opts: ListWatchOptions = {},
): AsyncIterable<ListWatchUpdate> {
  const sleep = opts.sleep ?? defaultSleep;
  const initialBackoff = opts.initialBackoffMs ?? 200;
  const maxBackoff = opts.maxBackoffMs ?? 10_000;
  let attempt = 0;

  /** Waits before the next try; false when aborted meanwhile. */
  const backoff = async (error: DatastoreError): Promise<boolean> => {
    const delayMs = Math.min(maxBackoff, initialBackoff * 2 ** attempt);
    attempt += 1;
    opts.onRetry?.({ error, attempt, delayMs });
    try {
      await sleep(delayMs, signal);
    } catch (e) {
      if (!signal.aborted) throw e;
    }
    return !signal.aborted;
  };

  /** Lists until it works; undefined when aborted. */
  const relist = async (): Promise<{ items: KeyValue[]; revision: number } | undefined> => {
    for (;;) {
      if (signal.aborted) return undefined;
      try {
        const result = await store.list(prefix);
        return signal.aborted ? undefined : result;
      } catch (e) {
        if (!isDatastoreError(e, 'Unavailable')) throw e;
        if (!(await backoff(e))) return undefined;
      }
    }
  };

  const first = await relist();
  if (!first) return;
  attempt = 0;
  const state = new Map(first.items.map((kv) => [kv.key, kv]));
  let revision = first.revision;
  /** Keys already delivered at `revision` (one etcd txn may change several keys at one revision). */
  let seenAtRevision = new Set<string>();
  yield { kind: 'snapshot', items: first.items.map((kv) => ({ ...kv })), revision };

  for (;;) {
    if (signal.aborted) return;
    // Resume at `revision` itself when part of it was delivered (the rest may still come), else after it.
    const from = seenAtRevision.size > 0 ? revision : revision + 1;
    let resync = false;
    try {
      for await (const ev of store.watch(prefix, from, signal)) {
        if (ev.revision < revision) continue;
        const key = eventKey(ev);
        if (ev.revision === revision && seenAtRevision.has(key)) continue;
        if (ev.revision > revision) {
          revision = ev.revision;
          seenAtRevision = new Set();
        }
        seenAtRevision.add(key);
        if (ev.type === 'put') state.set(key, { ...ev.kv });
        else state.delete(key);
        attempt = 0;
        yield { kind: 'event', event: ev };
      }
      // A watch ends without error only when aborted or when the store was closed.
      return;
    } catch (e) {
      if (signal.aborted) return;
      if (isDatastoreError(e, 'Compacted')) resync = true;
      else if (isDatastoreError(e, 'Unavailable')) {
        if (!(await backoff(e))) return;
      } else throw e;
    }
    if (!resync) continue;
    const list = await relist();
    if (!list) return;
    attempt = 0;
    const changes = diffSnapshot(state, list.items, list.revision);
    state.clear();
    for (const kv of list.items) state.set(kv.key, kv);
    revision = list.revision;
    seenAtRevision = new Set();
    opts.onResync?.({ revision, changes: changes.length });
    for (const event of changes) {
      if (signal.aborted) return;
      yield { kind: 'event', event, synthetic: true };
    }
  }
}
