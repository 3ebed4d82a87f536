import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  broadcast,
  contains,
  containsCidr,
  formatCidr,
  formatIPv4,
  hostRange,
  isMac,
  macForIPv4,
  maskOf,
  overlaps,
  parseCidr,
  parseIPv4,
  size,
  type Cidr,
} from './ipv4.js';

const RUNS = { numRuns: 500 };
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const prefix = fc.integer({ min: 0, max: 32 });
/** A well-formed CIDR: any address, masked to any prefix. */
const cidr = fc.tuple(uint32, prefix).map(([a, p]): Cidr => ({ network: (a & maskOf(p)) >>> 0, prefix: p }));

function cidrOf(text: string): Cidr {
  const c = parseCidr(text);
  assert.ok(c, `test setup: ${text} must parse`);
  return { network: c.network, prefix: c.prefix };
}

describe('parseIPv4 / formatIPv4', () => {
  it('parses valid dotted quads', () => {
    const cases: Array<[string, number]> = [
      ['0.0.0.0', 0],
      ['255.255.255.255', 0xffffffff],
      ['10.244.1.1', 0x0af40101],
      ['192.0.2.1', 0xc0000201],
      ['1.2.3.4', 0x01020304],
      ['100.64.0.0', 0x64400000],
      ['249.250.199.9', 0xf9fac709],
    ];
    for (const [text, value] of cases) {
      assert.equal(parseIPv4(text), value, text);
      assert.equal(formatIPv4(value), text, text);
    }
  });

  it('rejects leading zeros, out-of-range octets, wrong part counts and junk', () => {
    const bad = [
      '01.2.3.4',
      '1.2.3.04',
      '1.2.3.00',
      '00.0.0.0',
      '256.0.0.0',
      '1.2.3.256',
      '1.2.3.999',
      '1.2.3.-1',
      '1.2.3',
      '1.2.3.4.5',
      '1.2..4',
      '',
      '.',
      '...',
      '1.2.3.4.',
      '.1.2.3.4',
      ' 1.2.3.4',
      '1.2.3.4 ',
      '1.2.3.4\n',
      '1.2.3.4/24',
      '0x1.2.3.4',
      '1.2.3.a',
      '1.2.3.+4',
      '1.2.3.4e0',
      '١.2.3.4', // Arabic-Indic digit one
      '::1',
    ];
    for (const text of bad) assert.equal(parseIPv4(text), undefined, JSON.stringify(text));
  });

  it('round-trips every uint32 (property)', () => {
    fc.assert(
      fc.property(uint32, (v) => parseIPv4(formatIPv4(v)) === v),
      { numRuns: 2000 },
    );
  });

  it('round-trips every canonical dotted quad text (property)', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    fc.assert(
      fc.property(fc.tuple(octet, octet, octet, octet), (o) => {
        const text = o.join('.');
        const v = parseIPv4(text);
        return v !== undefined && formatIPv4(v) === text;
      }),
      RUNS,
    );
  });

  it('formats negative and oversized numbers as their low 32 bits', () => {
    assert.equal(formatIPv4(-1), '255.255.255.255');
    assert.equal(formatIPv4(0x1_0000_0001), '0.0.0.1');
  });
});

describe('maskOf', () => {
  it('gives the netmask for each prefix', () => {
    assert.equal(maskOf(0), 0);
    assert.equal(maskOf(1), 0x80000000);
    assert.equal(maskOf(8), 0xff000000);
    assert.equal(maskOf(24), 0xffffff00);
    assert.equal(maskOf(31), 0xfffffffe);
    assert.equal(maskOf(32), 0xffffffff);
  });

  it('is always non-negative with exactly `prefix` leading ones (property)', () => {
    fc.assert(
      fc.property(prefix, (p) => {
        const m = maskOf(p);
        return m >= 0 && m.toString(2).padStart(32, '0') === '1'.repeat(p) + '0'.repeat(32 - p);
      }),
    );
  });
});

describe('parseCidr', () => {
  it('parses address, network and prefix (non-strict keeps host bits in `address`)', () => {
    assert.deepEqual(parseCidr('10.244.1.1/24'), { network: 0x0af40100, prefix: 24, address: 0x0af40101 });
    assert.deepEqual(parseCidr('10.244.1.0/24'), { network: 0x0af40100, prefix: 24, address: 0x0af40100 });
    assert.deepEqual(parseCidr('0.0.0.0/0'), { network: 0, prefix: 0, address: 0 });
    assert.deepEqual(parseCidr('1.2.3.4/0'), { network: 0, prefix: 0, address: 0x01020304 });
    assert.deepEqual(parseCidr('255.255.255.255/32'), { network: 0xffffffff, prefix: 32, address: 0xffffffff });
  });

  it('strict mode rejects host bits, accepts a clean network', () => {
    assert.equal(parseCidr('10.244.1.1/24', true), undefined);
    assert.equal(parseCidr('1.2.3.4/0', true), undefined);
    assert.equal(parseCidr('10.0.0.1/31', true), undefined);
    assert.deepEqual(parseCidr('10.244.1.0/24', true), { network: 0x0af40100, prefix: 24, address: 0x0af40100 });
    assert.deepEqual(parseCidr('10.0.0.1/32', true), { network: 0x0a000001, prefix: 32, address: 0x0a000001 });
    assert.deepEqual(parseCidr('0.0.0.0/0', true), { network: 0, prefix: 0, address: 0 });
  });

  it('rejects malformed input', () => {
    const bad = [
      '10.0.0.0',
      '10.0.0.0/',
      '10.0.0.0/33',
      '10.0.0.0/99',
      '10.0.0.0/-1',
      '10.0.0.0/08',
      '10.0.0.0/00',
      '10.0.0.0/+8',
      '10.0.0.0/8 ',
      '10.0.0.0/ 8',
      '10.0.0.0/8/8',
      '10.0.0/8',
      '010.0.0.0/8',
      '/8',
      '',
      '10.0.0.0/255.0.0.0',
    ];
    for (const text of bad) {
      assert.equal(parseCidr(text), undefined, JSON.stringify(text));
      assert.equal(parseCidr(text, true), undefined, `${JSON.stringify(text)} strict`);
    }
  });

  it('format/parse round trip (property)', () => {
    fc.assert(
      fc.property(cidr, (c) => {
        const back = parseCidr(formatCidr(c), true);
        return back !== undefined && back.network === c.network && back.prefix === c.prefix;
      }),
      RUNS,
    );
  });

  it('non-strict parse masks host bits; strict accepts exactly when there are none (property)', () => {
    fc.assert(
      fc.property(uint32, prefix, (a, p) => {
        const text = `${formatIPv4(a)}/${p}`;
        const loose = parseCidr(text);
        const strict = parseCidr(text, true);
        assert.ok(loose);
        assert.equal(loose.address, a);
        assert.equal(loose.prefix, p);
        assert.equal(loose.network, (a & maskOf(p)) >>> 0);
        assert.equal(strict !== undefined, loose.network === a);
      }),
      RUNS,
    );
  });
});

describe('size / broadcast / contains', () => {
  it('table', () => {
    const c = cidrOf('10.244.1.0/24');
    assert.equal(size(c), 256);
    assert.equal(formatIPv4(broadcast(c)), '10.244.1.255');
    assert.equal(size(cidrOf('0.0.0.0/0')), 2 ** 32);
    assert.equal(broadcast(cidrOf('0.0.0.0/0')), 0xffffffff);
    assert.equal(broadcast(cidrOf('255.255.255.0/24')), 0xffffffff);
    assert.equal(size(cidrOf('1.2.3.4/32')), 1);
    assert.equal(formatIPv4(broadcast(cidrOf('1.2.3.4/32'))), '1.2.3.4');
    assert.ok(contains(c, parseIPv4('10.244.1.77') as number));
    assert.ok(!contains(c, parseIPv4('10.244.2.0') as number));
    assert.ok(!contains(c, parseIPv4('10.244.0.255') as number));
    assert.ok(contains(cidrOf('0.0.0.0/0'), 0xffffffff));
  });

  it('a subnet contains its network and broadcast, not the neighbours outside (property)', () => {
    fc.assert(
      fc.property(cidr, (c) => {
        const b = broadcast(c);
        assert.ok(contains(c, c.network));
        assert.ok(contains(c, b));
        assert.ok(b >= c.network && b <= 0xffffffff);
        if (b < 0xffffffff) assert.ok(!contains(c, b + 1));
        if (c.network > 0) assert.ok(!contains(c, c.network - 1));
      }),
      RUNS,
    );
  });

  it('contains agrees with the numeric interval [network, broadcast] (property)', () => {
    fc.assert(
      fc.property(cidr, uint32, (c, ip) => contains(c, ip) === (ip >= c.network && ip <= broadcast(c))),
      RUNS,
    );
  });
});

describe('containsCidr / overlaps', () => {
  it('table', () => {
    const n16 = cidrOf('10.244.0.0/16');
    const n24 = cidrOf('10.244.1.0/24');
    const other = cidrOf('10.245.0.0/16');
    assert.ok(containsCidr(n16, n24));
    assert.ok(!containsCidr(n24, n16));
    assert.ok(containsCidr(n24, n24));
    assert.ok(!containsCidr(n16, other));
    assert.ok(overlaps(n16, n24));
    assert.ok(overlaps(n24, n16));
    assert.ok(!overlaps(n16, other));
    assert.ok(overlaps(cidrOf('0.0.0.0/0'), other));
    assert.ok(!overlaps(cidrOf('10.0.0.0/31'), cidrOf('10.0.0.2/31')));
  });

  it('overlaps is symmetric and reflexive (property)', () => {
    fc.assert(
      fc.property(cidr, cidr, (a, b) => overlaps(a, b) === overlaps(b, a) && overlaps(a, a)),
      RUNS,
    );
  });

  it('containsCidr implies overlaps; overlaps means one contains the other (property)', () => {
    fc.assert(
      fc.property(cidr, cidr, (a, b) => {
        if (containsCidr(a, b)) assert.ok(overlaps(a, b));
        assert.equal(overlaps(a, b), containsCidr(a, b) || containsCidr(b, a));
      }),
      RUNS,
    );
  });

  it('containsCidr agrees with the interval definition (property)', () => {
    // Bias towards related pairs: b is often a subnet or supernet of a.
    const related = fc.tuple(cidr, prefix).map(([a, p]): [Cidr, Cidr] => [a, { network: (a.network & maskOf(p)) >>> 0, prefix: p }]);
    fc.assert(
      fc.property(fc.oneof(related, fc.tuple(cidr, cidr)), ([a, b]) => {
        const inside = b.network >= a.network && broadcast(b) <= broadcast(a);
        assert.equal(containsCidr(a, b), inside);
        const disjoint = broadcast(a) < b.network || broadcast(b) < a.network;
        assert.equal(overlaps(a, b), !disjoint);
      }),
      RUNS,
    );
  });
});

describe('hostRange', () => {
  const range = (text: string): [string, string] => {
    const r = hostRange(cidrOf(text));
    return [formatIPv4(r.first), formatIPv4(r.last)];
  };
  it('skips network and broadcast, except on /31 and /32 (RFC 3021)', () => {
    assert.deepEqual(range('10.244.1.0/24'), ['10.244.1.1', '10.244.1.254']);
    assert.deepEqual(range('10.244.0.0/16'), ['10.244.0.1', '10.244.255.254']);
    assert.deepEqual(range('192.0.2.8/30'), ['192.0.2.9', '192.0.2.10']);
    assert.deepEqual(range('192.0.2.8/31'), ['192.0.2.8', '192.0.2.9']);
    assert.deepEqual(range('192.0.2.8/32'), ['192.0.2.8', '192.0.2.8']);
  });

  it('lies inside the subnet and holds size-2 addresses below /31 (property)', () => {
    fc.assert(
      fc.property(cidr, (c) => {
        const r = hostRange(c);
        assert.ok(contains(c, r.first) && contains(c, r.last));
        assert.ok(r.first <= r.last);
        assert.equal(r.last - r.first + 1, c.prefix >= 31 ? size(c) : size(c) - 2);
      }),
      RUNS,
    );
  });
});

describe('macForIPv4 / isMac', () => {
  it('Kubernetes-style MAC: 0a:58 + the four octets, lower-case hex', () => {
    assert.equal(macForIPv4(parseIPv4('10.244.1.5') as number), '0a:58:0a:f4:01:05');
    assert.equal(macForIPv4(parseIPv4('10.244.1.5') as number, 0x0e), '0e:58:0a:f4:01:05');
    assert.equal(macForIPv4(0), '0a:58:00:00:00:00');
    assert.equal(macForIPv4(0xffffffff), '0a:58:ff:ff:ff:ff');
  });

  it('is always a well-formed, locally administered unicast MAC that encodes the address (property)', () => {
    fc.assert(
      fc.property(uint32, fc.constantFrom(0x0a, 0x0e), (ip, first) => {
        const mac = macForIPv4(ip, first);
        assert.ok(isMac(mac), mac);
        const bytes = mac.split(':').map((h) => parseInt(h, 16));
        assert.equal(bytes[0], first);
        assert.equal((bytes[0] as number) & 1, 0, 'unicast');
        assert.equal((bytes[0] as number) & 2, 2, 'locally administered');
        assert.equal(parseIPv4(bytes.slice(2).join('.')), ip);
      }),
      RUNS,
    );
  });

  it('isMac rejects malformed text', () => {
    for (const t of ['', '0a:58:0a:f4:01', '0A:58:0A:F4:01:05', '0a-58-0a-f4-01-05', '0a:58:0a:f4:01:05:06', '0a:58:0a:f4:01:5', 'zz:58:0a:f4:01:05']) {
      assert.equal(isMac(t), false, t);
    }
    assert.equal(isMac('0a:58:0a:f4:01:05'), true);
  });
});
