import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostGwBackend } from './hostgw.js';
import { bindBackend } from './registry.js';
import type { Peer } from './types.js';
import { cidr, ip, local } from './test-fixtures.js';


const peer = (n: number, publicIP: string, backendType = 'host-gw'): Peer => ({
  name: `node${n}`,
  publicIP: ip(publicIP),
  subnet: cidr(`10.244.${n}.0/24`),
  backendType,
  backendData: {},
});

describe('host-gw backend', () => {
  it('routes each peer subnet via the peer address on the underlay interface (flannel host-gw table)', () => {
    const s = hostGwBackend.desiredState(local, [peer(3, '192.0.2.13'), peer(2, '192.0.2.12')], { type: 'host-gw' });
    assert.deepEqual(s.routes, [
      { dst: cidr('10.244.2.0/24'), via: ip('192.0.2.12'), dev: 'eth0', onlink: false },
      { dst: cidr('10.244.3.0/24'), via: ip('192.0.2.13'), dev: 'eth0', onlink: false },
    ]);
    assert.deepEqual([s.links, s.addresses, s.neighbours, s.fdb, s.errors], [[], [], [], [], []]);
  });

  it('a peer outside the underlay subnet is an error with no route; the others still work', () => {
    const s = hostGwBackend.desiredState(local, [peer(2, '192.0.2.12'), peer(3, '198.51.100.3'), peer(4, '192.0.2.14')], { type: 'host-gw' });
    assert.deepEqual(
      s.routes.map((r) => r.via),
      [ip('192.0.2.12'), ip('192.0.2.14')],
    );
    assert.equal(s.errors.length, 1);
    assert.equal(s.errors[0]?.peer, 'node3');
    assert.equal(s.errors[0]?.code, 'not-on-underlay');
    assert.match(s.errors[0]?.message ?? '', /198\.51\.100\.3 is not inside this node's underlay 192\.0\.2\.0\/24/);
  });

  it('rejects a vxlan peer; publishes no attributes; pods keep the underlay MTU', () => {
    const s = hostGwBackend.desiredState(local, [peer(2, '192.0.2.12', 'vxlan')], { type: 'host-gw' });
    assert.deepEqual(s.errors.map((e) => e.code), ['backend-mismatch']);
    assert.deepEqual(hostGwBackend.leaseAttributes(local, { type: 'host-gw' }), {});
    assert.equal(hostGwBackend.podMtu(local, { type: 'host-gw' }), 1500);
  });
});

describe('registry', () => {
  it('binds a cluster backend config to its backend', () => {
    const gw = bindBackend({ type: 'host-gw' });
    assert.equal(gw.name, 'host-gw');
    assert.equal(gw.desiredState(local, [peer(2, '192.0.2.12')]).routes.length, 1);
    const vx = bindBackend({ type: 'vxlan', vni: 3, port: 8472, directRouting: false });
    assert.equal(vx.name, 'vxlan');
    assert.equal(vx.podMtu(local), 1450);
    assert.deepEqual(vx.leaseAttributes(local), { vtepMac: local.vtepMac, vni: '3' });
    assert.equal(vx.desiredState(local, []).links[0]?.name, 'twill.3');
  });
});
