/**
 * Dual-stack lease allocation on a real etcd (/usr/bin/etcd on loopback, killed by PID): many agents
 * (one client each) racing for leases get distinct IPv4 and IPv6 subnets, each lease and its IPv6
 * reservation are one etcd transaction on one etcd lease (they expire together), a v4-only lease
 * gains its IPv6 subnet by CAS on the same key, and release removes both.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SUBNETS_PREFIX } from '../../src/common/constants.js';
import { EtcdDatastore } from '../../src/datastore/etcd/etcd-store.js';
import { parseClusterConfig, type ClusterConfig } from '../../src/model/cluster-config.js';
import { LeaseManager } from '../../src/model/lease-manager.js';
import { IPV6_SUBNETS_PREFIX, ipv6SubnetKey, parseIpv6Reservation, type Lease } from '../../src/model/lease.js';
import { formatPrefix } from '../../src/net/ip.js';
import { formatCidr } from '../../src/net/ipv4.js';
import { EtcdServer } from './etcd-server.js';

const cfg = (text: string): ClusterConfig => {
  const r = parseClusterConfig(text);
  assert.ok(r.ok, r.ok ? '' : r.errors.join('; '));
  return r.config;
};

describe('dual-stack leases on a real etcd', () => {
  let server: EtcdServer | undefined;
  const stores: EtcdDatastore[] = [];
  const connect = (): EtcdDatastore => {
    assert.ok(server, 'etcd started');
    const store = new EtcdDatastore({ endpoints: [server.clientUrl], dialTimeoutMs: 3000, requestTimeoutMs: 3000 });
    stores.push(store);
    return store;
  };
  before(async () => {
    server = await EtcdServer.start('etcd-leases');
  });
  after(async () => {
    for (const s of stores) await s.close();
    await server?.dispose();
  });

  it('16 agents racing: distinct v4 and v6 subnets, one reservation per lease on the lease\'s etcd lease; release removes both', async (t) => {
    // 16 IPv6 subnets for 16 nodes, and every agent's first IPv6 pick is the same one.
    const dual = cfg('{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/60","IPv6SubnetMin":"fd00:10:244::"}');
    const managers = Array.from({ length: 16 }, (_, i) => {
      let calls = 0;
      return new LeaseManager({ store: connect(), config: dual, random: () => (calls++ % 2 === 0 ? i / 16 : 0.5) });
    });
    const t0 = Date.now();
    const leases = await Promise.all(managers.map((m, i) => m.acquire({ name: `node-${i}`, publicIP: `192.0.2.${i + 1}`, backendType: 'vxlan', backendData: {} })));
    const ms = Date.now() - t0;
    const v6 = (l: Lease): string => (l.ipv6Subnet ? formatPrefix(l.ipv6Subnet) : '-');
    assert.equal(new Set(leases.map((l) => formatCidr(l.subnet))).size, 16);
    assert.equal(new Set(leases.map(v6)).size, 16, leases.map(v6).join(' '));
    const store = connect();
    const res = (await store.list(IPV6_SUBNETS_PREFIX)).items;
    assert.equal(res.length, 16);
    for (const l of leases) {
      const lk = await store.get(l.key);
      const rk = await store.get(ipv6SubnetKey(l.ipv6Subnet as NonNullable<Lease['ipv6Subnet']>));
      assert.ok(lk && rk);
      assert.equal(parseIpv6Reservation(rk)?.lease, l.key);
      assert.equal(rk.modRevision, lk.modRevision, 'one txn');
      assert.ok(lk.lease && rk.lease === lk.lease, 'one etcd lease: they expire together');
    }
    t.diagnostic(`16 racing dual-stack acquisitions on etcd: ${ms} ms`);
    await Promise.all(leases.map((l, i) => (managers[i] as LeaseManager).release(l)));
    assert.equal((await store.list(SUBNETS_PREFIX)).items.length, 0);
    assert.equal((await store.list(IPV6_SUBNETS_PREFIX)).items.length, 0);
  });

  it('a v4-only lease gains an IPv6 subnet by CAS on its key when the cluster enables IPv6', async () => {
    const store = connect();
    const v4 = cfg('{"Network":"10.245.0.0/16"}');
    const old = await new LeaseManager({ store, config: v4 }).acquire({ name: 'old', publicIP: '192.0.2.50', backendType: 'vxlan', backendData: {} });
    assert.equal(old.ipv6Subnet, undefined);
    const dual = cfg('{"Network":"10.245.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:245::/56"}');
    const up = await new LeaseManager({ store, config: dual }).acquire({ name: 'old', publicIP: '192.0.2.50', backendType: 'vxlan', backendData: {} });
    assert.equal(up.key, old.key);
    assert.equal(formatCidr(up.subnet), formatCidr(old.subnet));
    assert.ok(up.ipv6Subnet);
    const renewed = await new LeaseManager({ store, config: dual }).renew(up);
    const rk = await store.get(ipv6SubnetKey(up.ipv6Subnet));
    assert.equal(rk?.modRevision, renewed.modRevision, 'renew rewrites the reservation in the same txn');
  });
});
