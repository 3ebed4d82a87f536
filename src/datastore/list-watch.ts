/**
 * listWatch: the one way to follow a prefix of the datastore (client-go's ListWatch, flannel's
 * LeaseWatcher). It yields one `snapshot` (the initial list), then one `event` per change, forever,
 * until `signal` aborts (then the iterable simply ends). It never ends on an error:
 *
 * - Compacted (the watch start revision is gone): re-list and yield the difference between the last
 *   known state and the new list as synthetic put/delete events (`synthetic: true`, flannel's
 *   `LeaseWatcher.Reset`). Consumers never see a second snapshot; applying every event in order to the
 *   snapshot always gives the store's state. A second compaction without an event in between waits a
 *   backoff before listing again (a store compacting faster than we can list must not be hammered).
 * - Unavailable (list or watch): wait a backoff, then resume watching from the last revision seen
 *   (which may in turn be Compacted: then re-list as above). No change is lost or delivered twice,
 *   including several changes at one revision (one etcd transaction).
 * - Anything else (a store bug, an unexpected Conflict/NotFound, a thrown TypeError): wait a backoff,
 *   then re-list and resume from the new list as after a compaction.
 *
 * Delays come from the project's one backoff (src/common/backoff.ts: capped exponential, full jitter);
 * it starts over once an event arrives or a watch stayed up for `maxBackoffMs`. `onLive` tells whether a
 * watch is established right now (false from the first failure until the next watch is up).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Backoff } from '../common/backoff.js';
import { isDatastoreError, type Datastore, type KeyValue, type WatchEvent } from './types.js';

export type ListWatchUpdate =
  /** First item: every key under the prefix at `revision`. */
  | { kind: 'snapshot'; items: KeyValue[]; revision: number }
  /** A change after the snapshot. `synthetic` marks changes computed by a re-list after compaction. */
  | { kind: 'event'; event: WatchEvent; synthetic?: true };

export interface ListWatchRetry {
  /** What failed (a DatastoreError, or anything else the store threw). */
  error: Error;
  /** Which call failed. */
  phase: 'list' | 'watch';
  /** 1 for the first retry after a success. */
  attempt: number;
  delayMs: number;
}

export interface ListWatchOptions {
  /** Waits `ms`; must settle early (resolve or reject) when `signal` aborts. Default: a timer. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Upper bound of the first retry delay (default 200 ms); doubles per failed attempt up to `maxBackoffMs` (default 10 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Jitter source, [0, 1) (default Math.random). */
  random?: () => number;
  /** Clock for "the watch stayed up long enough to reset the backoff" (default Date.now). */
  now?: () => number;
  /** Told about every failure before its backoff (logs, metrics). */
  onRetry?: (retry: ListWatchRetry) => void;
  /** Told about every re-list after compaction or an unexpected error: the new revision and the number of synthetic events. */
  onResync?: (resync: { revision: number; changes: number }) => void;
  /** A watch got established (true) or the current one failed (false, with the error). Called on changes only. */
  onLive?: (live: boolean, error?: Error) => void;
}

const defaultSleep = (ms: number, signal: AbortSignal): Promise<void> => delay(ms, undefined, { signal });

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

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
  const now = opts.now ?? Date.now;
  const maxBackoff = opts.maxBackoffMs ?? 10_000;
  const backoff = new Backoff({
    initialMs: Math.min(opts.initialBackoffMs ?? 200, maxBackoff),
    maxMs: maxBackoff,
    ...(opts.random ? { random: opts.random } : {}),
  });
  let live = false;
  const setLive = (next: boolean, error?: Error): void => {
    if (next === live) return;
    live = next;
    opts.onLive?.(next, error);
  };

  /** Waits before the next try; false when aborted meanwhile. */
  const wait = async (error: Error, phase: ListWatchRetry['phase']): Promise<boolean> => {
    setLive(false, error);
    const delayMs = backoff.next();
    opts.onRetry?.({ error, phase, attempt: backoff.attempt, delayMs });
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
        if (!(await wait(asError(e), 'list'))) return undefined;
      }
    }
  };

  const first = await relist();
  if (!first) return;
  const state = new Map(first.items.map((kv) => [kv.key, kv]));
  let revision = first.revision;
  /** Keys already delivered at `revision` (one etcd txn may change several keys at one revision). */
  let seenAtRevision = new Set<string>();
  /** Compactions since the last delivered event: the second one in a row backs off before listing. */
  let compactedInARow = 0;
  yield { kind: 'snapshot', items: first.items.map((kv) => ({ ...kv })), revision };

  for (;;) {
    if (signal.aborted) return;
    // Resume at `revision` itself when part of it was delivered (the rest may still come), else after it.
    const from = seenAtRevision.size > 0 ? revision : revision + 1;
    let upSince: number | undefined;
    let needList = false;
    try {
      const established = (): void => {
        upSince = now();
        setLive(true);
      };
      for await (const ev of store.watch(prefix, from, signal, { onEstablished: established })) {
        if (upSince === undefined) established();
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
        backoff.reset();
        compactedInARow = 0;
        yield { kind: 'event', event: ev };
      }
      // A watch ends without error only when aborted or when the store was closed.
      setLive(false);
      return;
    } catch (e) {
      if (signal.aborted) return;
      // A watch that stayed up a while was a success: the next failure starts from the first delay.
      if (upSince !== undefined && now() - upSince >= maxBackoff) backoff.reset();
      const error = asError(e);
      if (isDatastoreError(e, 'Compacted')) {
        compactedInARow += 1;
        needList = true;
        if (compactedInARow > 1 && !(await wait(error, 'watch'))) return;
      } else if (isDatastoreError(e, 'Unavailable')) {
        if (!(await wait(error, 'watch'))) return;
      } else {
        // Not a failure the store defines: the watch state is suspect, start again from a fresh list.
        needList = true;
        if (!(await wait(error, 'watch'))) return;
      }
    }
    if (!needList) continue;
    const list = await relist();
    if (!list) return;
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
