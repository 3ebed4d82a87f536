import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VxlanBackendConfig } from '../model/cluster-config.js';
import type { Peer } from './types.js';
import { vtepMacFor, vxlanBackend } from './vxlan.js';
import { cidr, ip, local } from './test-fixtures.js';


const config: VxlanBackendConfig = { type: 'vxlan', vni: 1, port: 8472, directRouting: false };

function peer(n: number, publicIP: string, extra: Partial<Peer> = {}): Peer {
  return {
    name: `node${n}`,
    publicIP: ip(publicIP),
    subnet: cidr(`10.244.${n}.0/24`),
    backendType: 'vxlan',
    backendData: { vtepMac: vtepMacFor(ip(publicIP)), vni: '1' },
    ...extra,
  };
}

describe('vxlan backend', () => {
  it('follows flannel: twill.1, VNI 1, port 8472, MTU underlay-50, nolearning, subnet network /32', () => {
    const s = vxlanBackend.desiredState(local, [], config);
    assert.deepEqual(s.links, [
      {
        kind: 'vxlan',
        name: 'twill.1',
        vni: 1,
        port: 8472,
        local: ip('192.0.2.11'),
        dev: 'eth0',
        mtu: 1450,
        mac: '0e:54:c0:00:02:0b',
        learning: false,
        udpCsum: false,
      },
    ]);
    assert.deepEqual(s.addresses, [{ dev: 'twill.1', address: ip('10.244.1.0'), prefix: 32 }]);
    assert.deepEqual([s.neighbours, s.fdb, s.routes, s.errors], [[], [], [], []]);
  });

  it('per peer: permanent neighbour for the subnet network address, FDB to the peer, onlink route', () => {
    const s = vxlanBackend.desiredState(local, [peer(3, '198.51.100.3'), peer(2, '192.0.2.12')], config);
    assert.deepEqual(s.neighbours, [
      { dev: 'twill.1', ip: ip('10.244.2.0'), mac: '0e:54:c0:00:02:0c' },
      { dev: 'twill.1', ip: ip('10.244.3.0'), mac: '0e:54:c6:33:64:03' },
    ]);
    assert.deepEqual(s.fdb, [
      { dev: 'twill.1', mac: '0e:54:c0:00:02:0c', dst: ip('192.0.2.12') },
      { dev: 'twill.1', mac: '0e:54:c6:33:64:03', dst: ip('198.51.100.3') },
    ]);
    assert.deepEqual(s.routes, [
      { dst: cidr('10.244.2.0/24'), via: ip('10.244.2.0'), dev: 'twill.1', onlink: true },
      { dst: cidr('10.244.3.0/24'), via: ip('10.244.3.0'), dev: 'twill.1', onlink: true },
    ]);
  });

  it('DirectRouting: peers on the underlay subnet get host-gw routes, the others vxlan', () => {
    const s = vxlanBackend.desiredState(local, [peer(2, '192.0.2.12'), peer(3, '198.51.100.3')], { ...config, directRouting: true });
    assert.deepEqual(s.routes, [
      { dst: cidr('10.244.2.0/24'), via: ip('192.0.2.12'), dev: 'eth0', onlink: false },
      { dst: cidr('10.244.3.0/24'), via: ip('10.244.3.0'), dev: 'twill.1', onlink: true },
    ]);
    assert.deepEqual(
      s.neighbours.map((n) => n.ip),
      [ip('10.244.3.0')],
    );
    assert.equal(s.fdb.length, 1);
  });

  it('reports unusable peers and still serves the others', () => {
    const s = vxlanBackend.desiredState(
      local,
      [
        peer(2, '192.0.2.12', { backendData: {} }),
        peer(3, '192.0.2.13', { backendData: { vtepMac: 'ff:ff:ff:ff:ff:ff' } }),
        peer(4, '192.0.2.14', { backendData: { vtepMac: '0e:00:00:00:00:04\nlink del eth0' } }),
        peer(5, '192.0.2.15', { backendData: { vtepMac: '0e:00:00:00:00:05', vni: '7' } }),
        peer(6, '192.0.2.16', { backendType: 'host-gw' }),
        peer(7, '192.0.2.17', { subnet: cidr('10.244.1.0/25') }),
        peer(8, '192.0.2.11'),
        peer(9, '192.0.2.19'),
        { ...peer(1, '192.0.2.11'), name: 'node1' }, // this node's own lease: skipped silently
      ],
      config,
    );
    assert.deepEqual(
      s.errors.map((e) => [e.peer, e.code]),
      [
        ['node7', 'subnet-conflict'],
        ['node6', 'backend-mismatch'],
        ['node8', 'subnet-conflict'],
        ['node2', 'bad-backend-data'],
        ['node3', 'bad-backend-data'],
        ['node4', 'bad-backend-data'],
        ['node5', 'bad-backend-data'],
      ],
    );
    assert.deepEqual(
      s.routes.map((r) => r.dst.network),
      [ip('10.244.9.0')],
    );
  });

  it('two peers claiming overlapping subnets: the first (by subnet, then name) wins', () => {
    const s = vxlanBackend.desiredState(local, [peer(2, '192.0.2.22', { name: 'b' }), peer(2, '192.0.2.12', { name: 'a' })], config);
    assert.deepEqual(s.routes.length, 1);
    assert.deepEqual(s.fdb[0]?.dst, ip('192.0.2.12'));
    assert.deepEqual(s.errors.map((e) => e.peer), ['b']);
  });

  it('is deterministic whatever the peer order', () => {
    const peers = [peer(5, '192.0.2.15'), peer(2, '192.0.2.12'), peer(9, '198.51.100.9')];
    const a = vxlanBackend.desiredState(local, peers, config);
    const b = vxlanBackend.desiredState(local, [...peers].reverse(), config);
    assert.deepEqual(a, b);
  });

  it('lease attributes, pod MTU, VNI and MTU from config', () => {
    assert.deepEqual(vxlanBackend.leaseAttributes(local, config), { vtepMac: '0e:54:c0:00:02:0b', vni: '1' });
    assert.equal(vxlanBackend.podMtu(local, config), 1450);
    assert.equal(vxlanBackend.podMtu(local, { ...config, mtu: 8950 }), 8950);
    const s = vxlanBackend.desiredState(local, [peer(2, '192.0.2.12', { backendData: { vtepMac: '0e:00:00:00:00:02', vni: '42' } })], {
      ...config,
      vni: 42,
      port: 4789,
    });
    assert.equal(s.links[0]?.name, 'twill.42');
    assert.equal(s.links[0]?.port, 4789);
    assert.equal(s.routes[0]?.dev, 'twill.42');
  });
});
