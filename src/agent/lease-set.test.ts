import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KeyValue } from '../datastore/types.js';
import { leaseKey, parseLeases, renderLeaseValue } from '../model/lease.js';
import { parseCidr } from '../net/ipv4.js';
import { LeaseSet } from './lease-set.js';

function kv(third: number, node: string, rev: number): KeyValue {
  const subnet = parseCidr(`10.244.${third}.0/24`, true) as { network: number; prefix: number };
  const value = renderLeaseValue({ subnet, nodeName: node, publicIP: `192.0.2.${third}`, backendType: 'vxlan', backendData: {}, expiresAt: 2e12 });
  return { key: leaseKey(subnet), value, modRevision: rev };
}

describe('LeaseSet', () => {
  it('gives what parseLeases gives, across snapshot, puts, changes and deletes', () => {
    const set = new LeaseSet();
    const a = kv(1, 'a', 1);
    const b = kv(2, 'b', 2);
    const bad: KeyValue = { key: '/twill/subnets/10.244.3.0-24', value: '{not json', modRevision: 3 };
    set.reset([a, b, bad]);
    const names = () => set.valid().map((l) => l.nodeName).sort();
    assert.deepEqual(names(), ['a', 'b']);
    assert.deepEqual(set.valid(), parseLeases([a, b, bad]).leases);
    const b2 = kv(2, 'b-renamed', 4);
    set.put(b2);
    assert.deepEqual(names(), ['a', 'b-renamed'], 'a changed record is validated again');
    set.delete(a.key);
    assert.deepEqual(names(), ['b-renamed']);
    set.reset([]);
    assert.deepEqual(set.valid(), []);
  });
});
