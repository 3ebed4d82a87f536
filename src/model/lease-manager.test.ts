import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LEASE_RENEW_MARGIN_SECONDS, LEASE_TTL_SECONDS, SUBNETS_PREFIX } from '../common/constants.js';
import { MemoryDatastore } from '../datastore/memory/memory-store.js';
import { DatastoreError, isDatastoreError } from '../datastore/types.js';
import { formatCidr } from '../net/ipv4.js';
import { validateClusterConfig, type ClusterConfig } from './cluster-config.js';
import { isLeaseError, LeaseManager, type LeaseManagerOptions, type NodeLeaseRequest } from './lease-manager.js';
import { IPV6_SUBNETS_PREFIX, ipv6SubnetKey, leaseKey, parseIpv6Reservation, parseLease, renderLeaseValue, type InvalidLease, type Lease } from './lease.js';
import { formatPrefix } from '../net/ip.js';

function config(raw: Record<string, unknown>): ClusterConfig {
  const r = validateClusterConfig(raw);
  assert.ok(r.ok, r.ok ? '' : r.errors.join('; '));
  return r.config;
}

const CFG16 = config({ Network: '10.244.0.0/16', SubnetLen: 24 });
const CFG22 = config({ Network: '10.244.0.0/22', SubnetLen: 24 });

class FakeClock {
  constructor(public ms = Date.parse('2030-01-01T00:00:00.000Z')) {}
  now = (): number => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

/** Deterministic [0,1) source (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function node(name: string, n = 1): NodeLeaseRequest {
  return { name, publicIP: `192.0.2.${n}`, backendType: 'vxlan', backendData: { vtepMAC: `0e:00:00:00:00:${n.toString(16).padStart(2, '0')}` } };
}

function setup(cfg = CFG16, extra: Partial<LeaseManagerOptions> = {}) {
  const clock = new FakeClock();
  const store = new MemoryDatastore({ clock });
  const manager = (seed = 1, more: Partial<LeaseManagerOptions> = {}): LeaseManager =>
    new LeaseManager({ store, config: cfg, now: clock.now, random: seeded(seed), ...extra, ...more });
  return { clock, store, manager };
}

async function stored(store: MemoryDatastore, lease: Lease): Promise<Lease> {
  const kv = await store.get(lease.key);
  assert.ok(kv, `${lease.key} missing`);
  const r = parseLease(kv);
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.lease;
}

describe('LeaseManager.acquire', () => {
  it('creates a lease with TTL and expiresAt, and the same node keeps its subnet across restarts', async () => {
    const { clock, store, manager } = setup();
    const first = await manager(1).acquire(node('node-a'));
    assert.equal(first.subnet.prefix, 24);
    assert.equal(first.expiresAt, clock.ms + LEASE_TTL_SECONDS * 1000);
    const kv = await store.get(first.key);
    assert.ok(kv?.lease, 'key carries a store TTL lease');
    assert.deepEqual(await stored(store, first), first);

    clock.advance(600);
    // a "restart": a new manager with another random seed, and a new public IP / VTEP MAC
    const again = await manager(99).acquire({ ...node('node-a', 9) });
    assert.equal(formatCidr(again.subnet), formatCidr(first.subnet));
    assert.equal(again.publicIP, '192.0.2.9');
    assert.equal(again.expiresAt, clock.ms + LEASE_TTL_SECONDS * 1000);
    assert.ok(again.modRevision > first.modRevision);
    assert.deepEqual(await stored(store, again), again);
    assert.equal((await store.list(SUBNETS_PREFIX)).items.length, 1);
  });

  it('re-takes its own lease even after it expired, if nobody reclaimed the key', async () => {
    const { clock, store, manager } = setup();
    const old = { ...node('node-a'), subnet: { network: CFG16.subnetMin + 5 * 256, prefix: 24 } };
    const key = leaseKey(old.subnet);
    await store.create(key, renderLeaseValue({ ...old, nodeName: 'node-a', expiresAt: clock.ms - 1000 }));
    const l = await manager().acquire(node('node-a'));
    assert.equal(l.key, key);
  });

  it('two managers racing on one store never get the same subnet (many rounds)', async () => {
    let conflicts = 0;
    for (let round = 0; round < 40; round++) {
      const { store, manager } = setup(round % 2 === 0 ? CFG16 : config({ Network: '10.244.0.0/21', SubnetLen: 24 }));
      const txn = store.txn.bind(store);
      store.txn = async (...args) => {
        try {
          return await txn(...args);
        } catch (e) {
          if (isDatastoreError(e, 'Conflict')) conflicts += 1;
          throw e;
        }
      };
      const names = Array.from({ length: round % 2 === 0 ? 12 : 7 }, (_, i) => `n${i}`);
      // every node gets its own manager; all with the same seed, so they start at the same candidate
      const leases = await Promise.all(names.map((n, i) => manager(round).acquire(node(n, i + 1))));
      const subnets = leases.map((l) => formatCidr(l.subnet));
      assert.equal(new Set(subnets).size, names.length, `round ${round}: ${subnets.join(' ')}`);
      const { items } = await store.list(SUBNETS_PREFIX);
      assert.equal(items.length, names.length);
      for (const l of leases) assert.deepEqual(await stored(store, l), l);
    }
    assert.ok(conflicts > 0, 'the managers really raced (a create txn returned Conflict)');
  });

  it('reclaims an expired lease of another node when no subnet is free (key still present)', async () => {
    const { clock, store, manager } = setup(CFG22);
    const m = manager();
    const a = await m.acquire(node('a', 1));
    const b = await m.acquire(node('b', 2));
    const c = await m.acquire(node('c', 3));
    // make b's lease expired by its expiresAt while the store keeps the key (e.g. another agent's clock)
    const kvB = await store.get(b.key);
    assert.ok(kvB);
    await store.update(b.key, renderLeaseValue({ ...b, expiresAt: clock.ms - 1 }), kvB.modRevision);
    const d = await m.acquire(node('d', 4));
    assert.equal(d.key, b.key);
    assert.equal((await stored(store, d)).nodeName, 'd');
    // b comes back: its subnet is gone, nothing else is free
    await assert.rejects(m.acquire(node('b', 2)), (e) => isLeaseError(e, 'SubnetsExhausted'));
    assert.deepEqual(
      [a, c, d].map((l) => l.nodeName),
      ['a', 'c', 'd'],
    );
  });

  it('prefers a never-used subnet over reclaiming an expired one', async () => {
    const { clock, store, manager } = setup(CFG22);
    const m = manager();
    const a = await m.acquire(node('a', 1));
    const kv = await store.get(a.key);
    assert.ok(kv);
    await store.update(a.key, renderLeaseValue({ ...a, expiresAt: clock.ms - 1 }), kv.modRevision);
    const b = await m.acquire(node('b', 2));
    assert.notEqual(b.key, a.key);
  });

  it('racing reclaimers of one expired lease: exactly one wins, the other gets SubnetsExhausted', async () => {
    const { clock, store, manager } = setup(CFG22);
    const m = manager();
    const held = await Promise.all(['a', 'b', 'c'].map((n, i) => m.acquire(node(n, i + 1))));
    const victim = held[1] as Lease;
    const kv = await store.get(victim.key);
    assert.ok(kv);
    await store.update(victim.key, renderLeaseValue({ ...victim, expiresAt: clock.ms - 1 }), kv.modRevision);
    const results = await Promise.allSettled([manager(5).acquire(node('x', 7)), manager(6).acquire(node('y', 8))]);
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    assert.equal(won[0]?.status === 'fulfilled' && won[0].value.key, victim.key);
    const lost = results.find((r) => r.status === 'rejected');
    assert.ok(lost && isLeaseError(lost.reason, 'SubnetsExhausted'));
  });

  it('keys that the store expired (TTL) are free again', async () => {
    const { clock, store, manager } = setup(CFG22, { ttlSeconds: 60 });
    const m = manager();
    for (const n of ['a', 'b', 'c']) await m.acquire(node(n));
    await assert.rejects(m.acquire(node('d')), (e) => isLeaseError(e, 'SubnetsExhausted'));
    clock.advance(61);
    const d = await m.acquire(node('d'));
    assert.equal((await store.list(SUBNETS_PREFIX)).items.length, 1);
    assert.equal(d.nodeName, 'd');
  });

  it('exhaustion: a /22 of /24s holds 3 leases (first subnet skipped), then a typed error', async () => {
    const { manager } = setup(CFG22);
    const m = manager();
    const got = [];
    for (const n of ['a', 'b', 'c']) got.push(formatCidr((await m.acquire(node(n))).subnet));
    assert.deepEqual(got.sort(), ['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24']);
    await assert.rejects(m.acquire(node('d')), (e: unknown) => {
      assert.ok(isLeaseError(e, 'SubnetsExhausted'));
      assert.equal(
        e.message,
        'no free subnet for node d: all 3 /24 subnets of 10.244.0.0/22 are leased (widen Network, SubnetMin/SubnetMax or lower SubnetLen)',
      );
      return true;
    });
  });

  it('reports invalid records once and ignores them; their subnets stay occupied', async () => {
    const { store, manager } = setup(CFG22);
    await store.create(`${SUBNETS_PREFIX}10.244.1.0-24`, 'garbage');
    await store.create(`${SUBNETS_PREFIX}not-a-subnet`, '{}');
    await store.create(`${SUBNETS_PREFIX}10.244.2.0-24`, JSON.stringify({ subnet: '10.244.2.0/24', nodeName: 'x' }));
    const seen: InvalidLease[] = [];
    const m = manager(1, { onInvalid: (i) => seen.push(i) });
    const a = await m.acquire(node('a'));
    assert.equal(formatCidr(a.subnet), '10.244.3.0/24');
    assert.deepEqual(seen.map((i) => i.key).sort(), [
      `${SUBNETS_PREFIX}10.244.1.0-24`,
      `${SUBNETS_PREFIX}10.244.2.0-24`,
      `${SUBNETS_PREFIX}not-a-subnet`,
    ]);
    await assert.rejects(m.acquire(node('b')), (e) => isLeaseError(e, 'SubnetsExhausted'));
    assert.equal((await store.get(`${SUBNETS_PREFIX}10.244.1.0-24`))?.value, 'garbage');
    const snap = await m.list();
    assert.equal(snap.leases.length, 1);
    assert.equal(snap.invalid.length, 3);
  });

  it('drops stale leases of the same node from an older config', async () => {
    const { clock, store } = setup();
    const oldCfg = config({ Network: '10.244.0.0/16', SubnetLen: 25 });
    const old = await new LeaseManager({ store, config: oldCfg, now: clock.now, random: seeded(3) }).acquire(node('a'));
    const cur = await new LeaseManager({ store, config: CFG16, now: clock.now, random: seeded(3) }).acquire(node('a'));
    assert.equal(cur.subnet.prefix, 24);
    assert.equal(await store.get(old.key), undefined);
  });

  it('propagates Unavailable', async () => {
    const { store, manager } = setup();
    store.setUnavailable(true);
    await assert.rejects(manager().acquire(node('a')), (e) => e instanceof DatastoreError && e.kind === 'Unavailable');
  });
});

describe('LeaseManager.renew / renewDueAt / release', () => {
  it('renew extends expiry and the store TTL', async () => {
    const { clock, store, manager } = setup(CFG16, { ttlSeconds: 3600 });
    const m = manager();
    const l = await m.acquire(node('a'));
    clock.advance(3000);
    const r = await m.renew(l);
    assert.equal(r.expiresAt, clock.ms + 3600 * 1000);
    assert.ok(r.modRevision > l.modRevision);
    assert.deepEqual(await stored(store, r), r);
    clock.advance(3000); // past the first expiry, before the renewed one
    assert.ok(await store.get(l.key), 'store TTL was extended too');
  });

  it('renewDueAt = expiresAt - LEASE_RENEW_MARGIN_SECONDS (capped at half the TTL)', async () => {
    const { manager } = setup();
    const l = await manager().acquire(node('a'));
    assert.equal(manager().renewDueAt(l), l.expiresAt - LEASE_RENEW_MARGIN_SECONDS * 1000);
    assert.equal(manager(1, { ttlSeconds: 60 }).renewDueAt(l), l.expiresAt - 30 * 1000);
  });

  it('renew with a stale revision of its own lease succeeds; of a lease now owned by another node fails LeaseLost', async () => {
    const { clock, store, manager } = setup();
    const m = manager();
    const l = await m.acquire(node('a'));
    const again = await m.acquire(node('a')); // bumps the revision (e.g. a restart in between)
    const r = await m.renew(l);
    assert.ok(r.modRevision > again.modRevision);
    const kv = await store.get(l.key);
    assert.ok(kv);
    await store.update(l.key, renderLeaseValue({ ...r, nodeName: 'thief', expiresAt: clock.ms + 1000 }), kv.modRevision);
    await assert.rejects(m.renew(r), (e) => isLeaseError(e, 'LeaseLost'));
  });

  it('renew re-creates a key the store expired, unless another node took it', async () => {
    const { clock, store, manager } = setup(CFG16, { ttlSeconds: 60 });
    const m = manager();
    const l = await m.acquire(node('a'));
    clock.advance(61);
    const r = await m.renew(l);
    assert.equal(r.key, l.key);
    assert.deepEqual(await stored(store, r), r);
    clock.advance(61);
    await store.create(l.key, renderLeaseValue({ ...l, nodeName: 'other', expiresAt: clock.ms + 60000 }));
    await assert.rejects(m.renew(r), (e) => isLeaseError(e, 'LeaseLost'));
  });

  it('release deletes its own lease, is idempotent, and never deletes another node\'s', async () => {
    const { clock, store, manager } = setup();
    const m = manager();
    const l = await m.acquire(node('a'));
    await m.release(l);
    assert.equal(await store.get(l.key), undefined);
    await m.release(l);
    const l2 = await m.acquire(node('a'));
    const mine = await m.renew(l2);
    await m.release(l2); // stale revision, still ours: deleted
    assert.equal(await store.get(mine.key), undefined);
    const l3 = await m.acquire(node('a'));
    const kv = await store.get(l3.key);
    assert.ok(kv);
    await store.update(l3.key, renderLeaseValue({ ...l3, nodeName: 'b', expiresAt: clock.ms + 1000 }), kv.modRevision);
    await m.release(l3);
    assert.equal((await stored(store, l3)).nodeName, 'b');
  });
});

describe('LeaseManager node identity', () => {
  const host = (name: string, n: number, hostId: string | undefined): NodeLeaseRequest => ({ ...node(name, n), ...(hostId === undefined ? {} : { hostId }) });

  it('a second host with the same node name is refused (NodeNameConflict) and the first keeps its lease untouched', async () => {
    const { store, manager } = setup();
    const first = await manager(1).acquire(host('node-a', 1, 'host-one'));
    const before = await store.get(first.key);
    await assert.rejects(manager(2).acquire(host('node-a', 2, 'host-two')), (e: unknown) => {
      assert.ok(isLeaseError(e, 'NodeNameConflict'));
      assert.match(e.message, /node name node-a is held by another host: lease 10\.244\.\d+\.0\/24 of 192\.0\.2\.1 \(host id host-one\)/);
      assert.match(e.message, /this host is 192\.0\.2\.2 \(host id host-two\)/);
      return true;
    });
    assert.deepEqual(await store.get(first.key), before, 'the first lease is unchanged');
    assert.equal((await store.list(SUBNETS_PREFIX)).items.length, 1, 'nothing was written');
    // The first host renews as before.
    const renewed = await manager(1).renew(first);
    assert.equal(renewed.hostId, 'host-one');
  });

  it('the same host is accepted: same host id (new address), same address (id file lost), or a lease of an older agent', async () => {
    const { manager } = setup();
    const a = await manager(1).acquire(host('node-a', 1, 'host-one'));
    const moved = await manager(2).acquire(host('node-a', 7, 'host-one'));
    assert.equal(formatCidr(moved.subnet), formatCidr(a.subnet));
    assert.equal(moved.publicIP, '192.0.2.7');
    const rebooted = await manager(3).acquire(host('node-a', 7, 'host-new'));
    assert.equal(formatCidr(rebooted.subnet), formatCidr(a.subnet));
    assert.equal(rebooted.hostId, 'host-new');
    const legacy = await manager(4).acquire(host('node-b', 3, undefined));
    assert.equal(legacy.hostId, undefined);
    const upgraded = await manager(5).acquire(host('node-b', 3, 'host-three'));
    assert.equal(formatCidr(upgraded.subnet), formatCidr(legacy.subnet));
  });

  it('an expired lease of another host does not block the name', async () => {
    const { clock, store, manager } = setup(CFG16, { ttlSeconds: 60 });
    store.expire = () => 0; // the key outlives its expiry (etcd keeps it until the TTL sweep)
    const a = await manager(1).acquire(host('node-a', 1, 'host-one'));
    clock.advance(30);
    await assert.rejects(manager(2).acquire(host('node-a', 2, 'host-two')), (e: unknown) => isLeaseError(e, 'NodeNameConflict'));
    clock.advance(31);
    const b = await manager(2).acquire(host('node-a', 2, 'host-two'));
    assert.equal((await stored(store, b)).hostId, 'host-two');
    assert.equal(b.key, a.key, 'the expired key of the name is re-taken');
  });

  it('two hosts racing for one name from the same list: exactly one keeps it, the other is refused and leaves nothing', async () => {
    for (let round = 0; round < 20; round++) {
      const { store, manager } = setup();
      const results = await Promise.allSettled([manager(round * 2 + 1).acquire(host('node-a', 1, 'host-one')), manager(round * 2 + 2).acquire(host('node-a', 2, 'host-two'))]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const refused = results.filter((r) => r.status === 'rejected');
      assert.equal(won.length, 1, `round ${round}: ${JSON.stringify(results.map((r) => r.status))}`);
      assert.ok(refused.every((r) => isLeaseError(r.reason, 'NodeNameConflict')), String(refused[0]?.reason));
      const left = (await store.list(SUBNETS_PREFIX)).items;
      assert.equal(left.length, 1, `round ${round}: ${left.length} leases left`);
    }
  });

  it('renew with attributes publishes a new backend in place (same key, new revision)', async () => {
    const { store, manager } = setup();
    const m = manager(1);
    const a = await m.acquire(host('node-a', 1, 'host-one'));
    const b = await m.renew(a, { publicIP: a.publicIP, backendType: 'host-gw', backendData: {} });
    assert.equal(b.key, a.key);
    assert.ok(b.modRevision > a.modRevision);
    const s = await stored(store, b);
    assert.deepEqual([s.backendType, s.backendData, s.hostId], ['host-gw', {}, 'host-one']);
  });
});

describe('LeaseManager: dual stack', () => {
  const DUAL = config({ Network: '10.244.0.0/16', SubnetLen: 24, EnableIPv6: true, IPv6Network: 'fd00:10:244::/56' });
  const v6 = (l: Lease): string => (l.ipv6Subnet ? formatPrefix(l.ipv6Subnet) : '-');
  async function reservations(store: MemoryDatastore): Promise<Map<string, string>> {
    const { items } = await store.list(IPV6_SUBNETS_PREFIX);
    return new Map(items.map((kv) => [formatPrefix(parseIpv6Reservation(kv)?.subnet ?? { family: 6, network: 0n, prefix: 0 }), parseIpv6Reservation(kv)?.lease ?? '?']));
  }

  it('a new lease gets one subnet per family in one transaction (same revision, same TTL lease), and keeps both on restart', async () => {
    const { clock, store, manager } = setup(DUAL);
    const first = await manager(1).acquire({ ...node('node-a'), publicIPv6: '2001:db8::1' });
    assert.ok(first.ipv6Subnet);
    assert.equal(first.ipv6Subnet.prefix, 64);
    assert.equal(first.publicIPv6, '2001:db8::1');
    assert.deepEqual(await stored(store, first), first);
    const res = await store.get(ipv6SubnetKey(first.ipv6Subnet));
    const leaseKv = await store.get(first.key);
    assert.ok(res && leaseKv);
    assert.equal(res.modRevision, leaseKv.modRevision, 'written by one txn');
    assert.equal(res.lease, leaseKv.lease, 'one TTL lease: they expire together');
    assert.equal(parseIpv6Reservation(res)?.lease, first.key);
    clock.advance(600);
    const again = await manager(77).acquire(node('node-a', 9));
    assert.equal(formatCidr(again.subnet), formatCidr(first.subnet));
    assert.equal(v6(again), v6(first));
    assert.equal(again.publicIPv6, undefined, 'attributes are the new request');
    assert.deepEqual([...(await reservations(store))], [[v6(first), first.key]]);
    const renewed = await manager(5).renew(again, { publicIP: again.publicIP, backendType: 'vxlan', backendData: {}, publicIPv6: '2001:db8::9' });
    assert.equal(renewed.publicIPv6, '2001:db8::9');
    assert.equal((await store.get(ipv6SubnetKey(first.ipv6Subnet)))?.modRevision, renewed.modRevision, 'renew refreshes the reservation in the same txn');
    await manager(5).release(renewed);
    assert.equal((await store.list(SUBNETS_PREFIX)).items.length + (await store.list(IPV6_SUBNETS_PREFIX)).items.length, 0, 'release deletes both');
  });

  it('an existing v4-only lease (older agent, IPv6 enabled later) gains a v6 subnet by CAS on the same key, IPv4 unchanged', async () => {
    const { store, manager } = setup(CFG16);
    const old = await manager(1).acquire(node('node-a'));
    assert.equal(old.ipv6Subnet, undefined);
    const upgraded = await new LeaseManager({ store, config: DUAL, random: seeded(3), now: () => old.expiresAt - 1000 }).acquire(node('node-a'));
    assert.equal(upgraded.key, old.key);
    assert.equal(formatCidr(upgraded.subnet), formatCidr(old.subnet));
    assert.ok(upgraded.ipv6Subnet);
    assert.equal((await store.list(SUBNETS_PREFIX)).items.length, 1, 'no new key');
    assert.deepEqual([...(await reservations(store))], [[v6(upgraded), old.key]]);
  });

  it('an old v4-only lease record parses and keeps working', async () => {
    const kv = { key: '/twill/subnets/10.244.3.0-24', value: '{"subnet":"10.244.3.0/24","nodeName":"n","publicIP":"192.0.2.3","backendType":"vxlan","backendData":{},"expiresAt":"2030-01-01T00:00:00.000Z"}', modRevision: 4 };
    const r = parseLease(kv);
    assert.ok(r.ok);
    assert.equal(r.lease.ipv6Subnet, undefined);
    assert.equal(renderLeaseValue(r.lease), kv.value, 'rendered back byte for byte');
  });

  it('many nodes racing on the memory store: no duplicate v4 or v6 subnet, every lease has its own reservation', async () => {
    // A small IPv6 range (16 subnets) and the same seed for every manager: they collide on v6 all the time.
    const cfg = config({ Network: '10.244.0.0/16', SubnetLen: 24, EnableIPv6: true, IPv6Network: 'fd00:10:244::/60', IPv6SubnetMin: 'fd00:10:244::' });
    let v6Conflicts = 0;
    for (let round = 0; round < 20; round++) {
      const { store, manager } = setup(cfg);
      const txn = store.txn.bind(store);
      store.txn = async (ops, o) => {
        try {
          return await txn(ops, o);
        } catch (e) {
          if (isDatastoreError(e, 'Conflict') && e.message.includes(IPV6_SUBNETS_PREFIX)) v6Conflicts += 1;
          throw e;
        }
      };
      const names = Array.from({ length: 14 }, (_, i) => `n${i}`);
      // Odd rounds: distinct IPv4 picks but the same IPv6 pick (the v4 create succeeds, the v6 reservation races).
      const random = (i: number): (() => number) => {
        let calls = 0;
        const r = seeded(round * 100 + i);
        return () => (round % 2 === 0 ? seeded(round)() : calls++ % 2 === 0 ? r() : 0.5);
      };
      const leases = await Promise.all(names.map((n, i) => manager(round, { random: random(i) }).acquire(node(n, i + 1))));
      assert.equal(new Set(leases.map((l) => formatCidr(l.subnet))).size, names.length);
      assert.equal(new Set(leases.map(v6)).size, names.length, `round ${round}: ${leases.map(v6).join(' ')}`);
      const res = await reservations(store);
      assert.equal(res.size, names.length);
      for (const l of leases) {
        assert.equal(res.get(v6(l)), l.key);
        assert.deepEqual(await stored(store, l), l);
      }
    }
    assert.ok(v6Conflicts > 0, 'the managers really raced on an IPv6 reservation');
  });

  it('IPv6 exhausted: SubnetsExhausted, nothing written', async () => {
    const cfg = config({ Network: '10.244.0.0/16', SubnetLen: 24, EnableIPv6: true, IPv6Network: 'fd00:10:244::/63', IPv6SubnetMin: 'fd00:10:244::' });
    const { store, manager } = setup(cfg);
    await manager(1).acquire(node('a', 1));
    await manager(1).acquire(node('b', 2));
    await assert.rejects(manager(1).acquire(node('c', 3)), (e: unknown) => isLeaseError(e, 'SubnetsExhausted') && /IPv6/.test((e as Error).message));
    assert.equal((await store.list(SUBNETS_PREFIX)).items.length, 2);
  });

  it('a reservation held by another lease key is never taken: the txn conflicts and the node picks another', async () => {
    const cfg = config({ Network: '10.244.0.0/16', SubnetLen: 24, EnableIPv6: true, IPv6Network: 'fd00:10:244::/62', IPv6SubnetMin: 'fd00:10:244::' });
    const { store, manager } = setup(cfg);
    // A foreign reservation (e.g. from a lease whose record another agent is writing right now).
    await store.create(`${IPV6_SUBNETS_PREFIX}fd00-10-244-1---64`, JSON.stringify({ lease: '/twill/subnets/10.244.9.0-24', nodeName: 'x' }));
    const got = await Promise.all(['a', 'b', 'c'].map((n, i) => manager(i).acquire(node(n, i + 1))));
    assert.ok(!got.map(v6).includes('fd00:10:244:1::/64'));
    assert.equal(new Set(got.map(v6)).size, 3);
  });
});
