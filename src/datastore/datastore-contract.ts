/**
 * The Datastore contract (etcd v3 semantics) and listWatch's recovery on top of it, as one reusable
 * suite: memory/memory-store.test.ts runs it on MemoryDatastore, test/integration/etcd-datastore.test.ts
 * on EtcdDatastore against a real etcd. This module registers no tests of its own.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { listWatch, type ListWatchUpdate } from './list-watch.js';
import { DatastoreError, isDatastoreError, type Datastore, type DatastoreErrorKind, type WatchEvent } from './types.js';

export interface ContractSubject {
  store: Datastore;
  /** Unique to this test: stores may be shared between tests. Ends with '/'. */
  prefix: string;
  /** Lets `ms` of TTL time pass (a fake clock moves; a real store sleeps). */
  elapse(ms: number): Promise<void>;
  /** Compacts the store's history before `revision`. */
  compact(revision: number): Promise<void>;
  /** Releases the subject (closes the store, ...). */
  dispose(): Promise<void>;
}

export interface ContractOptions {
  /** Upper bound for anything eventual (watch delivery, TTL expiry after elapse). Default 10 s. */
  timeoutMs?: number;
}

/** Runs `body` and asserts it throws a DatastoreError of `kind`. */
export async function rejectsWith(kind: DatastoreErrorKind, body: () => Promise<unknown>): Promise<void> {
  await assert.rejects(body, (e: unknown) => {
    assert.ok(isDatastoreError(e), `expected DatastoreError(${kind}), got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    return true;
  });
}

/** Pulls `n` items from `iterator`, failing after `timeoutMs`. */
export async function take<T>(iterator: AsyncIterator<T>, n: number, timeoutMs: number): Promise<T[]> {
  const out: T[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${out.length}/${n} items: ${JSON.stringify(out)}`)),
        Math.max(0, deadline - Date.now()),
      );
    });
    try {
      const r = await Promise.race([iterator.next(), timeout]);
      if (r.done) throw new Error(`iterator ended after ${out.length}/${n} items: ${JSON.stringify(out)}`);
      out.push(r.value);
    } finally {
      clearTimeout(timer);
    }
  }
  return out;
}

/** Resolves to `promise`'s value, or to 'timeout' after `ms` (the timer never outlives the race). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `probe` until it returns true or `timeoutMs` passes. */
export async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) assert.fail(`not true within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A compact, comparable form of a watch event: `put a=v@rev` / `delete a@rev` (key relative to `prefix`). */
export function show(ev: WatchEvent, prefix: string): string {
  return ev.type === 'put'
    ? `put ${ev.kv.key.slice(prefix.length)}=${ev.kv.value}@${ev.revision}`
    : `delete ${ev.key.slice(prefix.length)}@${ev.revision}`;
}

/**
 * Wraps a store so a test can cut the current watches off as a network blip would: they throw
 * Unavailable (after the inner watch was released). Everything else passes through.
 */
export function interruptible(inner: Datastore): { store: Datastore; interrupt(): void; watches(): number } {
  const open = new Set<AbortController>();
  let started = 0;
  const store: Datastore = {
    get: (k) => inner.get(k),
    list: (p) => inner.list(p),
    create: (k, v, o) => inner.create(k, v, o),
    update: (k, v, r, o) => inner.update(k, v, r, o),
    delete: (k, r) => inner.delete(k, r),
    txn: (ops, o) => inner.txn(ops, o),
    close: () => inner.close(),
    async *watch(prefix, fromRevision, signal, hooks) {
      const ac = new AbortController();
      const forward = (): void => ac.abort();
      signal.addEventListener('abort', forward, { once: true });
      open.add(ac);
      started += 1;
      try {
        yield* inner.watch(prefix, fromRevision, ac.signal, hooks);
        if (!signal.aborted && ac.signal.aborted) throw new DatastoreError('Unavailable', 'test: watch interrupted');
      } finally {
        open.delete(ac);
        signal.removeEventListener('abort', forward);
      }
    },
  };
  return {
    store,
    interrupt: () => {
      for (const ac of open) ac.abort();
    },
    watches: () => started,
  };
}

export function datastoreContract(label: string, make: () => Promise<ContractSubject>, options: ContractOptions = {}): void {
  const timeoutMs = options.timeoutMs ?? 10_000;

  async function withSubject(body: (s: ContractSubject) => Promise<void>): Promise<void> {
    const s = await make();
    try {
      await body(s);
    } finally {
      await s.dispose();
    }
  }

  describe(`Datastore contract: ${label}`, () => {
    it('get/create: a created key reads back; creating it again is Conflict', () =>
      withSubject(async ({ store, prefix }) => {
        const k = `${prefix}a`;
        assert.equal(await store.get(k), undefined);
        const kv = await store.create(k, '{"n":1}');
        assert.equal(kv.key, k);
        assert.equal(kv.value, '{"n":1}');
        assert.ok(kv.modRevision > 0);
        assert.equal(kv.lease, undefined);
        assert.deepEqual(await store.get(k), kv);
        await rejectsWith('Conflict', () => store.create(k, '{"n":2}'));
        assert.deepEqual(await store.get(k), kv, 'a failed create changes nothing');
      }));

    it('update is compare-and-swap on modRevision; NotFound when the key is gone', () =>
      withSubject(async ({ store, prefix }) => {
        const k = `${prefix}a`;
        const v1 = await store.create(k, 'one');
        const v2 = await store.update(k, 'two', v1.modRevision);
        assert.ok(v2.modRevision > v1.modRevision);
        assert.equal(v2.value, 'two');
        await rejectsWith('Conflict', () => store.update(k, 'stale', v1.modRevision));
        assert.deepEqual(await store.get(k), v2);
        await rejectsWith('NotFound', () => store.update(`${prefix}missing`, 'x', v2.modRevision));
        await rejectsWith('NotFound', () => store.update(`${prefix}missing`, 'x', 0));
        assert.equal(await store.get(`${prefix}missing`), undefined, 'update never creates');
      }));

    it('delete: NotFound when missing, Conflict at a stale revision, else gone', () =>
      withSubject(async ({ store, prefix }) => {
        const k = `${prefix}a`;
        await rejectsWith('NotFound', () => store.delete(k));
        await rejectsWith('NotFound', () => store.delete(k, 5));
        const v1 = await store.create(k, 'one');
        const v2 = await store.update(k, 'two', v1.modRevision);
        await rejectsWith('Conflict', () => store.delete(k, v1.modRevision));
        assert.deepEqual(await store.get(k), v2);
        await store.delete(k, v2.modRevision);
        assert.equal(await store.get(k), undefined);
        const v3 = await store.create(k, 'three');
        assert.ok(v3.modRevision > v2.modRevision, 'revisions never go back');
        await store.delete(k);
        assert.equal(await store.get(k), undefined);
      }));

    it('txn: all ops at one revision, or none (the first failing op names the error)', () =>
      withSubject(async ({ store, prefix }) => {
        const [a, b, c] = [`${prefix}a`, `${prefix}b`, `${prefix}c`];
        const c1 = await store.create(c, 'C');
        const t1 = await store.txn([
          { op: 'create', key: a, value: 'A' },
          { op: 'create', key: b, value: 'B' },
          { op: 'update', key: c, value: 'C2', expectedRevision: c1.modRevision },
        ]);
        assert.ok(t1.revision > c1.modRevision);
        assert.deepEqual(t1.results.map((r) => r && [r.key, r.value, r.modRevision]), [[a, 'A', t1.revision], [b, 'B', t1.revision], [c, 'C2', t1.revision]]);
        assert.deepEqual(await store.get(a), t1.results[0]);
        const before = (await store.list(prefix)).items;
        // Each failing precondition aborts the whole transaction, whatever its position.
        await rejectsWith('Conflict', () => store.txn([{ op: 'create', key: `${prefix}d`, value: 'D' }, { op: 'create', key: a, value: 'A2' }]));
        await rejectsWith('Conflict', () => store.txn([{ op: 'create', key: `${prefix}d`, value: 'D' }, { op: 'update', key: b, value: 'x', expectedRevision: c1.modRevision }]));
        await rejectsWith('NotFound', () => store.txn([{ op: 'update', key: a, value: 'x', expectedRevision: t1.revision }, { op: 'update', key: `${prefix}e`, value: 'x', expectedRevision: 1 }]));
        await rejectsWith('NotFound', () => store.txn([{ op: 'delete', key: a }, { op: 'delete', key: `${prefix}e` }]));
        await rejectsWith('Conflict', () => store.txn([{ op: 'delete', key: a, expectedRevision: c1.modRevision }]));
        assert.deepEqual((await store.list(prefix)).items, before, 'a failed txn changes nothing');
        await assert.rejects(() => store.txn([{ op: 'delete', key: a }, { op: 'create', key: a, value: 'x' }]), RangeError);
        const t2 = await store.txn([{ op: 'delete', key: a, expectedRevision: t1.revision }, { op: 'delete', key: b }, { op: 'create', key: `${prefix}d`, value: 'D' }]);
        assert.equal(t2.results[0], undefined);
        assert.equal(t2.results[2]?.modRevision, t2.revision);
        assert.deepEqual((await store.list(prefix)).items.map((kv) => kv.key), [c, `${prefix}d`]);
      }));

    it('txn: the puts share one TTL and expire together; watchers see every op at the txn revision', () =>
      withSubject(async ({ store, prefix, elapse }) => {
        const start = await store.list(prefix);
        const ac = new AbortController();
        const it = store.watch(prefix, start.revision + 1, ac.signal)[Symbol.asyncIterator]();
        const t = await store.txn([{ op: 'create', key: `${prefix}a`, value: 'A' }, { op: 'create', key: `${prefix}b`, value: 'B' }], { ttlSeconds: 2 });
        assert.ok(t.results[0]?.lease !== undefined && t.results[0].lease === t.results[1]?.lease, 'one lease for the txn');
        const events = await take(it, 2, timeoutMs);
        assert.deepEqual(events.map((e) => show(e, prefix)), [`put a=A@${t.revision}`, `put b=B@${t.revision}`]);
        await elapse(3500);
        await eventually('both keys expired', async () => (await store.list(prefix)).items.length === 0, timeoutMs);
        ac.abort();
      }));

    it('list: only keys under the prefix, in key order, at a revision watches can start after', () =>
      withSubject(async ({ store, prefix }) => {
        assert.deepEqual((await store.list(prefix)).items, []);
        const b = await store.create(`${prefix}b`, 'B');
        const a = await store.create(`${prefix}a/x`, 'A');
        await store.create(`${prefix.slice(0, -1)}-sibling`, 'not mine');
        const c = await store.create(`${prefix}c`, 'C', { ttlSeconds: 60 });
        const l = await store.list(prefix);
        assert.deepEqual(l.items, [a, b, c]);
        assert.ok(l.revision >= c.modRevision, 'the list revision includes the last write');
        const d = await store.create(`${prefix}d`, 'D');
        assert.ok(d.modRevision > l.revision);
      }));

    it('TTL: a key with ttlSeconds disappears (with a delete event); an update without TTL keeps it', () =>
      withSubject(async ({ store, prefix, elapse }) => {
        const start = await store.list(prefix);
        const a = await store.create(`${prefix}a`, 'A', { ttlSeconds: 2 });
        assert.ok(a.lease !== undefined && a.lease !== '', 'the key is attached to a lease');
        assert.equal((await store.get(`${prefix}a`))?.lease, a.lease);
        const b = await store.create(`${prefix}b`, 'B', { ttlSeconds: 2 });
        const b2 = await store.update(`${prefix}b`, 'B2', b.modRevision);
        assert.equal(b2.lease, undefined);
        const ac = new AbortController();
        const it = store.watch(prefix, start.revision + 1, ac.signal)[Symbol.asyncIterator]();
        try {
          await elapse(1000);
          assert.ok(await store.get(`${prefix}a`), 'still there before the TTL');
          await elapse(1500);
          await eventually('the TTL key is gone', async () => (await store.get(`${prefix}a`)) === undefined, timeoutMs);
          const events = await take(it, 4, timeoutMs);
          assert.deepEqual(
            events.map((e) => show(e, prefix).replace(/@\d+$/, '')),
            ['put a=A', 'put b=B', 'put b=B2', 'delete a'],
          );
          const last = events[3] as WatchEvent;
          assert.ok(last.revision > b2.modRevision);
          assert.equal((await store.get(`${prefix}b`))?.value, 'B2', 'the key updated without TTL stays');
        } finally {
          ac.abort();
          await it.return?.();
        }
      }));

    it('watch: onEstablished is called once, when the store confirmed the watch', () =>
      withSubject(async ({ store, prefix }) => {
        const start = await store.list(prefix);
        const ac = new AbortController();
        let established = 0;
        const it = store.watch(prefix, start.revision + 1, ac.signal, { onEstablished: () => (established += 1) })[Symbol.asyncIterator]();
        try {
          const next = it.next();
          await eventually('the watch to be established', async () => established === 1, timeoutMs);
          await store.create(`${prefix}e`, '1');
          assert.equal(show(((await next) as IteratorYieldResult<WatchEvent>).value, prefix).replace(/@\d+$/, ''), 'put e=1');
          assert.equal(established, 1);
        } finally {
          ac.abort();
          await it.return?.();
        }
      }));

    it('watch: every change under the prefix, in order, with the revisions the writes returned', () =>
      withSubject(async ({ store, prefix }) => {
        const start = await store.list(prefix);
        const ac = new AbortController();
        const it = store.watch(prefix, start.revision + 1, ac.signal)[Symbol.asyncIterator]();
        const a1 = await store.create(`${prefix}a`, '1');
        const b1 = await store.create(`${prefix}b`, '1');
        await store.create(`${prefix.slice(0, -1)}-sibling/x`, 'not mine');
        const a2 = await store.update(`${prefix}a`, '2', a1.modRevision);
        await store.delete(`${prefix}b`, b1.modRevision);
        await store.delete(`${prefix}a`);
        const events = await take(it, 5, timeoutMs);
        const revs = events.map((e) => e.revision);
        assert.deepEqual(
          events.map((e) => show(e, prefix)),
          [
            `put a=1@${a1.modRevision}`,
            `put b=1@${b1.modRevision}`,
            `put a=2@${a2.modRevision}`,
            `delete b@${revs[3]}`,
            `delete a@${revs[4]}`,
          ],
        );
        for (let i = 1; i < revs.length; i++) assert.ok((revs[i] as number) > (revs[i - 1] as number), 'strictly increasing');
        const put = events[2];
        assert.ok(put?.type === 'put');
        assert.deepEqual(put.kv, a2, 'the put event carries the stored KeyValue');
        ac.abort();
        const end = await within(it.next(), timeoutMs);
        assert.deepEqual(end, { done: true, value: undefined }, 'abort ends the watch');
      }));

    it('watch from an older revision replays history; from a compacted one throws Compacted', () =>
      withSubject(async ({ store, prefix, compact }) => {
        const start = await store.list(prefix);
        await store.create(`${prefix}a`, '1');
        const b = await store.create(`${prefix}b`, '1');
        await store.delete(`${prefix}a`);
        const ac = new AbortController();
        try {
          const replay = store.watch(prefix, b.modRevision, ac.signal)[Symbol.asyncIterator]();
          const events = await take(replay, 2, timeoutMs);
          assert.deepEqual(
            events.map((e) => show(e, prefix).replace(/@\d+$/, '')),
            ['put b=1', 'delete a'],
          );
          await replay.return?.();
          const now = await store.list(prefix);
          await compact(now.revision);
          await rejectsWith('Compacted', async () => {
            const it = store.watch(prefix, start.revision + 1, ac.signal)[Symbol.asyncIterator]();
            try {
              await take(it, 1, timeoutMs);
            } finally {
              await it.return?.();
            }
          });
          // Watching from after the compaction point works.
          const it2 = store.watch(prefix, now.revision + 1, ac.signal)[Symbol.asyncIterator]();
          const c = await store.create(`${prefix}c`, '1');
          assert.deepEqual((await take(it2, 1, timeoutMs)).map((e) => show(e, prefix)), [`put c=1@${c.modRevision}`]);
          await it2.return?.();
        } finally {
          ac.abort();
        }
      }));

    it('watch: an aborted signal ends a waiting watch promptly', () =>
      withSubject(async ({ store, prefix }) => {
        const ac = new AbortController();
        const { revision } = await store.list(prefix);
        const it = store.watch(prefix, revision + 1, ac.signal)[Symbol.asyncIterator]();
        const pending = it.next();
        await new Promise((r) => setTimeout(r, 100));
        ac.abort();
        const r = await within(pending, timeoutMs);
        assert.deepEqual(r, { done: true, value: undefined });
      }));

    it('listWatch: snapshot, then live events; abort ends it', () =>
      withSubject(async ({ store, prefix }) => {
        const a = await store.create(`${prefix}a`, '1');
        const ac = new AbortController();
        const it = listWatch(store, prefix, ac.signal)[Symbol.asyncIterator]();
        const [snap] = await take(it, 1, timeoutMs);
        assert.ok(snap?.kind === 'snapshot');
        assert.deepEqual(snap.items, [a]);
        const b = await store.create(`${prefix}b`, '1');
        const [ev] = await take(it, 1, timeoutMs);
        assert.deepEqual(ev, { kind: 'event', event: { type: 'put', kv: b, revision: b.modRevision } });
        ac.abort();
        const end = await within(it.next(), timeoutMs);
        assert.deepEqual(end, { done: true, value: undefined });
      }));

    it('listWatch: a watch cut off resumes from the last revision without losing or repeating changes', () =>
      withSubject(async ({ store: inner, prefix }) => {
        const cut = interruptible(inner);
        const store = cut.store;
        await store.create(`${prefix}a`, '1');
        const during: string[] = [];
        const sleeps: number[] = [];
        const ac = new AbortController();
        const sleep = async (ms: number): Promise<void> => {
          sleeps.push(ms);
          // While "disconnected", other writers change things.
          const c = await store.create(`${prefix}c${sleeps.length}`, 'x');
          during.push(`put c${sleeps.length}=x@${c.modRevision}`);
          const a = await store.get(`${prefix}a`);
          const a2 = await store.update(`${prefix}a`, String(sleeps.length + 1), a?.modRevision ?? 0);
          during.push(`put a=${a2.value}@${a2.modRevision}`);
        };
        const it = listWatch(store, prefix, ac.signal, { sleep, initialBackoffMs: 10, random: () => 0.999999 })[Symbol.asyncIterator]();
        try {
          assert.equal((await take(it, 1, timeoutMs))[0]?.kind, 'snapshot');
          const b = await store.create(`${prefix}b`, '1');
          const [first] = await take(it, 1, timeoutMs);
          assert.ok(first?.kind === 'event');
          assert.equal(show(first.event, prefix), `put b=1@${b.modRevision}`);
          cut.interrupt();
          const got = await take(it, 2, timeoutMs);
          assert.deepEqual(sleeps, [10]);
          const shown = got.map((u) => (u.kind === 'event' && !u.synthetic ? show(u.event, prefix) : JSON.stringify(u)));
          assert.deepEqual(shown, during);
          const d = await store.create(`${prefix}d`, '1');
          const [live] = await take(it, 1, timeoutMs);
          assert.ok(live?.kind === 'event');
          assert.equal(show(live.event, prefix), `put d=1@${d.modRevision}`);
          assert.equal(cut.watches(), 2, 'one watch before the cut, one after');
        } finally {
          ac.abort();
          await it.return?.();
        }
      }));

    it('listWatch: compaction while cut off -> re-list and exactly the missing changes, as synthetic events', () =>
      withSubject(async ({ store: inner, prefix, compact }) => {
        const cut = interruptible(inner);
        const store = cut.store;
        const a = await store.create(`${prefix}a`, '1');
        const b = await store.create(`${prefix}b`, '1');
        await store.create(`${prefix}c`, 'same');
        const ac = new AbortController();
        let relistRevision = 0;
        const sleep = async (): Promise<void> => {
          await store.update(`${prefix}a`, '2', a.modRevision);
          await store.delete(`${prefix}b`, b.modRevision);
          await store.create(`${prefix}e`, '1');
          const f = await store.create(`${prefix}f`, 'transient');
          await store.delete(`${prefix}f`, f.modRevision);
          const { revision } = await store.list(prefix);
          await compact(revision);
          relistRevision = revision;
        };
        const resyncs: { revision: number; changes: number }[] = [];
        const it = listWatch(store, prefix, ac.signal, { sleep, onResync: (r) => resyncs.push(r) })[Symbol.asyncIterator]();
        try {
          const [snap] = await take(it, 1, timeoutMs);
          assert.ok(snap?.kind === 'snapshot');
          assert.deepEqual(snap.items.map((kv) => kv.key.slice(prefix.length)), ['a', 'b', 'c']);
          const d = await store.create(`${prefix}d`, '1');
          assert.equal((await take(it, 1, timeoutMs)).length, 1);
          cut.interrupt();
          const got: ListWatchUpdate[] = await take(it, 3, timeoutMs);
          const e = await store.get(`${prefix}e`);
          const a2 = await store.get(`${prefix}a`);
          assert.ok(e && a2);
          assert.deepEqual(got, [
            { kind: 'event', event: { type: 'delete', key: `${prefix}b`, revision: relistRevision }, synthetic: true },
            { kind: 'event', event: { type: 'put', kv: a2, revision: relistRevision }, synthetic: true },
            { kind: 'event', event: { type: 'put', kv: e, revision: relistRevision }, synthetic: true },
          ]);
          assert.deepEqual(resyncs, [{ revision: relistRevision, changes: 3 }]);
          // Live again after the re-list, and `d` (seen before the cut) was not repeated.
          await store.update(`${prefix}d`, '2', d.modRevision);
          const [live] = await take(it, 1, timeoutMs);
          assert.ok(live?.kind === 'event' && !live.synthetic);
          assert.equal(show(live.event, prefix).replace(/@\d+$/, ''), 'put d=2');
        } finally {
          ac.abort();
          await it.return?.();
        }
      }));
  });
}
