import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SUBNETS_PREFIX } from '../common/constants.js';
import { formatCidr, overlaps, parseCidr, type Cidr } from '../net/ipv4.js';
import { subnetCount, validateClusterConfig, type ClusterConfig } from './cluster-config.js';
import {
  chooseSubnet,
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
  assert.ok(r.ok, JSON.stringify(r));
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
