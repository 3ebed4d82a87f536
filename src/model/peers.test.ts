import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatCidr, parseCidr, type Cidr } from '../net/ipv4.js';
import { leaseKey, type Lease } from './lease.js';
import { describePeerDiff, diffPeers, isEmptyDiff, peersFromLeases, type Peer } from './peers.js';

const NOW = Date.parse('2030-01-01T00:00:00.000Z');

const cidr = (s: string): Cidr => {
  const c = parseCidr(s, true);
  assert.ok(c, s);
  return { network: c.network, prefix: c.prefix };
};

function lease(subnet: string, nodeName: string, over: Partial<Lease> = {}): Lease {
  return {
    key: leaseKey(cidr(subnet)),
    subnet: cidr(subnet),
    nodeName,
    publicIP: '192.0.2.1',
    backendType: 'vxlan',
    backendData: { vtepMAC: '0e:00:00:00:00:01' },
    expiresAt: NOW + 1000,
    modRevision: 1,
    ...over,
  };
}

const peer = (subnet: string, nodeName: string, over: Partial<Peer> = {}): Peer => ({
  nodeName,
  subnet: cidr(subnet),
  publicIP: '192.0.2.1',
  backendType: 'vxlan',
  backendData: { vtepMAC: '0e:00:00:00:00:01' },
  ...over,
});

describe('peersFromLeases', () => {
  it('excludes self and expired leases, sorts by subnet, drops store metadata', () => {
    const peers = peersFromLeases(
      [
        lease('10.244.9.0/24', 'c'),
        lease('10.244.1.0/24', 'self'),
        lease('10.244.2.0/24', 'b', { publicIP: '192.0.2.2' }),
        lease('10.244.3.0/24', 'old', { expiresAt: NOW }),
        lease('10.244.4.0/24', 'gone', { expiresAt: NOW - 1 }),
      ],
      'self',
      NOW,
    );
    assert.deepEqual(peers, [peer('10.244.2.0/24', 'b', { publicIP: '192.0.2.2' }), peer('10.244.9.0/24', 'c')]);
    assert.deepEqual(peersFromLeases([], 'self', NOW), []);
  });
});

describe('diffPeers', () => {
  it('finds added, removed and changed peers, keyed by subnet', () => {
    const before = [peer('10.244.1.0/24', 'a'), peer('10.244.2.0/24', 'b'), peer('10.244.3.0/24', 'c')];
    const after = [
      peer('10.244.3.0/24', 'c', { backendData: { vtepMAC: '0e:00:00:00:00:03' } }),
      peer('10.244.1.0/24', 'a'),
      peer('10.244.4.0/24', 'd', { backendType: 'host-gw', backendData: {} }),
    ];
    const d = diffPeers(before, after);
    assert.deepEqual(d.added.map((p) => p.nodeName), ['d']);
    assert.deepEqual(d.removed.map((p) => p.nodeName), ['b']);
    assert.deepEqual(d.changed.map((c) => formatCidr(c.after.subnet)), ['10.244.3.0/24']);
    assert.equal(isEmptyDiff(d), false);
    assert.deepEqual(describePeerDiff(d), [
      '+ 10.244.4.0/24 d 192.0.2.1 host-gw',
      '- 10.244.2.0/24 b 192.0.2.1 vxlan',
      '~ 10.244.3.0/24 c 192.0.2.1 vxlan -> 10.244.3.0/24 c 192.0.2.1 vxlan (vtepMAC: 0e:00:00:00:00:01 -> 0e:00:00:00:00:03)',
    ]);
  });

  it('detects every attribute change, including extra/missing backendData keys', () => {
    const base = peer('10.244.1.0/24', 'a');
    const overs: Partial<Peer>[] = [
      { nodeName: 'z' },
      { publicIP: '192.0.2.9' },
      { backendType: 'host-gw' },
      { backendData: {} },
      { backendData: { vtepMAC: '0e:00:00:00:00:01', x: '1' } },
    ];
    for (const over of overs) {
      assert.equal(diffPeers([base], [{ ...base, ...over }]).changed.length, 1, JSON.stringify(over));
    }
    const same = diffPeers([base], [peer('10.244.1.0/24', 'a')]);
    assert.ok(isEmptyDiff(same));
    assert.deepEqual(describePeerDiff(same), []);
  });
});

describe('peers: dual stack', () => {
  const s6 = { family: 6 as const, network: 0xfd000010024400020000000000000000n, prefix: 64 };
  it('peersFromLeases carries subnet6/publicIPv6; v4-only leases have neither', () => {
    const peers = peersFromLeases([lease('10.244.2.0/24', 'b', { ipv6Subnet: s6, publicIPv6: '2001:db8::2' }), lease('10.244.3.0/24', 'c')], 'a', NOW);
    assert.deepEqual(peers[0]?.subnet6, s6);
    assert.equal(peers[0]?.publicIPv6, '2001:db8::2');
    assert.equal('subnet6' in (peers[1] as object), false);
    assert.equal('publicIPv6' in (peers[1] as object), false);
  });
  it('a v6 change is a change, and describe shows both families', () => {
    const before = [peer('10.244.2.0/24', 'b')];
    const after = [peer('10.244.2.0/24', 'b', { subnet6: s6, publicIPv6: '2001:db8::2' })];
    const d = diffPeers(before, after);
    assert.equal(d.changed.length, 1);
    assert.deepEqual(describePeerDiff(d), ['~ 10.244.2.0/24 b 192.0.2.1 vxlan -> 10.244.2.0/24,fd00:10:244:2::/64 b 192.0.2.1,2001:db8::2 vxlan']);
    assert.ok(isEmptyDiff(diffPeers(after, [peer('10.244.2.0/24', 'b', { subnet6: { ...s6 }, publicIPv6: '2001:db8::2' })])));
  });
});
