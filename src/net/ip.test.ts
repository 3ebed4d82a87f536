/**
 * Property and table tests for `ip.ts`, both families, with Node's `net` module as the reference:
 * `net.isIP` for what parses, `net.BlockList` for containment, `new URL('http://[..]').hostname`
 * (WHATWG, RFC 5952 text) and `net.SocketAddress` (libuv's inet_ntop) for canonical text.
 *
 * Where the reference and ip.ts deliberately differ (each is asserted below, so a change in either
 * side shows up):
 * - Zone ids (`fe80::1%eth0`): `net.isIP` accepts them; ip.ts rejects them. A zone names an
 *   interface of one host, it is not part of the address; no Twill input (CIDRs, leases, CNI
 *   results, kernel dumps) may carry one.
 * - IPv4-mapped (`::ffff:a.b.c.d`): `BlockList` treats it as the IPv4 address in both directions (a
 *   mapped address matches an IPv4 subnet, an IPv4 address matches `::ffff:0:0/96`, even `::/80`).
 *   ip.ts keeps the families apart: a mapped address is an IPv6 address, never inside an IPv4
 *   prefix; `unmapV4` converts explicitly.
 * - Mixed notation: ip.ts writes `::ffff:a.b.c.d` for IPv4-mapped only (RFC 5952 §5). URL never
 *   uses mixed notation; libuv also writes deprecated IPv4-compatible addresses (`::a.b.c.d`, RFC 4291
 *   §2.5.5.1) mixed. So non-mapped text is checked against URL, mapped text against SocketAddress.
 * RFC 4291 and Node agree elsewhere: `::` may stand for a single zero group (`1:2:3:4:5:6:7::`), an
 * embedded IPv4 part only ends the address, and its octets have no leading zeros (inet_pton).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import {
  addToIp,
  compareIp,
  familyBits,
  formatHostPort,
  formatIp,
  formatPrefix,
  fromV4Number,
  ip,
  ipEquals,
  isLinkLocal,
  isLoopback,
  isV4Mapped,
  lastAddress,
  networkOf,
  nthSubprefix,
  parseIp,
  parseIpOf,
  parsePrefix,
  parsePrefixOf,
  prefixContains,
  prefixContainsPrefix,
  prefixEquals,
  prefixesOverlap,
  prefixMask,
  prefixOf,
  prefixSize,
  subprefixCount,
  subprefixes,
  subprefixIndex,
  toV4Number,
  unmapV4,
  usableRange,
  type Family,
  type Ip,
  type IpPrefix,
} from './ip.js';

const RUNS = { numRuns: 1000 };
const MAX4 = (1n << 32n) - 1n;
const MAX6 = (1n << 128n) - 1n;

const family = fc.constantFrom<Family>(4, 6);
/** Groups biased towards 0 and ffff so zero runs, mapped addresses and edges come up often. */
const group = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.constant(0xffff) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
);
const v6Value = fc.oneof(
  fc.array(group, { minLength: 8, maxLength: 8 }).map((gs) => gs.reduce((v, g) => (v << 16n) | BigInt(g), 0n)),
  fc.bigInt({ min: 0n, max: MAX6 }),
  fc.bigInt({ min: 0n, max: MAX4 }).map((v) => (0xffffn << 32n) | v), // IPv4-mapped
);
const v4Value = fc.bigInt({ min: 0n, max: MAX4 });
const v4 = v4Value.map((value): Ip => ({ family: 4, value }));
const v6 = v6Value.map((value): Ip => ({ family: 6, value }));
const anyIp = fc.oneof(v4, v6);
const addrOf = (f: Family): fc.Arbitrary<Ip> => (f === 4 ? v4 : v6);
const prefixOfFamily = (f: Family): fc.Arbitrary<IpPrefix> =>
  fc.tuple(addrOf(f), fc.integer({ min: 0, max: familyBits(f) })).map(([a, len]) => prefixOf(a, len));
const anyPrefix = family.chain(prefixOfFamily);

const refFamily = (f: Family): 'ipv4' | 'ipv6' => (f === 4 ? 'ipv4' : 'ipv6');
function blockListOf(p: IpPrefix): net.BlockList {
  const b = new net.BlockList();
  b.addSubnet(formatIp(networkOf(p)), p.prefix, refFamily(p.family));
  return b;
}
/** RFC 5952 text as WHATWG URL writes it (never mixed notation). */
function urlHost(text: string): string {
  return new URL(`http://[${text}]`).hostname.slice(1, -1);
}
function mustParse(text: string): Ip {
  const a = parseIp(text);
  assert.ok(a, `test setup: ${text} must parse`);
  return a;
}
function mustPrefix(text: string): IpPrefix {
  const p = parsePrefix(text, true);
  assert.ok(p, `test setup: ${text} must parse as a strict prefix`);
  return { family: p.family, network: p.network, prefix: p.prefix };
}
const groupsOf = (v: bigint): number[] => [7, 6, 5, 4, 3, 2, 1, 0].map((k) => Number((v >> BigInt(k * 16)) & 0xffffn));

/**
 * Any valid RFC 4291 spelling of an IPv6 value: upper/lower/mixed case, optional leading zeros,
 * `::` over any zero run (including a single group) or none, optionally an IPv4 tail.
 */
const v6Spelling = fc
  .record({
    value: v6Value,
    pad: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
    upper: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
    runPick: fc.nat(),
    compress: fc.boolean(),
    v4Tail: fc.boolean(),
  })
  .map(({ value, pad, upper, runPick, compress, v4Tail }) => {
    const gs = groupsOf(value);
    const tail = v4Tail ? 6 : 8; // groups written in hex
    const texts = gs.slice(0, tail).map((g, k) => {
      const h = g.toString(16);
      const t = '0'.repeat(Math.max(0, Math.min(4 - h.length, pad[k] ?? 0))) + h;
      return upper[k] ? t.toUpperCase() : t;
    });
    const v4Text = `${gs[6]! >> 8}.${gs[6]! & 255}.${gs[7]! >> 8}.${gs[7]! & 255}`;
    // Zero runs [start, end) among the hex groups.
    const runs: Array<[number, number]> = [];
    for (let k = 0; k < tail; k++) {
      if (gs[k] !== 0) continue;
      for (let e = k + 1; e <= tail && gs[e - 1] === 0; e++) runs.push([k, e]);
    }
    let text: string;
    if (compress && runs.length > 0) {
      const [s, e] = runs[runPick % runs.length]!;
      const head = texts.slice(0, s).join(':');
      const rest = texts.slice(e);
      if (v4Tail) rest.push(v4Text);
      text = `${head}::${rest.join(':')}`;
    } else text = [...texts, ...(v4Tail ? [v4Text] : [])].join(':');
    return { value, text };
  });

const fragments = [
  '0', '1', '00', '001', '0001', '00001', 'ffff', 'FFFF', 'fFfF', 'abcd', 'g', 'G', ':', ':', ':', '::', '::', ':::',
  '.', '1.2.3.4', '01.2.3.4', '1.2.3.04', '255.255.255.255', '256.1.1.1', '1.2.3', '0.0.0.0', '%eth0', '%', '%1',
  ' ', '[', ']', '/', '-', '+', '0x1', '\u0661', '1e0', '\n',
];
/** Strings near the valid forms: valid fragments glued together, most of them invalid. */
const nearValid = fc.oneof(
  fc.array(fc.constantFrom(...fragments), { minLength: 1, maxLength: 12 }).map((xs) => xs.join('')),
  fc.string({ unit: fc.constantFrom('0', '1', 'f', 'F', ':', '.', '2', '5'), maxLength: 46 }),
  // One edit (insert, delete, replace) of a valid spelling.
  fc
    .tuple(fc.oneof(v6Spelling.map((s) => s.text), v4Value.map((v) => formatIp({ family: 4, value: v }))), fc.nat(), fc.constantFrom(...fragments), fc.integer({ min: 0, max: 2 }))
    .map(([t, at, frag, op]) => {
      const k = at % (t.length + 1);
      if (op === 0) return t.slice(0, k) + frag + t.slice(k);
      if (op === 1) return t.slice(0, k) + t.slice(k + 1);
      return t.slice(0, k) + frag + t.slice(k + 1);
    }),
);

describe('parseIp against net.isIP', () => {
  it('accepts exactly what net.isIP accepts, minus zone ids, with the same family (property)', () => {
    fc.assert(
      fc.property(nearValid, (text) => {
        const a = parseIp(text);
        const ref = net.isIP(text);
        if (text.includes('%')) assert.equal(a, undefined, `zone id must be rejected: ${JSON.stringify(text)}`);
        else assert.equal(a?.family ?? 0, ref, JSON.stringify(text));
      }),
      { numRuns: 20000 },
    );
  });

  it('parses every valid spelling of a value to that value (property)', () => {
    fc.assert(
      fc.property(v6Spelling, ({ value, text }) => {
        assert.equal(net.isIP(text), 6, `reference must accept ${text}`);
        assert.deepEqual(parseIp(text), { family: 6, value }, text);
      }),
      { numRuns: 5000 },
    );
  });

  it('table: forms RFC 4291 allows, forms it does not, and the zone-id decision', () => {
    const good: Array<[string, string]> = [
      ['::', '::'],
      ['::1', '::1'],
      ['1::', '1::'],
      ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'], // `::` for a single group
      ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
      ['0001::', '1::'],
      ['FE80::1', 'fe80::1'],
      ['::ffff:1.2.3.4', '::ffff:1.2.3.4'],
      ['::1.2.3.4', '::102:304'],
      ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['0000:0000:0000:0000:0000:ffff:255.255.255.255', '::ffff:255.255.255.255'],
    ];
    for (const [text, canon] of good) {
      assert.equal(net.isIP(text), 6, `reference accepts ${text}`);
      assert.equal(formatIp(mustParse(text)), canon, text);
    }
    const bad = [
      '', ':', ':::', '1:::2', '1::2::3', ':1::', '1::2:', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8::',
      '1:2:3:4:5:6:7::8', '1:2:3:4:5:6::1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '00001::', 'g::', '::ffff:01.2.3.4',
      '::ffff:1.2.3.04', '::ffff:1.2.3', '::ffff:1.2.3.256', '1.2.3.4::', '::1.2.3.4:1', '[::1]', ' ::1', '::1 ', '::1\n',
      '1.2.3.4%eth0', '::%', '01.2.3.4', '1.2.3.04', '1.2.3', '0x1.2.3.4', '1.2.3.4:80',
    ];
    for (const text of bad) {
      assert.equal(net.isIP(text), 0, `reference rejects ${JSON.stringify(text)}`);
      assert.equal(parseIp(text), undefined, JSON.stringify(text));
    }
    for (const text of ['fe80::1%eth0', 'fe80::1%1', 'fe80::%eth0', '1::%x']) {
      assert.equal(net.isIP(text), 6, `reference accepts zone ids: ${text}`);
      assert.equal(parseIp(text), undefined, `ip.ts rejects zone ids: ${text}`);
    }
  });

  it('parseIpOf keeps one family', () => {
    assert.deepEqual(parseIpOf(4, '192.0.2.1'), { family: 4, value: 0xc0000201n });
    assert.equal(parseIpOf(6, '192.0.2.1'), undefined);
    assert.equal(parseIpOf(4, '::ffff:192.0.2.1'), undefined);
    assert.deepEqual(parseIpOf(6, '2001:db8::1'), { family: 6, value: (0x20010db8n << 96n) | 1n });
  });
});

describe('formatIp: RFC 5952', () => {
  it('table: section 4 rules and section 2 spellings', () => {
    const cases: Array<[string, string]> = [
      ['2001:0db8::0001', '2001:db8::1'], // 4.1 leading zeros
      ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'], // 4.2.1 shorten as much as possible
      ['2001:db8::0:1', '2001:db8::1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // 4.2.2 one zero group is not compressed
      ['2001:db8::1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // 4.2.3 longest run
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // 4.2.3 first run on a tie
      ['2001:DB8::1', '2001:db8::1'], // 4.3 lower case
      ['2001:db8:aaaa:bbbb:cccc:dddd:eeee:AAAA', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['1:0:0:0:0:0:0:0', '1::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['1:0:0:0:0:0:0:1', '1::1'],
      ['0:1:0:1:0:1:0:1', '0:1:0:1:0:1:0:1'],
      ['::ffff:c000:0201', '::ffff:192.0.2.1'], // 5: IPv4-mapped in mixed notation
      ['::FFFF:192.0.2.1', '::ffff:192.0.2.1'],
      ['::ffff:0:0', '::ffff:0.0.0.0'],
      ['::192.0.2.1', '::c000:201'], // deprecated IPv4-compatible: plain hex
      ['::ffff:0:192.0.2.1', '::ffff:0:c000:201'], // SIIT translated: plain hex
      ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
    ];
    for (const [text, canon] of cases) assert.equal(formatIp(mustParse(text)), canon, text);
    for (const text of ['2001:db8:0:0:1:0:0:1', '2001:0db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', '2001:db8::0:1:0:0:1',
      '2001:0db8::1:0:0:1', '2001:db8:0:0:1::1', '2001:db8:0000:0:1::1', '2001:DB8:0:0:1::1']) {
      assert.equal(formatIp(mustParse(text)), '2001:db8::1:0:0:1', text);
    }
  });

  it('matches URL (non-mapped) and SocketAddress (mapped) canonical text (property)', () => {
    fc.assert(
      fc.property(v6, (a) => {
        const text = formatIp(a);
        if (isV4Mapped(a)) assert.equal(text, new net.SocketAddress({ address: text, family: 'ipv6' }).address);
        else assert.equal(text, urlHost(text));
        assert.equal(text, text.toLowerCase());
      }),
      { numRuns: 5000 },
    );
  });

  it('canonicalises any spelling the same way URL does (property)', () => {
    fc.assert(
      fc.property(v6Spelling, ({ value, text }) => {
        const canon = formatIp(mustParse(text));
        if (isV4Mapped({ family: 6, value })) assert.equal(urlHost(canon), urlHost(text));
        else assert.equal(canon, urlHost(text));
      }),
      { numRuns: 3000 },
    );
  });

  it('format∘parse is idempotent and parse∘format is the identity (property)', () => {
    fc.assert(
      fc.property(anyIp, (a) => {
        const text = formatIp(a);
        assert.deepEqual(parseIp(text), a);
        assert.equal(formatIp(mustParse(text)), text);
      }),
      { numRuns: 5000 },
    );
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: MAX6 }), (value) => ipEquals(mustParse(formatIp({ family: 6, value })), { family: 6, value })), RUNS);
  });

  it('IPv4 text is the dotted quad net.isIPv4 accepts (property)', () => {
    fc.assert(
      fc.property(v4, (a) => {
        const text = formatIp(a);
        assert.ok(net.isIPv4(text));
        assert.equal(text, new net.SocketAddress({ address: text, family: 'ipv4' }).address);
      }),
      RUNS,
    );
  });
});

describe('prefixes against net.BlockList', () => {
  it('prefixContains agrees with BlockList.check within a family (property)', () => {
    fc.assert(
      fc.property(
        family.chain((f) =>
          fc.tuple(
            prefixOfFamily(f),
            addrOf(f),
            fc.nat(),
          ),
        ),
        ([p, a, k]) => {
          // Half the time, an address inside the prefix.
          const inside = k % 2 === 0 ? { family: p.family, value: p.network | (a.value & ~prefixMask(p.family, p.prefix)) } : a;
          const mine = prefixContains(p, inside);
          // BlockList maps IPv4 onto ::ffff:0:0/96, so IPv6 prefixes are compared on IPv6 addresses only.
          assert.equal(mine, blockListOf(p).check(formatIp(inside), refFamily(inside.family)), `${formatPrefix(p)} ∋ ${formatIp(inside)}`);
          if (k % 2 === 0) assert.ok(mine);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('IPv4-mapped addresses are never inside an IPv4 prefix (BlockList says they are)', () => {
    fc.assert(
      fc.property(prefixOfFamily(4), v4, (p, a) => {
        const mapped: Ip = { family: 6, value: (0xffffn << 32n) | a.value };
        assert.equal(prefixContains(p, mapped), false);
        assert.equal(blockListOf(p).check(formatIp(mapped), 'ipv6'), prefixContains(p, a), 'BlockList treats mapped as IPv4');
        assert.deepEqual(unmapV4(mapped), a);
        assert.equal(prefixContains(p, unmapV4(mapped)), prefixContains(p, a));
        assert.equal(ipEquals(mapped, a), false);
      }),
      RUNS,
    );
    // And an IPv4 address is not inside an IPv6 prefix, although BlockList matches it against ::/80.
    const p = mustPrefix('::/80');
    assert.equal(prefixContains(p, mustParse('192.0.2.1')), false);
    assert.equal(blockListOf(p).check('192.0.2.1', 'ipv4'), true);
  });

  it('prefixContainsPrefix / prefixesOverlap agree with BlockList and interval math (property)', () => {
    fc.assert(
      fc.property(
        family.chain((f) => fc.tuple(prefixOfFamily(f), prefixOfFamily(f), fc.integer({ min: 0, max: familyBits(f) }), fc.boolean())),
        ([a, b0, len, nest]) => {
          // Often b inside a: a random sub-prefix of a.
          const b = nest && len >= a.prefix ? prefixOf({ family: a.family, value: a.network | (b0.network & ~prefixMask(a.family, a.prefix)) }, len) : b0;
          const lastA = lastAddress(a).value;
          const lastB = lastAddress(b).value;
          const intervalOverlap = a.network <= lastB && b.network <= lastA;
          const intervalInside = b.network >= a.network && lastB <= lastA;
          assert.equal(prefixesOverlap(a, b), intervalOverlap);
          assert.equal(prefixesOverlap(a, b), prefixesOverlap(b, a));
          assert.equal(prefixContainsPrefix(a, b), intervalInside);
          const bl = blockListOf(a);
          assert.equal(
            prefixContainsPrefix(a, b),
            bl.check(formatIp(networkOf(b)), refFamily(b.family)) && bl.check(formatIp(lastAddress(b)), refFamily(b.family)),
          );
          assert.equal(prefixesOverlap(a, b), bl.check(formatIp(networkOf(b)), refFamily(b.family)) || blockListOf(b).check(formatIp(networkOf(a)), refFamily(a.family)));
          assert.equal(prefixEquals(a, b), formatPrefix(a) === formatPrefix(b));
          assert.equal(prefixEquals(a, b), prefixContainsPrefix(a, b) && prefixContainsPrefix(b, a));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('prefixes of different families never contain, overlap or equal each other', () => {
    const v4All = mustPrefix('0.0.0.0/0');
    const v6All = mustPrefix('::/0');
    assert.equal(prefixesOverlap(v4All, v6All), false);
    assert.equal(prefixContainsPrefix(v6All, v4All), false);
    assert.equal(prefixEquals(mustPrefix('0.0.0.0/0'), mustPrefix('::/0')), false);
    assert.equal(prefixContains(v6All, mustParse('192.0.2.1')), false);
  });

  it('equality and order', () => {
    fc.assert(
      fc.property(anyIp, anyIp, (a, b) => {
        assert.equal(ipEquals(a, b), compareIp(a, b) === 0);
        assert.equal(ipEquals(a, b), formatIp(a) === formatIp(b));
        assert.ok(Math.sign(compareIp(a, b)) + Math.sign(compareIp(b, a)) === 0);
        if (a.family !== b.family) assert.equal(compareIp(a, b) < 0, a.family === 4);
      }),
      RUNS,
    );
  });
});

describe('parsePrefix', () => {
  it('table', () => {
    assert.deepEqual(parsePrefix('fd00:10:244::/56', true), {
      family: 6, network: 0xfd000010_0244_0000n << 64n, prefix: 56, address: { family: 6, value: 0xfd000010_0244_0000n << 64n },
    });
    const loose = parsePrefix('fd00:10:244:1::1/64');
    assert.ok(loose);
    assert.equal(formatPrefix(loose), 'fd00:10:244:1::/64');
    assert.equal(formatIp(loose.address), 'fd00:10:244:1::1');
    assert.equal(parsePrefix('fd00:10:244:1::1/64', true), undefined);
    assert.equal(formatPrefix(mustPrefix('::/0')), '::/0');
    assert.equal(formatPrefix(mustPrefix('10.244.0.0/16')), '10.244.0.0/16');
    assert.equal(formatPrefix(mustPrefix('::ffff:192.0.2.0/120')), '::ffff:192.0.2.0/120');
    for (const bad of ['::/129', '1.2.3.4/33', '/24', '1.2.3.4/024', '::/00', '1.2.3.4/ 24', '1.2.3.4/24 ', 'fe80::1%eth0/64', '::', '2001:db8::/64/64', '2001:db8::/-1', '2001:db8::/+64']) {
      assert.equal(parsePrefix(bad), undefined, bad);
    }
    assert.equal(parsePrefixOf(4, 'fd00::/8'), undefined);
    assert.equal(parsePrefixOf(6, '10.0.0.0/8'), undefined);
    assert.equal(parsePrefixOf(6, 'fd00::/8')?.prefix, 8);
  });

  it('round trips and masks host bits; strict accepts exactly clean networks (property)', () => {
    fc.assert(
      fc.property(anyIp, fc.nat(), (a, n) => {
        const len = n % (familyBits(a.family) + 1);
        const text = `${formatIp(a)}/${len}`;
        const loose = parsePrefix(text);
        assert.ok(loose, text);
        assert.deepEqual(loose.address, a);
        assert.equal(loose.network, a.value & prefixMask(a.family, len));
        assert.equal(parsePrefix(text, true) !== undefined, loose.network === a.value);
        const p = prefixOf(a, len);
        assert.ok(prefixEquals(mustPrefix(formatPrefix(p)), p));
        // BlockList accepts the same network and length.
        assert.doesNotThrow(() => blockListOf(p));
      }),
      RUNS,
    );
  });
});

describe('sub-prefixes', () => {
  const nested = family.chain((f) =>
    prefixOfFamily(f).chain((p) =>
      fc.tuple(fc.constant(p), fc.integer({ min: p.prefix, max: Math.min(familyBits(f), p.prefix + 40) }), addrOf(f)),
    ),
  );

  it('nth / index round trip, counts, and nth lies inside (property)', () => {
    fc.assert(
      fc.property(nested, fc.bigInt({ min: 0n, max: MAX6 }), ([p, len, a], r) => {
        const count = subprefixCount(p, len);
        assert.equal(count, 1n << BigInt(len - p.prefix));
        const index = r % count;
        const s = nthSubprefix(p, len, index);
        assert.ok(s);
        assert.equal(s.prefix, len);
        assert.ok(prefixContainsPrefix(p, s));
        assert.equal(subprefixIndex(p, len, networkOf(s)), index);
        assert.equal(subprefixIndex(p, len, lastAddress(s)), index);
        assert.equal(nthSubprefix(p, len, count), undefined);
        assert.equal(nthSubprefix(p, len, -1n), undefined);
        // An address inside p: the sub-prefix at its index holds it.
        const inside: Ip = { family: p.family, value: p.network | (a.value & ~prefixMask(p.family, p.prefix)) };
        const k = subprefixIndex(p, len, inside);
        assert.ok(k !== undefined && k >= 0n && k < count);
        assert.ok(prefixContains(nthSubprefix(p, len, k)!, inside));
        if (!prefixContains(p, a)) assert.equal(subprefixIndex(p, len, a), undefined);
        // Sizes add up.
        assert.equal(prefixSize(s) * count, prefixSize(p));
      }),
      { numRuns: 2000 },
    );
  });

  it('lengths outside [prefix, bits] have no sub-prefixes', () => {
    const p = mustPrefix('fd00:10:244::/56');
    assert.equal(subprefixCount(p, 55), 0n);
    assert.equal(subprefixCount(p, 129), 0n);
    assert.equal(nthSubprefix(p, 55, 0n), undefined);
    assert.equal(nthSubprefix(p, 129, 0n), undefined);
    assert.equal(subprefixIndex(p, 55, mustParse('fd00:10:244::1')), undefined);
    assert.deepEqual([...subprefixes(p, 55)], []);
    assert.equal(subprefixCount(p, 64), 256n);
    assert.equal(formatPrefix(nthSubprefix(p, 64, 1n)!), 'fd00:10:244:1::/64');
    assert.equal(formatPrefix(nthSubprefix(p, 64, 255n)!), 'fd00:10:244:ff::/64');
    assert.equal(subprefixCount(mustPrefix('::/0'), 128), 1n << 128n);
    assert.equal(subprefixCount(mustPrefix('10.244.0.0/16'), 24), 256n);
  });

  it('iteration is in order, contiguous, complete, and starts at `from` (property)', () => {
    fc.assert(
      fc.property(
        family.chain((f) => prefixOfFamily(f).chain((p) => fc.tuple(fc.constant(p), fc.integer({ min: p.prefix, max: Math.min(familyBits(f), p.prefix + 6) })))),
        fc.bigInt({ min: -3n, max: 70n }),
        ([p, len], from) => {
          const all = [...subprefixes(p, len)];
          assert.equal(BigInt(all.length), subprefixCount(p, len));
          for (const [k, s] of all.entries()) {
            assert.ok(prefixEquals(s, nthSubprefix(p, len, BigInt(k))!));
            if (k > 0) assert.equal(s.network, lastAddress(all[k - 1]!).value + 1n);
          }
          assert.equal(all[0]!.network, p.network);
          assert.equal(lastAddress(all[all.length - 1]!).value, lastAddress(p).value);
          const tail = [...subprefixes(p, len, from)];
          assert.deepEqual(tail, all.slice(from < 0n ? 0 : Number(from)));
        },
      ),
      RUNS,
    );
  });

  it('iteration of a huge space is lazy', () => {
    const it6 = subprefixes(mustPrefix('2001:db8::/32'), 64, (1n << 32n) - 2n);
    assert.equal(formatPrefix(it6.next().value as IpPrefix), '2001:db8:ffff:fffe::/64');
    assert.equal(formatPrefix(it6.next().value as IpPrefix), '2001:db8:ffff:ffff::/64');
    assert.equal(it6.next().done, true);
  });
});

describe('usableRange', () => {
  it('table: IPv4 /24 /30 /31 /32, IPv6 /64 /126 /127 /128', () => {
    const cases: Array<[string, string, string]> = [
      ['10.244.1.0/24', '10.244.1.1', '10.244.1.254'],
      ['192.0.2.0/30', '192.0.2.1', '192.0.2.2'],
      ['192.0.2.0/31', '192.0.2.0', '192.0.2.1'],
      ['192.0.2.7/32', '192.0.2.7', '192.0.2.7'],
      ['0.0.0.0/0', '0.0.0.1', '255.255.255.254'],
      ['fd00:10:244:1::/64', 'fd00:10:244:1::1', 'fd00:10:244:1:ffff:ffff:ffff:ffff'], // no broadcast in IPv6
      ['2001:db8::/126', '2001:db8::1', '2001:db8::3'], // Subnet-Router anycast (::0) skipped
      ['2001:db8::/127', '2001:db8::', '2001:db8::1'], // RFC 6164
      ['2001:db8::5/128', '2001:db8::5', '2001:db8::5'],
      ['::/0', '::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ];
    for (const [p, first, last] of cases) {
      const r = usableRange(mustPrefix(p));
      assert.equal(formatIp(r.first), first, p);
      assert.equal(formatIp(r.last), last, p);
    }
  });

  it('lies inside the prefix and skips exactly the reserved addresses (property)', () => {
    fc.assert(
      fc.property(anyPrefix, (p) => {
        const { first, last } = usableRange(p);
        assert.ok(prefixContains(p, first) && prefixContains(p, last));
        assert.ok(first.value <= last.value);
        const bits = familyBits(p.family);
        const skipped = p.family === 4 ? (p.prefix >= 31 ? 0n : 2n) : p.prefix >= bits - 1 ? 0n : 1n;
        assert.equal(last.value - first.value + 1n, prefixSize(p) - skipped);
        if (p.family === 6) assert.equal(last.value, lastAddress(p).value);
      }),
      RUNS,
    );
  });
});

describe('addToIp and constructors', () => {
  it('stays within the family, undefined past either end (property)', () => {
    fc.assert(
      fc.property(anyIp, fc.bigInt({ min: -(1n << 129n), max: 1n << 129n }), (a, n) => {
        const b = addToIp(a, n);
        const max = a.family === 4 ? MAX4 : MAX6;
        const v = a.value + n;
        if (v < 0n || v > max) assert.equal(b, undefined);
        else {
          assert.deepEqual(b, { family: a.family, value: v });
          assert.deepEqual(addToIp(b!, -n), a);
        }
      }),
      RUNS,
    );
    assert.equal(addToIp(mustParse('255.255.255.255'), 1n), undefined);
    assert.equal(addToIp(mustParse('0.0.0.0'), -1n), undefined);
    assert.equal(addToIp(mustParse('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), 1n), undefined);
    assert.equal(addToIp(mustParse('::'), -1n), undefined);
    assert.equal(formatIp(addToIp(mustParse('255.255.255.254'), 1n)!), '255.255.255.255');
    assert.equal(formatIp(addToIp(mustParse('2001:db8::ffff'), 1n)!), '2001:db8::1:0');
  });

  it('ip() range-checks; fromV4Number/toV4Number bridge the IPv4 number code', () => {
    assert.throws(() => ip(4, 1n << 32n), RangeError);
    assert.throws(() => ip(4, -1n), RangeError);
    assert.throws(() => ip(6, 1n << 128n), RangeError);
    assert.deepEqual(ip(6, MAX6), { family: 6, value: MAX6 });
    assert.throws(() => toV4Number(mustParse('::1')), RangeError);
    assert.throws(() => prefixOf(mustParse('::1'), 129), RangeError);
    assert.throws(() => prefixOf(mustParse('1.2.3.4'), 33), RangeError);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        const a = fromV4Number(n);
        assert.equal(a.family, 4);
        assert.equal(toV4Number(a), n);
      }),
      RUNS,
    );
  });

  it('formatHostPort', () => {
    assert.equal(formatHostPort(mustParse('192.0.2.1'), 80), '192.0.2.1:80');
    assert.equal(formatHostPort(mustParse('2001:DB8:0::1'), 9402), '[2001:db8::1]:9402');
    fc.assert(fc.property(anyIp, fc.integer({ min: 0, max: 65535 }), (a, port) => {
      const u = new URL(`http://${formatHostPort(a, port)}/`);
      assert.equal(u.port === '' ? 80 : Number(u.port), port);
      assert.deepEqual(mustParse(u.hostname.replace(/^\[|\]$/g, '')), a);
    }), RUNS);
  });

  it('isLoopback', () => {
    for (const t of ['127.0.0.1', '127.255.255.254', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:127.1.2.3']) assert.ok(isLoopback(mustParse(t)), t);
    for (const t of ['126.0.0.1', '128.0.0.1', '::', '::2', '::127.0.0.1', '::ffff:128.0.0.1', '1::1', 'fe80::1']) assert.ok(!isLoopback(mustParse(t)), t);
  });

  it('isV4Mapped, unmapV4, isLinkLocal', () => {
    assert.ok(isV4Mapped(mustParse('::ffff:192.0.2.1')));
    assert.ok(!isV4Mapped(mustParse('::192.0.2.1')));
    assert.ok(!isV4Mapped(mustParse('192.0.2.1')));
    assert.ok(!isV4Mapped(mustParse('1::ffff:192.0.2.1')));
    assert.deepEqual(unmapV4(mustParse('::ffff:192.0.2.1')), mustParse('192.0.2.1'));
    assert.deepEqual(unmapV4(mustParse('2001:db8::1')), mustParse('2001:db8::1'));
    for (const t of ['fe80::1', 'fe80::', 'febf:ffff::1', '169.254.0.1', '169.254.255.255']) assert.ok(isLinkLocal(mustParse(t)), t);
    for (const t of ['fec0::1', 'fe7f::1', '::1', '169.253.0.1', '169.255.0.1', '::ffff:169.254.0.1']) assert.ok(!isLinkLocal(mustParse(t)), t);
  });
});
