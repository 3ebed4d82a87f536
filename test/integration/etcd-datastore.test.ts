/**
 * EtcdDatastore against a real etcd (/usr/bin/etcd, started here on loopback, killed by PID):
 * the shared Datastore contract, error mapping when etcd is unreachable, and listWatch across an
 * etcd outage (kill, ~5 s down, restart with the same data).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { datastoreContract, eventually, rejectsWith, show, take, within } from '../../src/datastore/datastore-contract.js';
import { EtcdDatastore } from '../../src/datastore/etcd/etcd-store.js';
import { listWatch, type ListWatchRetry, type ListWatchUpdate } from '../../src/datastore/list-watch.js';
import { isDatastoreError } from '../../src/datastore/types.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { EtcdServer, freePort, makeTestPki } from './etcd-server.js';
import { must } from './harness.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('EtcdDatastore on a real etcd', () => {
  let server: EtcdServer | undefined;
  let n = 0;
  const stores: EtcdDatastore[] = [];
  const connect = (): EtcdDatastore => {
    assert.ok(server, 'etcd started');
    const store = new EtcdDatastore({ endpoints: [server.clientUrl], dialTimeoutMs: 2000, requestTimeoutMs: 2000 });
    stores.push(store);
    return store;
  };

  before(async () => {
    server = await EtcdServer.start('etcd-datastore');
  });
  after(async () => {
    for (const s of stores) await s.close();
    await server?.dispose();
  });

  datastoreContract(
    'EtcdDatastore',
    async () => {
      const store = connect();
      n += 1;
      return {
        store,
        prefix: `/contract/${process.pid}/${n}/`,
        elapse: sleep,
        compact: (revision) => store.compact(revision),
        dispose: () => store.close(),
      };
    },
    { timeoutMs: 10_000 },
  );

  it('KeyValue.lease is the etcd lease id; failed CAS writes, renewals and deletes leave no lease behind', async () => {
    const store = connect();
    const k = `/specific/${process.pid}/lease`;
    const leases = (): number => {
      assert.ok(server);
      const out = must(['etcdctl', `--endpoints=${server.clientUrl}`, 'lease', 'list']);
      return Number(/found (\d+) leases/.exec(out)?.[1] ?? NaN);
    };
    const base = leases(); // earlier tests may have left keys with long TTLs
    assert.ok(Number.isInteger(base));
    const a = await store.create(k, '1', { ttlSeconds: 30 });
    assert.match(a.lease ?? '', /^[0-9]+$/);
    await rejectsWith('Conflict', () => store.create(k, '2', { ttlSeconds: 30 }));
    await rejectsWith('Conflict', () => store.update(k, '2', a.modRevision - 1, { ttlSeconds: 30 }));
    const renewed = await store.update(k, '2', a.modRevision, { ttlSeconds: 30 });
    assert.notEqual(renewed.lease, a.lease);
    await eventually('one lease: the renewal revoked the first one', async () => leases() === base + 1, 5000);
    await store.delete(k);
    await eventually('no lease after the delete', async () => leases() === base, 5000);
  });

  it('TLS with client certificates: the store connects with CA/cert/key buffers; without a client cert it fails', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'twill-etcd-pki-'));
    let tlsServer: EtcdServer | undefined;
    try {
      const pki = makeTestPki(dir);
      tlsServer = await EtcdServer.start('etcd-tls', { tls: pki });
      assert.match(tlsServer.clientUrl, /^https:/);
      const tls = { ca: readFileSync(pki.caFile), cert: readFileSync(pki.clientCertFile), key: readFileSync(pki.clientKeyFile) };
      const store = new EtcdDatastore({ endpoints: [tlsServer.clientUrl], tls, requestTimeoutMs: 3000 });
      stores.push(store);
      const kv = await store.create('/tls/a', '1');
      assert.deepEqual(await store.get('/tls/a'), kv);
      const ac = new AbortController();
      const it = store.watch('/tls/', kv.modRevision, ac.signal)[Symbol.asyncIterator]();
      assert.deepEqual((await take(it, 1, 10_000)).map((e) => show(e, '/tls/')), [`put a=1@${kv.modRevision}`]);
      ac.abort();
      await it.return?.();
      const anonymous = new EtcdDatastore({ endpoints: [tlsServer.clientUrl], tls: { ca: tls.ca }, requestTimeoutMs: 3000 });
      stores.push(anonymous);
      await assert.rejects(() => anonymous.get('/tls/a'));
    } finally {
      await tlsServer?.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unreachable etcd is Unavailable, quickly, for every operation', async () => {
    const deadUrl = `http://127.0.0.1:${await freePort()}`; // nothing listens there
    const store = new EtcdDatastore({ endpoints: [deadUrl], dialTimeoutMs: 1000, requestTimeoutMs: 1000 });
    stores.push(store);
    const t0 = Date.now();
    await rejectsWith('Unavailable', () => store.get('/x'));
    await rejectsWith('Unavailable', () => store.list('/x'));
    await rejectsWith('Unavailable', () => store.create('/x', '1'));
    await rejectsWith('Unavailable', () => store.create('/x', '1', { ttlSeconds: 5 }));
    await rejectsWith('Unavailable', () => store.update('/x', '1', 3));
    await rejectsWith('Unavailable', () => store.delete('/x'));
    await rejectsWith('Unavailable', () => store.watch('/x', 0, new AbortController().signal)[Symbol.asyncIterator]().next());
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  });

  it('etcd down ~5 s then back: listWatch resumes and delivers the changes made right after the restart', async () => {
    assert.ok(server);
    const watcherStore = connect();
    const writer = connect();
    const P = `/outage/${process.pid}/`;
    const label = (u: ListWatchUpdate): string =>
      u.kind === 'snapshot'
        ? `snapshot[${u.items.map((kv) => kv.key.slice(P.length)).join(',')}]`
        : `${u.synthetic ? '~' : ''}${show(u.event, P)}`;
    const a = await writer.create(`${P}a`, '1');
    const retries: ListWatchRetry[] = [];
    const ac = new AbortController();
    const it = listWatch(watcherStore, P, ac.signal, {
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
      onRetry: (r) => retries.push(r),
    })[Symbol.asyncIterator]();
    try {
      assert.deepEqual((await take(it, 1, 10_000)).map(label), ['snapshot[a]']);
      const b = await writer.create(`${P}b`, '1');
      assert.deepEqual((await take(it, 1, 10_000)).map(label), [`put b=1@${b.modRevision}`]);

      const pending = it.next(); // the consumer keeps waiting through the outage
      await server.stop();
      const down = Date.now();
      await rejectsWith('Unavailable', () => writer.get(`${P}a`));
      await sleep(5000 - (Date.now() - down));
      assert.ok(retries.length >= 3, `listWatch kept retrying while etcd was down (${retries.length} retries)`);
      assert.ok(retries.every((r) => isDatastoreError(r.error, 'Unavailable') && r.delayMs <= 1000));

      await server.start();
      const up = Date.now();
      const expected: string[] = [];
      const c = await writer.create(`${P}c`, '1');
      expected.push(`put c=1@${c.modRevision}`);
      const a2 = await writer.update(`${P}a`, '2', a.modRevision);
      expected.push(`put a=2@${a2.modRevision}`);
      await writer.delete(`${P}b`, b.modRevision);
      const afterRestart = await writer.list(P);
      expected.push(`delete b@${afterRestart.revision}`);

      const first = await within(pending, 15_000);
      assert.notEqual(first, 'timeout', 'no change delivered within 15 s of the restart');
      const got = [first as IteratorResult<ListWatchUpdate>].map((r) => (r.done ? 'done' : label(r.value)));
      got.push(...(await take(it, 2, 10_000)).map(label));
      assert.deepEqual(got, expected, 'every change after the restart exactly once, in order');
      const delivered = Date.now() - up;
      assert.ok(delivered < 15_000, `delivered ${delivered} ms after the restart`);

      // And it keeps following afterwards.
      const d = await writer.create(`${P}d`, '1');
      assert.deepEqual((await take(it, 1, 10_000)).map(label), [`put d=1@${d.modRevision}`]);
    } catch (e) {
      if (server.running) throw e;
      throw new Error(`${String(e)}\netcd log:\n${server.tail()}`, { cause: e });
    } finally {
      ac.abort();
      await it.return?.();
      if (!server.running) await server.start();
    }
  });
});
