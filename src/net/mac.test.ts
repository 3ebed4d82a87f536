import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatMac, isLocalUnicastMac, parseMac, vtepMacForIPv4, vtepMacForNode } from './mac.js';
import { formatIp, parseIp, type Ip } from './ip.js';
import { isMac, parseIPv4 } from './ipv4.js';

const RUNS = { numRuns: 1000 };
const GOLDEN_NODE1 = '16:5e:da:d1:83:aa';
const GOLDEN_NODE2 = '86:e8:6c:5c:7e:ae';
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const v6 = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }).map((value): Ip => ({ family: 6, value }));
const name = fc.string({ minLength: 1, maxLength: 63 });

function v4(text: string): number {
  const n = parseIPv4(text);
  assert.ok(n !== undefined);
  return n;
}
function v6Of(text: string): Ip {
  const a = parseIp(text);
  assert.ok(a?.family === 6);
  return a;
}

describe('vtepMacForNode', () => {
  it('keeps the IPv4-derived MAC of existing nodes (0e:54 + octets), number or Ip', () => {
    assert.equal(vtepMacForIPv4(v4('192.0.2.11')), '0e:54:c0:00:02:0b');
    assert.equal(vtepMacForNode({ name: 'n1', publicIP: v4('192.0.2.11') }), '0e:54:c0:00:02:0b');
    assert.equal(vtepMacForNode({ name: 'n1', publicIP: parseIp('192.0.2.11')! }), '0e:54:c0:00:02:0b');
    // A dual-stack node on an IPv4 underlay keeps it too: IPv4 wins by default.
    assert.equal(vtepMacForNode({ name: 'n1', publicIP: v4('192.0.2.11'), publicIP6: v6Of('2001:db8::11') }), '0e:54:c0:00:02:0b');
    fc.assert(
      fc.property(uint32, name, (n, nm) => {
        const mac = vtepMacForNode({ name: nm, publicIP: n });
        const o = [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0'));
        assert.equal(mac, `0e:54:${o.join(':')}`);
      }),
      RUNS,
    );
  });

  it('golden IPv6 values (a change here changes running clusters: do not)', () => {
    const a = vtepMacForNode({ name: 'node-1', publicIP6: v6Of('2001:db8::11') });
    const b = vtepMacForNode({ name: 'node-2', publicIP6: v6Of('2001:db8::12') });
    assert.equal(a, GOLDEN_NODE1);
    assert.equal(b, GOLDEN_NODE2);
    // The address is canonicalised first: any spelling gives the same MAC.
    assert.equal(vtepMacForNode({ name: 'node-1', publicIP6: v6Of('2001:0DB8:0:0::0011') }), a);
    // The IPv6 device of a dual-underlay node: hashed, even though the node has IPv4.
    assert.equal(vtepMacForNode({ name: 'node-1', publicIP: v4('192.0.2.11'), publicIP6: v6Of('2001:db8::11') }, 6), a);
  });

  it('is a locally administered unicast MAC, stable, never in the 0e:54 / 0a:58 spaces (property)', () => {
    fc.assert(
      fc.property(name, v6, (nm, a) => {
        const mac = vtepMacForNode({ name: nm, publicIP6: a });
        assert.ok(isMac(mac), mac);
        assert.ok(isLocalUnicastMac(mac), mac);
        assert.equal(vtepMacForNode({ name: nm, publicIP6: a }), mac);
        assert.ok(!mac.startsWith('0e:54:') && !mac.startsWith('0a:58:'), mac);
      }),
      { numRuns: 3000 },
    );
    fc.assert(fc.property(uint32, (n) => isLocalUnicastMac(vtepMacForIPv4(n))), RUNS);
  });

  it('different nodes get different MACs: 20,000 nodes, no collision', () => {
    const seen = new Map<string, string>();
    for (let k = 0; k < 20000; k++) {
      const a: Ip = { family: 6, value: (0x20010db8n << 96n) | BigInt(k + 1) };
      for (const nm of [`node-${k}`]) {
        const mac = vtepMacForNode({ name: nm, publicIP6: a });
        assert.equal(seen.get(mac), undefined, `${mac}: ${nm} ${formatIp(a)} vs ${seen.get(mac)}`);
        seen.set(mac, `${nm} ${formatIp(a)}`);
      }
    }
    // Same address, different name; same name, different address.
    const a = v6Of('2001:db8::1');
    assert.notEqual(vtepMacForNode({ name: 'x', publicIP6: a }), vtepMacForNode({ name: 'y', publicIP6: a }));
    assert.notEqual(vtepMacForNode({ name: 'x', publicIP6: a }), vtepMacForNode({ name: 'x', publicIP6: v6Of('2001:db8::2') }));
    // The separator keeps name/address boundaries apart.
    assert.notEqual(vtepMacForNode({ name: 'a', publicIP6: a }), vtepMacForNode({ name: 'a\0', publicIP6: a }));
  });

  it('throws without an address of the family, or with a wrong-family field', () => {
    assert.throws(() => vtepMacForNode({ name: 'n' }), RangeError);
    assert.throws(() => vtepMacForNode({ name: 'n', publicIP6: v6Of('2001:db8::1') }, 4), RangeError);
    assert.throws(() => vtepMacForNode({ name: 'n', publicIP: v4('192.0.2.1') }, 6), RangeError);
    assert.throws(() => vtepMacForNode({ name: 'n', publicIP: v6Of('2001:db8::1') }), RangeError);
    assert.throws(() => vtepMacForNode({ name: 'n', publicIP6: parseIp('192.0.2.1')! }), RangeError);
    assert.throws(() => vtepMacForNode({ name: 'n', publicIP: -1 }), RangeError);
    assert.throws(() => vtepMacForNode({ name: 'n', publicIP: 2 ** 32 }), RangeError);
  });
});

describe('formatMac / parseMac', () => {
  it('round trip and reject bad input', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 }), (b) => {
        assert.deepEqual(parseMac(formatMac(b)), b);
      }),
      RUNS,
    );
    assert.deepEqual(parseMac('0E:54:C0:00:02:0B'), [0x0e, 0x54, 0xc0, 0, 2, 0x0b]);
    for (const bad of ['', '0e:54:c0:00:02', '0e:54:c0:00:02:0b:00', '0e-54-c0-00-02-0b', '0e:54:c0:00:02:g0', ' 0e:54:c0:00:02:0b']) {
      assert.equal(parseMac(bad), undefined, bad);
    }
    assert.throws(() => formatMac([1, 2, 3]), RangeError);
    assert.throws(() => formatMac([1, 2, 3, 4, 5, 256]), RangeError);
    assert.ok(!isLocalUnicastMac('0f:00:00:00:00:00')); // multicast
    assert.ok(!isLocalUnicastMac('0c:00:00:00:00:00')); // universally administered
  });
});
