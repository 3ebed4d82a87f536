import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VxlanBackendConfig } from '../model/cluster-config.js';
import { hostGwBackend } from './hostgw.js';
import { perPeerDesiredState } from './per-peer.js';
import { cidr, ip, local } from './test-fixtures.js';
import type { Peer } from './types.js';
import { vtepMacFor, vxlanBackend } from './vxlan.js';

const VX: VxlanBackendConfig = { type: 'vxlan', vni: 1, port: 8472, directRouting: false };
const GW = { type: 'host-gw' } as const;

function peer(n: number, publicIP: string, backendType: string): Peer {
  return {
    name: `node${n}`,
    publicIP: ip(publicIP),
    subnet: cidr(`10.244.${n}.0/24`),
    backendType,
    backendData: backendType === 'vxlan' ? { vtepMac: vtepMacFor(ip(publicIP)), vni: '1' } : {},
  };
}

const routes = (s: ReturnType<typeof perPeerDesiredState>): string[] =>
  s.routes.map((r) => `${(r.dst.network >>> 8) & 255} ${r.dev}${r.onlink ? ' onlink' : ''}`);

describe('perPeerDesiredState (backend switches)', () => {
  it('when every peer runs this node\'s backend it is exactly that backend', () => {
    const vxPeers = [peer(2, '192.0.2.12', 'vxlan'), peer(3, '198.51.100.3', 'vxlan')];
    assert.deepEqual(perPeerDesiredState({ local, peers: vxPeers, config: VX, fallbackVxlan: VX, announced: 'vxlan' }), vxlanBackend.desiredState(local, vxPeers, VX));
    const direct = { ...VX, directRouting: true };
    assert.deepEqual(perPeerDesiredState({ local, peers: vxPeers, config: direct, fallbackVxlan: VX }), vxlanBackend.desiredState(local, vxPeers, direct));
    const gwPeers = [peer(2, '192.0.2.12', 'host-gw'), peer(3, '198.51.100.3', 'host-gw')];
    assert.deepEqual(perPeerDesiredState({ local, peers: gwPeers, config: GW, fallbackVxlan: VX, announced: 'host-gw' }), hostGwBackend.desiredState(local, gwPeers, GW));
  });

  it('host-gw node, peers still on vxlan: keeps the device and their tunnel entries; the segment peer gets the direct route, the one behind an L3 hop the tunnel', () => {
    const s = perPeerDesiredState({ local, peers: [peer(2, '192.0.2.12', 'vxlan'), peer(3, '198.51.100.3', 'vxlan'), peer(4, '192.0.2.14', 'host-gw')], config: GW, fallbackVxlan: VX, announced: 'host-gw' });
    assert.deepEqual(s.links.map((l) => l.name), ['twill.1']);
    assert.deepEqual(routes(s), ['2 eth0', '3 twill.1 onlink', '4 eth0']);
    // Entries of the directly routed vxlan peer stay: the switch is one atomic route replace.
    assert.deepEqual(s.fdb.map((f) => f.dst), [ip('192.0.2.12'), ip('198.51.100.3')]);
    assert.deepEqual(s.neighbours.map((n) => n.ip), [ip('10.244.2.0'), ip('10.244.3.0')]);
    assert.deepEqual(s.errors, []);
  });

  it('vxlan node, peers already on host-gw: direct routes on the segment, per-peer not-on-underlay behind an L3 hop, vxlan peers as before', () => {
    const s = perPeerDesiredState({ local, peers: [peer(2, '192.0.2.12', 'host-gw'), peer(3, '198.51.100.3', 'host-gw'), peer(4, '198.51.100.4', 'vxlan')], config: VX, fallbackVxlan: VX, announced: 'vxlan' });
    assert.deepEqual(routes(s), ['2 eth0', '4 twill.1 onlink']);
    assert.deepEqual(s.errors.map((e) => [e.peer, e.code]), [['node3', 'not-on-underlay']]);
    // node2 (host-gw, direct) keeps tunnel entries under the MAC Twill derives from its address.
    assert.deepEqual(s.neighbours.map((n) => [n.ip, n.mac]), [[ip('10.244.4.0'), vtepMacFor(ip('198.51.100.4'))], [ip('10.244.2.0'), vtepMacFor(ip('192.0.2.12'))]]);
    assert.deepEqual(s.fdb.map((f) => f.dst), [ip('198.51.100.4'), ip('192.0.2.12')]);
    assert.deepEqual(s.links.map((l) => l.name), ['twill.1']);
  });

  it('host-gw node whose own lease still announces vxlan keeps the device (peers may still tunnel to it); drops it once announced host-gw', () => {
    const peers = [peer(2, '192.0.2.12', 'host-gw')];
    const lagging = perPeerDesiredState({ local, peers, config: GW, fallbackVxlan: VX, announced: 'vxlan' });
    assert.deepEqual(lagging.links.map((l) => l.name), ['twill.1']);
    assert.deepEqual(lagging.addresses.map((a) => a.address), [local.subnet.network]);
    assert.deepEqual(routes(lagging), ['2 eth0']);
    const done = perPeerDesiredState({ local, peers, config: GW, fallbackVxlan: VX, announced: 'host-gw' });
    assert.deepEqual([done.links, done.addresses], [[], []]);
    assert.deepEqual(routes(done), ['2 eth0']);
  });

  it('uses the fallback vxlan parameters (VNI, port) while this node runs host-gw', () => {
    const fallback: VxlanBackendConfig = { type: 'vxlan', vni: 7, port: 4789, directRouting: false };
    const p = { ...peer(3, '198.51.100.3', 'vxlan'), backendData: { vtepMac: vtepMacFor(ip('198.51.100.3')), vni: '7' } };
    const s = perPeerDesiredState({ local, peers: [p], config: GW, fallbackVxlan: fallback, announced: 'host-gw' });
    assert.deepEqual([s.links[0]?.name, s.links[0]?.port], ['twill.7', 4789]);
    assert.deepEqual(routes(s), ['3 twill.7 onlink']);
  });

  it('screens peers of all backends together; an unknown backend is a per-peer backend-mismatch', () => {
    const clash = { ...peer(2, '192.0.2.22', 'host-gw'), name: 'node2b' };
    const s = perPeerDesiredState({ local, peers: [peer(2, '192.0.2.12', 'vxlan'), clash, peer(5, '192.0.2.15', 'udp')], config: VX, fallbackVxlan: VX, announced: 'vxlan' });
    assert.deepEqual(s.errors.map((e) => [e.peer, e.code]), [['node2b', 'subnet-conflict'], ['node5', 'backend-mismatch']]);
    assert.match(s.errors[1]?.message ?? '', /announces backend 'udp'/);
    assert.deepEqual(routes(s), ['2 twill.1 onlink']);
  });
});
