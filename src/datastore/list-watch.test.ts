import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { show, take } from './datastore-contract.js';
import { diffSnapshot, listWatch, type ListWatchUpdate } from './list-watch.js';
import { MemoryDatastore } from './memory/memory-store.js';
import { DatastoreError, type Datastore, type KeyValue, type WatchEvent } from './types.js';

const P = '/twill/subnets/';

function label(u: ListWatchUpdate): string {
  if (u.kind === 'snapshot') return `snapshot[${u.items.map((kv) => kv.key.slice(P.length)).join(',')}]@${u.revision}`;
  return `${u.synthetic ? '~' : ''}${show(u.event, P)}`;
}

/** Applies updates to a map the way a consumer would. */
function fold(updates: ListWatchUpdate[], into = new Map<string, string>()): Map<string, string> {
  for (const u of updates) {
    if (u.kind === 'snapshot') {
      into.clear();
      for (const kv of u.items) into.set(kv.key, kv.value);
    } else if (u.event.type === 'put') into.set(u.event.kv.key, u.event.kv.value);
    else into.delete(u.event.key);
  }
  return into;
}

async function storeState(s: Datastore): Promise<Map<string, string>> {
  return new Map((await s.list(P)).items.map((kv) => [kv.key, kv.value]));
}

describe('diffSnapshot', () => {
  const kv = (key: string, modRevision: number): KeyValue => ({ key, value: `v${modRevision}`, modRevision });
  it('yields deletes then puts of new or changed keys, in key order, at the list revision', () => {
    const known = new Map([kv('/b', 2), kv('/a', 3), kv('/c', 4), kv('/z', 5)].map((x) => [x.key, x]));
    const next = [kv('/a', 3), kv('/c', 9), kv('/d', 8)];
    assert.deepEqual(diffSnapshot(known, next, 10), [
      { type: 'delete', key: '/b', revision: 10 },
      { type: 'delete', key: '/z', revision: 10 },
      { type: 'put', kv: kv('/c', 9), revision: 10 },
      { type: 'put', kv: kv('/d', 8), revision: 10 },
    ]);
    assert.deepEqual(diffSnapshot(known, [...known.values()], 10), []);
  });
});

describe('listWatch on MemoryDatastore', () => {
  it('outage: capped exponential backoff, then resumes from the last revision; nothing lost or repeated', async () => {
    const s = new MemoryDatastore();
    await s.create(`${P}a`, '1');
    const ac = new AbortController();
    const delays: number[] = [];
    let outageWrites = 0;
    const sleep = async (ms: number, signal: AbortSignal): Promise<void> => {
      delays.push(ms);
      if (delays.length < 5) return; // still down: the next try fails again
      if (delays.length > 5) return new Promise((resolve) => signal.addEventListener('abort', () => resolve()));
      // The "server" took writes from other clients during the outage, then comes back.
      s.setUnavailable(false);
      const a = await s.get(`${P}a`);
      await s.update(`${P}a`, '2', a?.modRevision ?? 0);
      await s.create(`${P}c`, '1');
      await s.delete(`${P}b`);
      outageWrites = 3;
    };
    const updates: ListWatchUpdate[] = [];
    const it = listWatch(s, P, ac.signal, { sleep, initialBackoffMs: 10, maxBackoffMs: 50, random: () => 0.999999 })[Symbol.asyncIterator]();
    updates.push(...(await take(it, 1, 1000)));
    await s.create(`${P}b`, '1');
    updates.push(...(await take(it, 1, 1000)));
    s.setUnavailable(true);
    updates.push(...(await take(it, 3, 1000)));
    assert.equal(outageWrites, 3);
    assert.deepEqual(delays, [10, 20, 40, 50, 50]);
    await s.create(`${P}d`, '1');
    updates.push(...(await take(it, 1, 1000)));
    assert.deepEqual(updates.map(label), [
      'snapshot[a]@2',
      'put b=1@3',
      'put a=2@4',
      'put c=1@5',
      'delete b@6',
      'put d=1@7',
    ]);
    assert.deepEqual(fold(updates), await storeState(s));
    // The backoff starts over after a success.
    s.setUnavailable(true);
    const next = it.next();
    await new Promise((r) => setImmediate(r));
    assert.equal(delays.length, 6);
    assert.equal(delays[5], 10);
    ac.abort();
    s.setUnavailable(false);
    assert.deepEqual(await next, { done: true, value: undefined });
  });

  it('outage that outlives the history: resume hits Compacted, re-lists, yields exactly the difference', async () => {
    const s = new MemoryDatastore({ historyLimit: 3 });
    for (const k of ['a', 'b', 'c']) await s.create(`${P}${k}`, '1');
    const ac = new AbortController();
    const sleep = async (): Promise<void> => {
      s.setUnavailable(false);
      const a = await s.get(`${P}a`);
      await s.update(`${P}a`, '2', a?.modRevision ?? 0);
      await s.delete(`${P}b`);
      await s.create(`${P}x`, 'gone again');
      await s.delete(`${P}x`);
      await s.create(`${P}e`, '1');
      assert.ok(s.compactedRevision > 5, 'the history limit compacted past what the watcher saw');
    };
    const updates: ListWatchUpdate[] = [];
    const it = listWatch(s, P, ac.signal, { sleep })[Symbol.asyncIterator]();
    updates.push(...(await take(it, 1, 1000)));
    s.setUnavailable(true);
    updates.push(...(await take(it, 3, 1000)));
    assert.deepEqual(updates.map(label), ['snapshot[a,b,c]@4', '~delete b@9', '~put a=2@9', '~put e=1@9']);
    assert.deepEqual(fold(updates), await storeState(s));
    await s.create(`${P}f`, '1');
    assert.deepEqual((await take(it, 1, 1000)).map(label), ['put f=1@10']);
    ac.abort();
  });

  it('abort ends the iterable: while watching, while backing off, and before the first list', async () => {
    const s = new MemoryDatastore();
    const ac1 = new AbortController();
    const it1 = listWatch(s, P, ac1.signal)[Symbol.asyncIterator]();
    await take(it1, 1, 1000);
    const pending = it1.next();
    ac1.abort();
    assert.deepEqual(await pending, { done: true, value: undefined });
    assert.equal(s.watchCount, 0);

    s.setUnavailable(true);
    const ac2 = new AbortController();
    const t0 = Date.now();
    const it2 = listWatch(s, P, ac2.signal, { initialBackoffMs: 60_000 })[Symbol.asyncIterator]();
    const pending2 = it2.next();
    setTimeout(() => ac2.abort(), 20);
    assert.deepEqual(await pending2, { done: true, value: undefined });
    assert.ok(Date.now() - t0 < 5000, 'the default sleep honours the signal');

    const ac3 = new AbortController();
    ac3.abort();
    assert.deepEqual(await listWatch(s, P, ac3.signal)[Symbol.asyncIterator]().next(), { done: true, value: undefined });
  });

  it('breaking out of the loop releases the watch', async () => {
    const s = new MemoryDatastore();
    const ac = new AbortController();
    for await (const u of listWatch(s, P, ac.signal)) {
      assert.equal(u.kind, 'snapshot');
      break;
    }
    await s.create(`${P}a`, '1');
    const it = listWatch(s, P, ac.signal)[Symbol.asyncIterator]();
    await take(it, 1, 1000);
    await s.create(`${P}b`, '1');
    await take(it, 1, 1000);
    await it.return?.();
    assert.equal(s.watchCount, 0);
  });

  it('errors the store does not define (list and watch) are retried with backoff, then re-listed; the watch goes on', async () => {
    const s = new MemoryDatastore();
    await s.create(`${P}a`, '1');
    let listFailures = 2;
    let watchFailures = 1;
    const delays: number[] = [];
    const retries: string[] = [];
    const live: boolean[] = [];
    const flaky: Datastore = Object.assign(Object.create(s) as MemoryDatastore, {
      list: async (prefix: string) => {
        if (listFailures > 0) {
          listFailures -= 1;
          throw listFailures === 1 ? new DatastoreError('Conflict', 'weird') : new TypeError('store bug');
        }
        return s.list(prefix);
      },
      watch: (prefix: string, from: number, signal: AbortSignal, hooks?: { onEstablished?: () => void }) => {
        if (watchFailures > 0) {
          watchFailures -= 1;
          return (async function* () {
            hooks?.onEstablished?.();
            await s.create(`${P}b`, 'made while the watch broke');
            throw new RangeError('decoder bug');
          })();
        }
        return s.watch(prefix, from, signal, hooks);
      },
    });
    const ac = new AbortController();
    const it = listWatch(flaky, P, ac.signal, {
      sleep: async (ms) => void delays.push(ms),
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
      random: () => 0.999999,
      onRetry: (r) => retries.push(`${r.phase}:${r.error.name}:${r.attempt}`),
      onLive: (up) => live.push(up),
    })[Symbol.asyncIterator]();
    const got = await take(it, 2, 1000);
    assert.deepEqual(got.map(label), ['snapshot[a]@2', '~put b=made while the watch broke@3']);
    assert.deepEqual(retries, ['list:DatastoreError:1', 'list:TypeError:2', 'watch:RangeError:3']);
    assert.deepEqual(delays, [100, 200, 400]);
    await s.create(`${P}c`, '1');
    assert.deepEqual((await take(it, 1, 1000)).map(label), ['put c=1@4']);
    assert.deepEqual(live, [true, false, true]);
    ac.abort();
  });

  it('repeated compaction: the first re-list is immediate, the next ones back off (and the delays grow)', async () => {
    let lists = 0;
    const delays: number[] = [];
    const compacting: Datastore = {
      get: async () => undefined,
      list: async () => {
        lists += 1;
        return { items: [], revision: 10 * lists };
      },
      create: async () => assert.fail('unused'),
      update: async () => assert.fail('unused'),
      delete: async () => assert.fail('unused'),
      txn: async () => assert.fail('unused'),
      close: async () => undefined,
      async *watch(_prefix, from) {
        throw new DatastoreError('Compacted', `${from} is compacted`);
      },
    };
    const ac = new AbortController();
    const it = listWatch(compacting, P, ac.signal, {
      sleep: async (ms) => {
        delays.push(ms);
        if (delays.length >= 4) ac.abort();
      },
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
      random: () => 0.999999,
    })[Symbol.asyncIterator]();
    await take(it, 1, 1000);
    assert.deepEqual(await it.next(), { done: true, value: undefined });
    assert.deepEqual(delays, [100, 200, 400, 800]);
    assert.equal(lists, 5, 'snapshot, one immediate re-list, then one re-list per backoff');
  });

  it('onLive follows the watch: up once established, down during an outage, up again after it', async () => {
    const s = new MemoryDatastore();
    const live: boolean[] = [];
    const ac = new AbortController();
    let release: () => void = () => undefined;
    const it = listWatch(s, P, ac.signal, {
      sleep: () => new Promise<void>((r) => (release = r)),
      onLive: (up) => live.push(up),
    })[Symbol.asyncIterator]();
    await take(it, 1, 1000);
    const pending = it.next();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(live, [true]);
    s.setUnavailable(true);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(live, [true, false]);
    s.setUnavailable(false);
    release();
    await s.create(`${P}a`, '1');
    assert.equal(label(((await pending) as IteratorYieldResult<ListWatchUpdate>).value), 'put a=1@2');
    assert.deepEqual(live, [true, false, true]);
    ac.abort();
  });
});

describe('listWatch with several changes at one revision (one etcd transaction)', () => {
  it('a cut inside a revision resumes at that revision and skips what was delivered', async () => {
    const put = (key: string, revision: number): WatchEvent => ({
      type: 'put',
      kv: { key: `${P}${key}`, value: '1', modRevision: revision },
      revision,
    });
    const watchCalls: number[] = [];
    const scripted: Datastore = {
      get: async () => undefined,
      list: async () => ({ items: [], revision: 5 }),
      create: async () => assert.fail('unused'),
      update: async () => assert.fail('unused'),
      delete: async () => assert.fail('unused'),
      txn: async () => assert.fail('unused'),
      close: async () => undefined,
      async *watch(_prefix, from) {
        watchCalls.push(from);
        if (watchCalls.length === 1) {
          yield put('a', 6);
          throw new DatastoreError('Unavailable', 'cut');
        }
        yield put('a', 6);
        yield put('b', 6);
        yield put('c', 7);
        await new Promise(() => undefined);
      },
    };
    const ac = new AbortController();
    const it = listWatch(scripted, P, ac.signal, { sleep: async () => undefined })[Symbol.asyncIterator]();
    const got = await take(it, 4, 1000);
    assert.deepEqual(got.map(label), ['snapshot[]@5', 'put a=1@6', 'put b=1@6', 'put c=1@7']);
    assert.deepEqual(watchCalls, [6, 6]);
    ac.abort();
  });
});
