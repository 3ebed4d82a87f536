import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { overlaps, type Cidr } from '../net/ipv4.js';
import { screenPeers } from './peer-screen.js';
import { local } from './test-fixtures.js';
import type { Peer } from './types.js';

/** The obvious quadratic definition the fast screen must agree with. */
function naiveAccepted(peers: readonly Peer[]): string[] {
  const sorted = [...peers].sort((a, b) => a.subnet.network - b.subnet.network || a.subnet.prefix - b.subnet.prefix || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const accepted: Peer[] = [];
  for (const p of sorted) {
    if (p.name === local.name || p.publicIP === local.publicIP || overlaps(p.subnet, local.subnet)) continue;
    if (accepted.some((a) => overlaps(a.subnet, p.subnet) || a.publicIP === p.publicIP)) continue;
    accepted.push(p);
  }
  return accepted.map((p) => p.name);
}

const peerArb = fc.record({
  n: fc.integer({ min: 0, max: 40 }),
  prefix: fc.integer({ min: 20, max: 26 }),
  third: fc.integer({ min: 0, max: 15 }),
  host: fc.integer({ min: 1, max: 20 }),
});

describe('screenPeers', () => {
  it('accepts exactly what the quadratic definition accepts (overlaps of mixed sizes, shared addresses)', () => {
    fc.assert(
      fc.property(fc.array(peerArb, { maxLength: 40 }), (raw) => {
        const peers: Peer[] = raw.map((r, i) => {
          const network = ((10 << 24) | (250 << 16) | (r.third << 8)) >>> 0;
          const subnet: Cidr = { network: (network & ((0xffffffff << (32 - r.prefix)) >>> 0)) >>> 0, prefix: r.prefix };
          return { name: `p${i}`, publicIP: ((198 << 24) | (51 << 16) | (100 << 8) | r.host) >>> 0, subnet, backendType: 'vxlan', backendData: {} };
        });
        const fast = screenPeers(local, peers, 'vxlan').accepted.map((p) => p.name);
        assert.deepEqual(fast, naiveAccepted(peers));
      }),
      { numRuns: 500 },
    );
  });
});
