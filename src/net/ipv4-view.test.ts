/**
 * ipv4.ts is the IPv4 view of ip.ts: its number fast paths must agree with ip.ts on every input.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import {
  broadcast,
  contains,
  containsCidr,
  formatCidr,
  formatIPv4,
  hostRange,
  isNetworkAddress,
  macForIp,
  macForIPv4,
  maskOf,
  nthSubnet,
  overlaps,
  parseCidr,
  parseIPv4,
  size,
  type Cidr,
} from './ipv4.js';
import {
  formatIp,
  formatPrefix,
  fromV4Number,
  lastAddress,
  nthSubprefix,
  parseIp,
  parseIpOf,
  parsePrefixOf,
  prefixContains,
  prefixContainsPrefix,
  prefixesOverlap,
  prefixMask,
  prefixSize,
  toV4Number,
  usableRange,
  type IpPrefix,
} from './ip.js';

const RUNS = { numRuns: 3000 };
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const prefix = fc.integer({ min: 0, max: 32 });
const cidr = fc.tuple(uint32, prefix).map(([a, p]): Cidr => ({ network: (a & maskOf(p)) >>> 0, prefix: p }));
const toPrefix = (c: Cidr): IpPrefix => ({ family: 4, network: BigInt(c.network), prefix: c.prefix });
/** Dotted-quad-like strings, mostly invalid. */
const quadish = fc.oneof(
  fc.string({ unit: fc.constantFrom('0', '1', '2', '5', '9', '.', '.', 'a', ' ', '-', '/'), maxLength: 17 }),
  fc.array(fc.oneof(fc.nat({ max: 300 }).map(String), fc.constantFrom('00', '01', '007', '', '256', '1e1', '0x1', ' 1')), { minLength: 1, maxLength: 5 }).map((xs) => xs.join('.')),
);

describe('ipv4.ts agrees with ip.ts', () => {
  it('parseIPv4 = parseIpOf(4) = net.isIPv4 (property)', () => {
    fc.assert(
      fc.property(quadish, (t) => {
        const n = parseIPv4(t);
        const a = parseIpOf(4, t);
        assert.equal(n, a === undefined ? undefined : toV4Number(a), JSON.stringify(t));
        assert.equal(n !== undefined, net.isIPv4(t), JSON.stringify(t));
      }),
      { numRuns: 20000 },
    );
  });

  it('formatIPv4 = formatIp (property)', () => {
    fc.assert(fc.property(uint32, (n) => formatIPv4(n) === formatIp(fromV4Number(n))), RUNS);
  });

  it('parseCidr = parsePrefixOf(4), strict and loose (property)', () => {
    const cidrText = fc.oneof(
      fc.tuple(uint32, fc.integer({ min: -1, max: 40 })).map(([a, p]) => `${formatIPv4(a)}/${p}`),
      fc.tuple(quadish, fc.constantFrom('/0', '/8', '/32', '/33', '/08', '/', '', '/ 8', '/8 ')).map(([a, b]) => a + b),
    );
    fc.assert(
      fc.property(cidrText, fc.boolean(), (t, strict) => {
        const c = parseCidr(t, strict);
        const p = parsePrefixOf(4, t, strict);
        if (p === undefined) assert.equal(c, undefined, t);
        else assert.deepEqual(c, { network: Number(p.network), prefix: p.prefix, address: Number(p.address.value) }, t);
        if (c) assert.equal(formatCidr(c), formatPrefix(toPrefix(c)));
      }),
      RUNS,
    );
  });

  it('maskOf, size, broadcast, hostRange = prefixMask, prefixSize, lastAddress, usableRange (property)', () => {
    fc.assert(
      fc.property(cidr, (c) => {
        const p = toPrefix(c);
        assert.equal(BigInt(maskOf(c.prefix)), prefixMask(4, c.prefix));
        assert.equal(BigInt(size(c)), prefixSize(p));
        assert.equal(BigInt(broadcast(c)), lastAddress(p).value);
        const r = hostRange(c);
        const u = usableRange(p);
        assert.deepEqual([BigInt(r.first), BigInt(r.last)], [u.first.value, u.last.value]);
      }),
      RUNS,
    );
  });

  it('contains, containsCidr, overlaps = prefixContains, prefixContainsPrefix, prefixesOverlap (property)', () => {
    fc.assert(
      fc.property(cidr, cidr, uint32, fc.boolean(), (a, b0, x, nest) => {
        // Often b inside a, and x inside a.
        const b = nest && b0.prefix >= a.prefix ? { network: (a.network | (b0.network & ~maskOf(a.prefix))) >>> 0, prefix: b0.prefix } : b0;
        const xa = nest ? (a.network | (x & ~maskOf(a.prefix))) >>> 0 : x;
        assert.equal(contains(a, xa), prefixContains(toPrefix(a), fromV4Number(xa)));
        assert.equal(containsCidr(a, b), prefixContainsPrefix(toPrefix(a), toPrefix(b)));
        assert.equal(overlaps(a, b), prefixesOverlap(toPrefix(a), toPrefix(b)));
      }),
      RUNS,
    );
  });
});

describe('isNetworkAddress / nthSubnet', () => {
  it('agree with ip.ts (property) and table', () => {
    fc.assert(
      fc.property(uint32, prefix, (a, p) => {
        assert.equal(isNetworkAddress(a, p), parseCidr(`${formatIPv4(a)}/${p}`, true) !== undefined);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(cidr, fc.integer({ min: 0, max: 8 }), fc.nat(), (c, extra, k) => {
        const len = Math.min(32, c.prefix + extra);
        const count = 2 ** (len - c.prefix);
        const index = k % (count + 1); // sometimes one past the end
        const s = nthSubnet(c, len, index);
        const ref = nthSubprefix(toPrefix(c), len, BigInt(index));
        assert.deepEqual(s, ref === undefined ? undefined : { network: Number(ref.network), prefix: len });
        if (index < count) assert.ok(s && containsCidr(c, s));
        else assert.equal(s, undefined);
      }),
      RUNS,
    );
    const net = parseCidr('10.244.0.0/16')!;
    assert.equal(formatCidr(nthSubnet(net, 24, 7)!), '10.244.7.0/24');
    assert.equal(nthSubnet(net, 24, 256), undefined);
    assert.equal(nthSubnet(net, 24, -1), undefined);
    assert.equal(nthSubnet(net, 15, 0), undefined);
    assert.equal(nthSubnet(net, 24, 1.5), undefined);
    assert.ok(isNetworkAddress(parseIPv4('10.244.1.0')!, 24));
    assert.ok(!isNetworkAddress(parseIPv4('10.244.1.1')!, 24));
  });
});

describe('macForIp', () => {
  it('IPv4: exactly macForIPv4; IPv6: 0a:58 + the low 32 bits', () => {
    fc.assert(fc.property(uint32, (n) => macForIp(fromV4Number(n)) === macForIPv4(n) && macForIp(fromV4Number(n), 0x0e) === macForIPv4(n, 0x0e)), RUNS);
    assert.equal(macForIp(parseIp('fd00:10:244:1::a')!), '0a:58:00:00:00:0a');
    assert.equal(macForIp(parseIp('fd00:10:244:1::c0a8:101')!), '0a:58:c0:a8:01:01');
    assert.equal(macForIp(parseIp('192.168.1.1')!), '0a:58:c0:a8:01:01');
  });
});
