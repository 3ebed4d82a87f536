import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VxlanBackendConfig } from '../model/cluster-config.js';
import { parseIpOf, parsePrefixOf, type Ip, type IpPrefix } from '../net/ip.js';
import { hostGwBackend } from './hostgw.js';
import { perPeerDesiredState } from './per-peer.js';
import { cidr, ip, local } from './test-fixtures.js';
import type { LocalNode, Peer } from './types.js';
import { vtepMacFor, vxlanBackend } from './vxlan.js';

const ip6 = (s: string): Ip => parseIpOf(6, s) as Ip;
const pfx6 = (s: string): IpPrefix => {
  const p = parsePrefixOf(6, s, true) as IpPrefix;
  return { family: 6, network: p.network, prefix: p.prefix };
};
const config: VxlanBackendConfig = { type: 'vxlan', vni: 1, port: 8472, directRouting: false };
/** node1 dual stack on a v4 underlay. */
const dual: LocalNode = { ...local, subnet6: pfx6('fd00:10:244:1::/64') };
/** node1 dual stack with a v6 underlay address too. */
const dualU6: LocalNode = { ...dual, publicIP6: ip6('2001:db8::11'), underlayCidr6: pfx6('2001:db8::/64') };

function peer(n: number, opts: { v6?: boolean; publicIP?: string; publicIP6?: string; backendType?: string } = {}): Peer {
  const publicIP = opts.publicIP ?? `192.0.2.${10 + n}`;
  return {
    name: `node${n}`,
    publicIP: ip(publicIP),
    subnet: cidr(`10.244.${n}.0/24`),
    backendType: opts.backendType ?? 'vxlan',
    backendData: { vtepMac: vtepMacFor(ip(publicIP)), vni: '1' },
    ...(opts.v6 === false ? {} : { subnet6: pfx6(`fd00:10:244:${n}::/64`) }),
    ...(opts.publicIP6 ? { publicIP6: ip6(opts.publicIP6) } : {}),
  };
}

describe('dual stack: vxlan over an IPv4 underlay', () => {
  it('one device; per v6 peer a /128, a permanent neighbour and an onlink route; the FDB entry is shared', () => {
    const s = vxlanBackend.desiredState(dual, [peer(2), peer(3, { v6: false })], config);
    const v4only = vxlanBackend.desiredState(local, [peer(2), peer(3, { v6: false })], config);
    assert.deepEqual([s.links, s.addresses, s.neighbours, s.fdb, s.routes], [v4only.links, v4only.addresses, v4only.neighbours, v4only.fdb, v4only.routes], 'IPv4 objects unchanged');
    assert.equal(s.links.length, 1);
    assert.deepEqual(s.addresses6, [{ dev: 'twill.1', address: ip6('fd00:10:244:1::'), prefix: 128 }]);
    assert.deepEqual(s.neighbours6, [{ dev: 'twill.1', ip: ip6('fd00:10:244:2::'), mac: vtepMacFor(ip('192.0.2.12')) }]);
    assert.deepEqual(s.routes6, [{ dst: pfx6('fd00:10:244:2::/64'), via: ip6('fd00:10:244:2::'), dev: 'twill.1', onlink: true }]);
    assert.equal(s.fdb.length, 2, 'one FDB entry per peer MAC, not per family');
    assert.deepEqual(s.errors, []);
  });

  it('an IPv4-only node ignores the peers\' subnet6 (no IPv6 objects at all)', () => {
    const s = vxlanBackend.desiredState(local, [peer(2), peer(3)], config);
    assert.deepEqual([s.addresses6, s.neighbours6, s.routes6], [[], [], []]);
  });

  it('a peer whose subnet6 overlaps keeps IPv4 and loses only IPv6, with subnet-conflict', () => {
    const bad: Peer = { ...peer(3), subnet6: pfx6('fd00:10:244:1::/64') };
    const twin: Peer = { ...peer(4), subnet6: pfx6('fd00:10:244:2::/64') };
    const s = vxlanBackend.desiredState(dual, [peer(2), bad, twin], config);
    assert.deepEqual(s.routes.map((r) => r.dst.network), [ip('10.244.2.0'), ip('10.244.3.0'), ip('10.244.4.0')]);
    assert.deepEqual(s.routes6.map((r) => r.dst), [pfx6('fd00:10:244:2::/64')]);
    assert.deepEqual(s.errors.map((e) => [e.peer, e.code]), [['node3', 'subnet-conflict'], ['node4', 'subnet-conflict']]);
  });

  it('DirectRouting on a v4 underlay: v4 goes direct, v6 still through the tunnel (neighbour + FDB kept)', () => {
    const s = vxlanBackend.desiredState(dual, [peer(2)], { ...config, directRouting: true });
    assert.deepEqual(s.routes, [{ dst: cidr('10.244.2.0/24'), via: ip('192.0.2.12'), dev: 'eth0', onlink: false }]);
    assert.deepEqual(s.neighbours, [], 'no IPv4 neighbour for a direct route');
    assert.equal(s.fdb.length, 1, 'the tunnel carries IPv6');
    assert.deepEqual(s.routes6, [{ dst: pfx6('fd00:10:244:2::/64'), via: ip6('fd00:10:244:2::'), dev: 'twill.1', onlink: true }]);
  });

  it('DirectRouting with v6 underlay addresses: both families direct, nothing in the tunnel', () => {
    const s = vxlanBackend.desiredState(dualU6, [peer(2, { publicIP6: '2001:db8::12' }), peer(3, { publicIP6: '2001:db8:1::13' })], { ...config, directRouting: true });
    assert.deepEqual(s.routes6, [
      { dst: pfx6('fd00:10:244:2::/64'), via: ip6('2001:db8::12'), dev: 'eth0', onlink: false },
      { dst: pfx6('fd00:10:244:3::/64'), via: ip6('fd00:10:244:3::'), dev: 'twill.1', onlink: true },
    ]);
    assert.deepEqual(s.fdb.map((f) => f.dst), [ip('192.0.2.13')], 'only node3 (v6 off the v6 underlay) needs the tunnel');
  });
});

describe('dual stack: host-gw', () => {
  it('routes v6 via the peer\'s publicIP6 on the v6 underlay; off it: not-on-underlay; v4 unaffected', () => {
    const s = hostGwBackend.desiredState(dualU6, [peer(2, { publicIP6: '2001:db8::12', backendType: 'host-gw' }), peer(3, { publicIP6: '2001:db8:9::13', backendType: 'host-gw' })], { type: 'host-gw' });
    assert.equal(s.routes.length, 2);
    assert.deepEqual(s.routes6, [{ dst: pfx6('fd00:10:244:2::/64'), via: ip6('2001:db8::12'), dev: 'eth0', onlink: false }]);
    assert.deepEqual(s.errors.map((e) => [e.peer, e.code]), [['node3', 'not-on-underlay']]);
  });

  it('on a v4 underlay (no publicIP6) v6 cannot be routed: no-ipv6-underlay per peer, v4 routes stay', () => {
    const s = hostGwBackend.desiredState(dual, [peer(2, { backendType: 'host-gw' }), peer(3, { v6: false, backendType: 'host-gw' })], { type: 'host-gw' });
    assert.equal(s.routes.length, 2);
    assert.deepEqual(s.routes6, []);
    assert.deepEqual(s.errors.map((e) => [e.peer, e.code]), [['node2', 'no-ipv6-underlay']]);
    assert.match(s.errors[0]?.message ?? '', /this node has no IPv6 underlay address/);
    const t = hostGwBackend.desiredState(dualU6, [peer(2, { backendType: 'host-gw' })], { type: 'host-gw' });
    assert.match(t.errors[0]?.message ?? '', /node2 announces no IPv6 underlay address/);
  });
});

describe('dual stack: per-peer (backend switch)', () => {
  it('this node vxlan, a host-gw peer with a direct v6 route keeps its v6 neighbour; vxlan peers tunnel v6', () => {
    const s = perPeerDesiredState({
      local: dualU6,
      peers: [peer(2, { publicIP6: '2001:db8::12', backendType: 'host-gw' }), peer(3)],
      config,
      fallbackVxlan: config,
    });
    assert.deepEqual(s.routes6.map((r) => [r.dst, r.dev]), [[pfx6('fd00:10:244:2::/64'), 'eth0'], [pfx6('fd00:10:244:3::/64'), 'twill.1']]);
    assert.deepEqual(s.neighbours6.map((n) => n.ip), [ip6('fd00:10:244:3::'), ip6('fd00:10:244:2::')]);
    assert.deepEqual(s.addresses6.length, 1);
  });

  it('this node host-gw, vxlan peers on a v4 underlay: v4 direct, v6 through the tunnel', () => {
    const s = perPeerDesiredState({ local: dual, peers: [peer(2)], config: { type: 'host-gw' }, fallbackVxlan: config });
    assert.deepEqual(s.routes.map((r) => r.dev), ['eth0']);
    assert.deepEqual(s.routes6.map((r) => r.dev), ['twill.1']);
    assert.deepEqual(s.errors, []);
  });

  it('IPv4-only inputs give exactly the IPv4 result with empty v6 lists', () => {
    const s = perPeerDesiredState({ local, peers: [peer(2, { v6: false }), peer(3, { v6: false, backendType: 'host-gw' })], config, fallbackVxlan: config });
    assert.deepEqual([s.addresses6, s.neighbours6, s.routes6], [[], [], []]);
  });
});
