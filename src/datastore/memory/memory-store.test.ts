import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { datastoreContract, rejectsWith, show, take } from '../datastore-contract.js';
import { ManualClock, MemoryDatastore } from './memory-store.js';
import type { WatchEvent } from '../types.js';

datastoreContract(
  'MemoryDatastore',
  async () => {
    const clock = new ManualClock(1_000_000);
    const store = new MemoryDatastore({ clock });
    return {
      store,
      prefix: '/contract/',
      elapse: async (ms) => {
        clock.advance(ms);
        store.expire();
      },
      compact: async (revision) => store.compact(revision),
      dispose: () => store.close(),
    };
  },
  { timeoutMs: 2000 },
);

describe('MemoryDatastore specifics', () => {
  it('starts at revision 1 like a fresh etcd; each change takes the next revision', async () => {
    const s = new MemoryDatastore();
    assert.equal(s.currentRevision, 1);
    assert.equal((await s.list('/')).revision, 1);
    const a = await s.create('/a', 'x');
    assert.equal(a.modRevision, 2);
    await s.delete('/a');
    assert.equal(s.currentRevision, 3);
  });

  it('TTL keys expire lazily on the next operation, in expiry order, one revision each', async () => {
    const clock = new ManualClock();
    const s = new MemoryDatastore({ clock });
    await s.create('/late', '1', { ttlSeconds: 5 });
    await s.create('/early', '1', { ttlSeconds: 1 });
    const renewed = await s.create('/renewed', '1', { ttlSeconds: 1 });
    clock.advance(900);
    const r2 = await s.update('/renewed', '2', renewed.modRevision, { ttlSeconds: 1 });
    assert.notEqual(r2.lease, renewed.lease, 'a renewal is a new lease');
    const ac = new AbortController();
    const it = s.watch('/', s.currentRevision + 1, ac.signal)[Symbol.asyncIterator]();
    clock.advance(5000);
    assert.deepEqual((await s.list('/')).items, []);
    assert.deepEqual(
      (await take(it, 3, 1000)).map((e) => show(e, '/')),
      ['delete early@6', 'delete renewed@7', 'delete late@8'],
    );
    ac.abort();
    await rejectsWith('NotFound', () => s.delete('/late'));
  });

  it('sweepIntervalMs expires keys while a watch is open, without any other operation', async () => {
    const s = new MemoryDatastore({ sweepIntervalMs: 10 });
    const a = await s.create('/a', '1', { ttlSeconds: 0.05 });
    const ac = new AbortController();
    const it = s.watch('/', a.modRevision + 1, ac.signal)[Symbol.asyncIterator]();
    assert.deepEqual((await take(it, 1, 2000)).map((e) => e.type), ['delete']);
    ac.abort();
    await it.next();
    assert.equal(s.watchCount, 0, 'the watch was released');
  });

  it('rejects a non-positive TTL', async () => {
    const s = new MemoryDatastore();
    await assert.rejects(() => s.create('/a', '1', { ttlSeconds: 0 }), RangeError);
  });

  it('setUnavailable: operations throw Unavailable, open watches end with it; data survives', async () => {
    const s = new MemoryDatastore();
    const a = await s.create('/a', '1');
    const ac = new AbortController();
    const it = s.watch('/', a.modRevision + 1, ac.signal)[Symbol.asyncIterator]();
    const pending = it.next();
    await new Promise((r) => setImmediate(r));
    s.setUnavailable(true);
    await rejectsWith('Unavailable', () => pending);
    await rejectsWith('Unavailable', () => s.get('/a'));
    await rejectsWith('Unavailable', () => s.list('/'));
    await rejectsWith('Unavailable', () => s.create('/b', '1'));
    await rejectsWith('Unavailable', () => s.update('/a', '2', a.modRevision));
    await rejectsWith('Unavailable', () => s.delete('/a'));
    await rejectsWith('Unavailable', () => s.watch('/', 0, ac.signal)[Symbol.asyncIterator]().next());
    s.setUnavailable(false);
    assert.deepEqual(await s.get('/a'), a);
    assert.equal(s.watchCount, 0);
  });

  it('historyLimit trims the oldest events and compacts before them', async () => {
    const s = new MemoryDatastore({ historyLimit: 2 });
    for (let i = 0; i < 4; i++) await s.create(`/k${i}`, 'v'); // revisions 2..5
    assert.equal(s.compactedRevision, 4);
    const ac = new AbortController();
    await rejectsWith('Compacted', () => s.watch('/', 3, ac.signal)[Symbol.asyncIterator]().next());
    const events: WatchEvent[] = await take(s.watch('/', 4, ac.signal)[Symbol.asyncIterator](), 2, 1000);
    assert.deepEqual(events.map((e) => show(e, '/')), ['put k2=v@4', 'put k3=v@5']);
    ac.abort();
  });

  it('compact: a future revision is an error, an already compacted one is Compacted', async () => {
    const s = new MemoryDatastore();
    await s.create('/a', '1');
    assert.throws(() => s.compact(3), RangeError);
    s.compact(2);
    assert.throws(() => s.compact(2), (e: unknown) => e instanceof Error && 'kind' in e && e.kind === 'Compacted');
  });

  it('watch from 0 starts at the next change; a future revision waits for it', async () => {
    const s = new MemoryDatastore();
    await s.create('/a', '1');
    const ac = new AbortController();
    const now = s.watch('/', 0, ac.signal)[Symbol.asyncIterator]();
    const future = s.watch('/', 5, ac.signal)[Symbol.asyncIterator]();
    const first = now.next();
    const firstFuture = future.next();
    for (let i = 0; i < 4; i++) await s.create(`/k${i}`, 'v'); // revisions 3..6
    assert.equal(show((await first).value as WatchEvent, '/'), 'put k0=v@3');
    assert.equal(show((await firstFuture).value as WatchEvent, '/'), 'put k2=v@5');
    ac.abort();
  });

  it('close ends open watches and later operations throw Unavailable', async () => {
    const s = new MemoryDatastore();
    const ac = new AbortController();
    const it = s.watch('/', 0, ac.signal)[Symbol.asyncIterator]();
    const pending = it.next();
    await new Promise((r) => setImmediate(r));
    await s.close();
    assert.deepEqual(await pending, { done: true, value: undefined });
    await rejectsWith('Unavailable', () => s.get('/a'));
  });

  it('values handed out are copies: mutating them does not change the store', async () => {
    const s = new MemoryDatastore();
    const a = await s.create('/a', '1');
    a.value = 'mutated';
    const got = await s.get('/a');
    assert.equal(got?.value, '1');
    if (got) got.value = 'again';
    assert.equal((await s.list('/')).items[0]?.value, '1');
  });
});
