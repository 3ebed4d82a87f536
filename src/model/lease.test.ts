import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SUBNETS_PREFIX } from '../common/constants.js';
import { formatCidr, overlaps, parseCidr, type Cidr } from '../net/ipv4.js';
import { subnetCount, validateClusterConfig, type ClusterConfig } from './cluster-config.js';
import {
  chooseSubnet,
  chooseIpv6Subnet,
  inIpv6ConfigRange,
  ipv6SubnetFromKey,
  ipv6SubnetKey,
  parseIpv6Subnet,
  inConfigRange,
  isExpired,
  leaseKey,
  parseLease,
  parseLeases,
  renderLeaseValue,
  subnetFromKey,
  type Lease,
} from './lease.js';

const cidr = (s: string): Cidr => {
  const c = parseCidr(s, true);
  assert.ok(c, s);
  return { network: c.network, prefix: c.prefix };
};

function config(raw: Record<string, unknown>): ClusterConfig {
  const r = validateClusterConfig(raw);
  assert.ok(r.ok, r.ok ? '' : r.errors.join('; '));
  return r.config;
}

const T0 = Date.parse('2030-01-01T00:00:00.000Z');

function lease(subnet: string, over: Partial<Lease> = {}): Lease {
  const s = cidr(subnet);
  return {
    key: leaseKey(s),
    subnet: s,
    nodeName: 'node-a',
    publicIP: '192.0.2.1',
    backendType: 'vxlan',
    backendData: { vtepMAC: '0e:00:00:00:00:01' },
    expiresAt: T0,
    modRevision: 7,
    ...over,
  };
}

describe('lease keys', () => {
  it('converts subnet <-> key like flannel (10.244.1.0-24)', () => {
    assert.equal(leaseKey(cidr('10.244.1.0/24')), '/twill/subnets/10.244.1.0-24');
    assert.deepEqual(subnetFromKey('/twill/subnets/10.244.1.0-24'), cidr('10.244.1.0/24'));
    for (const bad of ['/twill/subnets/10.244.1.1-24', '/twill/subnets/10.244.1.0-33', '/twill/subnets/10.244.01.0-24',
      '/twill/subnets/10.244.1.0/24', '/twill/other/10.244.1.0-24', '/twill/subnets/x', `${SUBNETS_PREFIX}10.244.1.0-24/x`]) {
      assert.equal(subnetFromKey(bad), undefined, bad);
    }
  });
});

describe('parseLease', () => {
  it('round-trips a lease through its JSON value', () => {
    const l = lease('10.244.3.0/24');
    const value = renderLeaseValue(l);
    assert.deepEqual(JSON.parse(value), {
      subnet: '10.244.3.0/24',
      nodeName: 'node-a',
      publicIP: '192.0.2.1',
      backendType: 'vxlan',
      backendData: { vtepMAC: '0e:00:00:00:00:01' },
      expiresAt: '2030-01-01T00:00:00.000Z',
    });
    assert.deepEqual(parseLease({ key: l.key, value, modRevision: 7 }), { ok: true, lease: l });
  });

  it('accepts extra fields and offset date-times', () => {
    const key = leaseKey(cidr('10.244.3.0/24'));
    const value = JSON.stringify({ ...JSON.parse(renderLeaseValue(lease('10.244.3.0/24'))), expiresAt: '2030-01-01T01:00:00+01:00', future: 1 });
    const r = parseLease({ key, value, modRevision: 1 });
    assert.ok(r.ok);
    assert.equal(r.lease.expiresAt, T0);
  });

  it('reports invalid records with the reason, never throws', () => {
    const key = leaseKey(cidr('10.244.3.0/24'));
    const good = JSON.parse(renderLeaseValue(lease('10.244.3.0/24'))) as Record<string, unknown>;
    const cases: [string, string, RegExp][] = [
      [key, 'not json', /value is not JSON/],
      [key, '[]', /must be an object/],
      [key, JSON.stringify({ ...good, publicIP: '300.1.1.1' }), /^publicIP: is not an IPv4 address$/],
      [key, JSON.stringify({ ...good, nodeName: '' }), /^nodeName: must not be empty$/],
      [key, JSON.stringify({ ...good, expiresAt: 'tomorrow' }), /^expiresAt: is not an ISO 8601 date-time$/],
      [key, JSON.stringify({ ...good, backendData: { vtepMAC: 1 } }), /^backendData.vtepMAC: must be a string, got 1$/],
      [key, JSON.stringify({ ...good, subnet: '10.244.4.0/24' }), /does not match the key/],
      ['/twill/subnets/junk', JSON.stringify(good), /key is not/],
    ];
    for (const [k, value, re] of cases) {
      const r = parseLease({ key: k, value, modRevision: 3 });
      assert.equal(r.ok, false, value);
      if (!r.ok) assert.match(r.error, re);
    }
    const parsed = parseLeases([
      { key, value: 'x', modRevision: 1 },
      { key: '/twill/subnets/junk', value: 'x', modRevision: 2 },
      { key: leaseKey(cidr('10.244.5.0/24')), value: renderLeaseValue(lease('10.244.5.0/24')), modRevision: 3 },
    ]);
    assert.equal(parsed.leases.length, 1);
    assert.deepEqual(
      parsed.invalid.map((i) => [i.key, i.subnet && formatCidr(i.subnet)]),
      [
        [key, '10.244.3.0/24'],
        ['/twill/subnets/junk', undefined],
      ],
    );
  });

  it('isExpired: valid strictly before expiresAt', () => {
    assert.equal(isExpired(lease('10.244.3.0/24'), T0 - 1), false);
    assert.equal(isExpired(lease('10.244.3.0/24'), T0), true);
  });
});

describe('chooseSubnet', () => {
  const cfg22 = config({ Network: '10.244.0.0/22', SubnetLen: 24 });

  it('skips the first subnet by default: a /22 of /24s has 3', () => {
    assert.equal(subnetCount(cfg22), 3);
    const seen = new Set<string>();
    for (const r of [0, 0.34, 0.67, 0.99]) seen.add(formatCidr(chooseSubnet(cfg22, [], () => r) as Cidr));
    assert.deepEqual([...seen].sort(), ['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24']);
  });

  it('scans with wrap-around from the random start, then reports exhaustion', () => {
    const taken = [cidr('10.244.3.0/24')];
    assert.equal(formatCidr(chooseSubnet(cfg22, taken, () => 0.99) as Cidr), '10.244.1.0/24');
    assert.equal(chooseSubnet(cfg22, [...taken, cidr('10.244.1.0/24'), cidr('10.244.2.0/24')], () => 0.5), undefined);
    // a taken block of another size (lease from an older SubnetLen) covers several candidates
    assert.equal(formatCidr(chooseSubnet(cfg22, [cidr('10.244.0.0/23')], () => 0) as Cidr), '10.244.2.0/24');
    assert.equal(chooseSubnet(cfg22, [cidr('10.244.0.0/16')], () => 0), undefined);
  });

  it('honours SubnetMin/SubnetMax', () => {
    const c = config({ Network: '10.244.0.0/16', SubnetMin: '10.244.10.0', SubnetMax: '10.244.11.0' });
    assert.equal(formatCidr(chooseSubnet(c, [], () => 0) as Cidr), '10.244.10.0/24');
    assert.equal(formatCidr(chooseSubnet(c, [], () => 0.999999) as Cidr), '10.244.11.0/24');
    assert.equal(inConfigRange(c, cidr('10.244.12.0/24')), false);
    assert.equal(inConfigRange(c, cidr('10.244.10.0/25')), false);
  });

  it('always returns a free in-range subnet when one exists (property)', () => {
    const c = config({ Network: '10.8.0.0/20', SubnetLen: 25 });
    const all = subnetCount(c);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { maxLength: 40 }),
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        (idx, r) => {
          const taken = idx.map((i) => ({ network: c.network.network + i * 128, prefix: 25 }));
          const got = chooseSubnet(c, taken, () => r);
          const takenInRange = taken.filter((t) => inConfigRange(c, t)).length;
          if (takenInRange === all) assert.equal(got, undefined);
          else {
            assert.ok(got);
            assert.ok(inConfigRange(c, got));
            assert.ok(!taken.some((t) => overlaps(t, got)));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('IPv6 lease fields and reservations', () => {
  it('reservation keys: key-safe spelling, exact inverse, canonical only', () => {
    const p = parseIpv6Subnet('fd00:10:244:1::/64');
    assert.ok(p);
    assert.equal(ipv6SubnetKey(p), '/twill/ipv6-subnets/fd00-10-244-1---64');
    assert.deepEqual(ipv6SubnetFromKey(ipv6SubnetKey(p)), p);
    assert.equal(ipv6SubnetKey(parseIpv6Subnet('2001:db8::/32') as never), '/twill/ipv6-subnets/2001-db8---32');
    for (const bad of ['/twill/ipv6-subnets/FD00-10-244-1---64', '/twill/ipv6-subnets/fd00-10-244-1-0-0-0-0-64', '/twill/ipv6-subnets/fd00-10-244-1--1-64', '/twill/subnets/fd00-10-244-1---64', '/twill/ipv6-subnets/10.0.0.0-8']) {
      assert.equal(ipv6SubnetFromKey(bad), undefined, bad);
    }
    assert.equal(parseIpv6Subnet('fd00:10:244:1:0::/64'), undefined, 'not canonical');
    assert.equal(parseIpv6Subnet('::ffff:10.0.0.0/120'), undefined, 'v4-mapped');
  });
  it('invalid v6 fields make the lease invalid (reported, key still occupied)', () => {
    const base = { subnet: '10.244.3.0/24', nodeName: 'n', publicIP: '192.0.2.3', backendType: 'vxlan', backendData: {}, expiresAt: '2030-01-01T00:00:00.000Z' };
    const kv = (extra: object) => ({ key: '/twill/subnets/10.244.3.0-24', value: JSON.stringify({ ...base, ...extra }), modRevision: 3 });
    const good = parseLease(kv({ ipv6Subnet: 'fd00:10:244:3::/64', publicIPv6: '2001:db8::3' }));
    assert.ok(good.ok);
    assert.equal(good.lease.publicIPv6, '2001:db8::3');
    assert.equal(renderLeaseValue(good.lease), kv({ ipv6Subnet: 'fd00:10:244:3::/64', publicIPv6: '2001:db8::3' }).value);
    for (const extra of [{ ipv6Subnet: 'fd00:10:244:3::1/64' }, { ipv6Subnet: '10.0.0.0/8' }, { publicIPv6: '192.0.2.1' }, { publicIPv6: '2001:DB8::3' }, { publicIPv6: '::' }]) {
      const r = parseLease(kv(extra));
      assert.equal(r.ok, false, JSON.stringify(extra));
      if (!r.ok) assert.match(r.error, /ipv6Subnet|publicIPv6/);
    }
  });
  it('chooseIpv6Subnet: free subnets only, skips large taken prefixes, undefined when full (property)', () => {
    const r = validateClusterConfig({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:10:244::/56', IPv6SubnetMin: 'fd00:10:244::' });
    assert.ok(r.ok);
    const v6 = r.config.ipv6 as NonNullable<ClusterConfig['ipv6']>;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 300 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (idx, rnd) => {
        const taken = idx.map((i) => ({ family: 6 as const, network: v6.network.network + (BigInt(i) << 64n), prefix: 64 }));
        const got = chooseIpv6Subnet(v6, taken, () => rnd);
        if (new Set(idx).size === 256) assert.equal(got, undefined);
        else {
          assert.ok(got && got.prefix === 64 && inIpv6ConfigRange(v6, got));
          assert.ok(!taken.some((t) => t.network === got.network));
        }
      }),
      { numRuns: 200 },
    );
    // A taken /57 covers half the range: the answer is in the other half, found without scanning 2^7 subnets one by one.
    const half = { family: 6 as const, network: v6.network.network, prefix: 57 };
    const got = chooseIpv6Subnet(v6, [half], () => 0);
    assert.ok(got && got.network === v6.network.network + (128n << 64n));
    const big = validateClusterConfig({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fd00::/8', IPv6SubnetLen: 126 });
    assert.ok(big.ok && big.config.ipv6);
    assert.ok(chooseIpv6Subnet(big.config.ipv6, [{ family: 6, network: big.config.ipv6.network.network, prefix: 9 }], () => 0.1), '2^118 subnets: still instant');
  });
});
