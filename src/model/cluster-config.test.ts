import { formatIp, formatPrefix } from '../net/ip.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIPv4, maskOf, parseIPv4 } from '../net/ipv4.js';
import {
  parseClusterConfig,
  renderClusterConfig,
  ipv6SubnetCount,
  subnetCount,
  validateClusterConfig,
  type ClusterConfig,
  type ClusterConfigResult,
} from './cluster-config.js';

function ok(r: ClusterConfigResult): ClusterConfig {
  if (!r.ok) assert.fail(`expected ok, got ${JSON.stringify(r.errors)}`);
  return r.config;
}

function errors(value: unknown): string[] {
  const r = validateClusterConfig(value);
  if (r.ok) assert.fail(`expected errors for ${JSON.stringify(value)}`);
  return r.errors;
}

const ip = (s: string): number => parseIPv4(s) as number;

describe('validateClusterConfig', () => {
  it('accepts the flannel default vxlan config', () => {
    const c = ok(
      parseClusterConfig('{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1,"Port":8472,"DirectRouting":false}}'),
    );
    assert.deepEqual(c, {
      network: { network: ip('10.244.0.0'), prefix: 16 },
      subnetLen: 24,
      subnetMin: ip('10.244.1.0'),
      subnetMax: ip('10.244.255.0'),
      backend: { type: 'vxlan', vni: 1, port: 8472, directRouting: false },
    });
    assert.equal(subnetCount(c), 255);
  });

  it('fills flannel defaults: SubnetLen, vxlan backend, VNI/Port, first subnet skipped', () => {
    const c = ok(validateClusterConfig({ Network: '10.244.0.0/16' }));
    assert.equal(c.subnetLen, 24);
    assert.deepEqual(c.backend, { type: 'vxlan', vni: 1, port: 8472, directRouting: false });
    assert.equal(formatIPv4(c.subnetMin), '10.244.1.0');
    const small = ok(validateClusterConfig({ Network: '10.0.0.0/26', Backend: { Type: 'vxlan' } }));
    assert.equal(small.subnetLen, 28);
    assert.equal(subnetCount(small), 3);
  });

  it('accepts host-gw, vxlan DirectRouting, MTU, explicit SubnetMin/SubnetMax, flannel EnableIPv4', () => {
    assert.deepEqual(ok(validateClusterConfig({ Network: '10.1.0.0/16', Backend: { Type: 'host-gw' } })).backend, {
      type: 'host-gw',
    });
    const d = ok(
      validateClusterConfig({
        Network: '10.1.0.0/16',
        SubnetLen: 26,
        SubnetMin: '10.1.0.0',
        SubnetMax: '10.1.3.192',
        EnableIPv4: true,
        EnableIPv6: false,
        Backend: { Type: 'vxlan', VNI: 16777215, Port: 4789, DirectRouting: true, MTU: 1400 },
      }),
    );
    assert.deepEqual(d.backend, { type: 'vxlan', vni: 16777215, port: 4789, directRouting: true, mtu: 1400 });
    assert.equal(d.subnetMin, ip('10.1.0.0'));
    assert.equal(subnetCount(d), 16);
  });

  it('names the field in every error', () => {
    assert.deepEqual(errors({ Network: '10.244.0.1/16' }), ['Network: 10.244.0.1/16 has host bits set (did you mean 10.244.0.0/16?)']);
    assert.deepEqual(errors({ Network: '10.244.0.0/33' }), ["Network: '10.244.0.0/33' is not an IPv4 CIDR (a.b.c.d/n)"]);
    assert.deepEqual(errors({ Network: '10.244.0.0/16', SubnetLen: 33 }), ['SubnetLen: 33 must be between Network prefix+1 (17) and 30']);
    assert.deepEqual(errors({ Network: '10.244.0.0/16', SubnetLen: 16 }), ['SubnetLen: 16 must be between Network prefix+1 (17) and 30']);
    assert.deepEqual(errors({ Network: '10.244.0.0/16', SubnetLen: 24.5 }), ['SubnetLen: must be an integer, got 24.5']);
    assert.deepEqual(errors({ Network: '10.0.0.0/29' }), [
      'Network: /29 is too small for the default SubnetLen (31); use /28 or larger or set SubnetLen',
    ]);
    assert.deepEqual(errors({ Network: '10.244.0.0/16', Backend: { Type: 'foo' } }), ["Backend.Type: unknown backend 'foo' (vxlan, host-gw)"]);
    assert.deepEqual(errors({ Network: '10.244.0.0/16', Backend: {} }), ['Backend.Type: is required (vxlan, host-gw)']);
    assert.deepEqual(errors({ Network: '10.244.0.0/16', Backend: 'vxlan' }), ['Backend: must be an object like {"Type": "vxlan"}']);
    assert.deepEqual(errors({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan', VNI: 0 } }), [
      'Backend.VNI: 0 must be between 1 and 16777215',
    ]);
    assert.deepEqual(errors({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan', VNI: 16777216, Port: 70000 } }), [
      'Backend.VNI: 16777216 must be between 1 and 16777215',
      'Backend.Port: 70000 must be between 1 and 65535',
    ]);
    assert.deepEqual(errors({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan', Port: 0, DirectRouting: 'yes' } }), [
      'Backend.Port: 0 must be between 1 and 65535',
      'Backend.DirectRouting: must be a boolean (true or false), got "yes"',
    ]);
    assert.deepEqual(errors({ Network: '10.244.0.0/16', Backend: { Type: 'host-gw', VNI: 1 } }), ['Backend.VNI: unknown field']);
    assert.deepEqual(errors({ Network: '10.244.0.0/16', Subnetlen: 24 }), ['Subnetlen: unknown field']);
    assert.deepEqual(errors({ Network: '10.244.0.0/16', EnableIPv6: true }), ['IPv6Network: is required with EnableIPv6: true (e.g. fd00:10:244::/56)']);
  });

  it('checks SubnetMin/SubnetMax: address, inside Network, aligned, ordered', () => {
    const base = { Network: '10.244.0.0/16', SubnetLen: 24 };
    assert.deepEqual(errors({ ...base, SubnetMin: 'x', SubnetMax: '10.245.0.0' }), [
      "SubnetMin: 'x' is not an IPv4 address",
      'SubnetMax: 10.245.0.0 is not inside Network 10.244.0.0/16',
    ]);
    assert.deepEqual(errors({ ...base, SubnetMin: '10.244.1.1' }), ['SubnetMin: 10.244.1.1 is not on a /24 boundary (SubnetLen)']);
    assert.deepEqual(errors({ ...base, SubnetMin: '10.244.9.0', SubnetMax: '10.244.8.0' }), [
      'SubnetMin: 10.244.9.0 is above SubnetMax 10.244.8.0',
    ]);
  });

  it('reports missing Network, wrong types, non-objects and bad JSON', () => {
    assert.deepEqual(errors({}), ['Network: is required (or EnableIPv4: false for an IPv6-only cluster)']);
    assert.deepEqual(errors({ Network: 10, Backend: { Type: 'bogus' } }), [
      'Network: must be a string, got 10',
      "Backend.Type: unknown backend 'bogus' (vxlan, host-gw)",
    ]);
    assert.deepEqual(errors([]), ['(root): must be an object, got an array']);
    const r = parseClusterConfig('{"Network": ');
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : (r.errors[0] ?? ''), /^config is not valid JSON: /);
  });
});

describe('renderClusterConfig', () => {
  it('renders canonical flannel JSON, omitting default SubnetMin/SubnetMax', () => {
    const c = ok(validateClusterConfig({ Network: '10.244.0.0/16' }));
    assert.equal(
      renderClusterConfig(c),
      '{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1,"Port":8472,"DirectRouting":false}}',
    );
    const h = ok(validateClusterConfig({ Network: '10.0.0.0/8', SubnetLen: 20, SubnetMin: '10.0.0.0', Backend: { Type: 'host-gw' } }));
    assert.equal(renderClusterConfig(h), '{"Network":"10.0.0.0/8","SubnetLen":20,"SubnetMin":"10.0.0.0","Backend":{"Type":"host-gw"}}');
    assert.match(renderClusterConfig(h, 2), /\n {2}"Network"/);
  });

  it('round-trips: parse(render(c)) == c (property)', () => {
    const arb = fc
      .record({
        base: fc.integer({ min: 0, max: 0xffffffff }),
        prefix: fc.integer({ min: 8, max: 28 }),
        extra: fc.integer({ min: 1, max: 8 }),
        lo: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        hi: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        explicit: fc.boolean(),
        backend: fc.oneof(
          fc.constant({ Type: 'host-gw' }),
          fc.record(
            {
              Type: fc.constant('vxlan'),
              VNI: fc.integer({ min: 1, max: 16777215 }),
              Port: fc.integer({ min: 1, max: 65535 }),
              DirectRouting: fc.boolean(),
              MTU: fc.integer({ min: 576, max: 9000 }),
            },
            { requiredKeys: ['Type'] },
          ),
        ),
      })
      .map(({ base, prefix, extra, lo, hi, explicit, backend }) => {
        const subnetLen = Math.min(30, prefix + extra);
        const count = 2 ** (subnetLen - prefix);
        const net = (base & maskOf(prefix)) >>> 0;
        const at = (f: number): string => formatIPv4(net + Math.floor(f * count) * 2 ** (32 - subnetLen));
        const [a, b] = [at(lo), at(hi)].sort((x, y) => (parseIPv4(x) as number) - (parseIPv4(y) as number));
        return {
          Network: `${formatIPv4(net)}/${prefix}`,
          SubnetLen: subnetLen,
          ...(explicit ? { SubnetMin: a, SubnetMax: b } : {}),
          Backend: backend,
        };
      });
    fc.assert(
      fc.property(arb, (raw) => {
        const c = ok(validateClusterConfig(raw));
        assert.deepEqual(ok(parseClusterConfig(renderClusterConfig(c))), c);
        assert.ok(subnetCount(c) >= 1);
      }),
      { numRuns: 300 },
    );
  });

  describe('dual stack (flannel keys)', () => {
    const V4 = { Network: '10.244.0.0/16' };
    it('defaults: IPv6 off; IPv6SubnetLen 64, all subnets but the first', () => {
      assert.equal(ok(validateClusterConfig(V4)).ipv6, undefined);
      assert.equal(ok(validateClusterConfig({ ...V4, EnableIPv4: true, EnableIPv6: false })).ipv6, undefined);
      const c = ok(validateClusterConfig({ ...V4, EnableIPv6: true, IPv6Network: 'fd00:10:244::/56' }));
      const v6 = c.ipv6;
      assert.ok(v6);
      assert.equal(formatPrefix(v6.network), 'fd00:10:244::/56');
      assert.equal(v6.subnetLen, 64);
      assert.equal(formatIp({ family: 6, value: v6.subnetMin }), 'fd00:10:244:1::');
      assert.equal(formatIp({ family: 6, value: v6.subnetMax }), 'fd00:10:244:ff::');
      assert.equal(ipv6SubnetCount(v6), 255n);
      assert.equal(c.network.prefix, 16, 'IPv4 half unchanged');
    });
    it('renders canonically (IPv6 keys only when enabled, bounds only when not default) and round-trips', () => {
      const c = ok(validateClusterConfig({ ...V4, EnableIPv6: true, IPv6Network: 'FD00:10:244:0:0::/56', IPv6SubnetMin: 'fd00:10:244:10::', Backend: { Type: 'host-gw' } }));
      const text = renderClusterConfig(c);
      assert.equal(text, '{"Network":"10.244.0.0/16","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","IPv6SubnetLen":64,"IPv6SubnetMin":"fd00:10:244:10::","Backend":{"Type":"host-gw"}}');
      assert.deepEqual(ok(parseClusterConfig(text)), c);
      const d = ok(validateClusterConfig({ ...V4, EnableIPv6: true, IPv6Network: '2001:db8:1::/48', IPv6SubnetLen: 120, IPv6SubnetMax: '2001:db8:1::ff00' }));
      assert.deepEqual(ok(parseClusterConfig(renderClusterConfig(d))), d);
    });
    it('reports each problem with a clear error', () => {
      const e6 = (extra: Record<string, unknown>): string[] => errors({ ...V4, EnableIPv6: true, IPv6Network: 'fd00:10:244::/56', ...extra });
      assert.deepEqual(e6({ IPv6Network: '10.0.0.0/8' }), ["IPv6Network: '10.0.0.0/8' is not an IPv6 CIDR (e.g. fd00:10:244::/56)"]);
      assert.deepEqual(e6({ IPv6Network: 'fd00:10:244::1/56' }), ['IPv6Network: fd00:10:244::1/56 has host bits set (did you mean fd00:10:244::/56?)']);
      assert.match(e6({ IPv6Network: '::ffff:0:0/96' })[0] ?? '', /IPv4-mapped/);
      assert.match(e6({ IPv6Network: '::/64', IPv6SubnetLen: 80 })[0] ?? '', /IPv4-mapped/);
      assert.deepEqual(e6({ IPv6Network: 'fd00::/64' }), ['IPv6Network: /64 is too small for the default IPv6SubnetLen (64); use /63 or larger or set IPv6SubnetLen']);
      assert.deepEqual(e6({ IPv6SubnetLen: 56 }), ['IPv6SubnetLen: 56 must be between IPv6Network prefix+1 (57) and 126']);
      assert.deepEqual(e6({ IPv6SubnetLen: 127 }), ['IPv6SubnetLen: 127 must be between IPv6Network prefix+1 (57) and 126']);
      assert.deepEqual(e6({ IPv6SubnetLen: '64' }), ['IPv6SubnetLen: must be a number, got "64"']);
      assert.deepEqual(e6({ IPv6SubnetMin: '10.244.1.0' }), ["IPv6SubnetMin: '10.244.1.0' is not an IPv6 address"]);
      assert.deepEqual(e6({ IPv6SubnetMin: 'fd00:10:245::' }), ['IPv6SubnetMin: fd00:10:245:: is not inside IPv6Network fd00:10:244::/56']);
      assert.deepEqual(e6({ IPv6SubnetMax: 'fd00:10:244:5::1' }), ['IPv6SubnetMax: fd00:10:244:5::1 is not on a /64 boundary (IPv6SubnetLen)']);
      assert.deepEqual(e6({ IPv6SubnetMin: 'fd00:10:244:9::', IPv6SubnetMax: 'fd00:10:244:8::' }), ['IPv6SubnetMin: fd00:10:244:9:: is above IPv6SubnetMax fd00:10:244:8::']);
      assert.deepEqual(errors({ ...V4, IPv6Network: 'fd00:10:244::/56' }), ['IPv6Network: set without EnableIPv6: true']);
      assert.deepEqual(errors({ EnableIPv6: true, IPv6Network: 'fd00:10:244::/56' }), ['Network: is required (or EnableIPv4: false for an IPv6-only cluster)']);
      assert.deepEqual(errors({ ...V4, EnableIPv4: false }), ['EnableIPv4: false needs EnableIPv6: true (no address family enabled)', 'Network: set while EnableIPv4 is false']);
    });
    it('IPv6-only (EnableIPv4: false, no Network) is validated, then refused as not yet supported', () => {
      assert.match(errors({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fd00:10:244::/56' }).join(';'), /^EnableIPv4: false \(an IPv6-only cluster\) is not supported yet/);
      assert.deepEqual(errors({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fd00::/64' }), ['IPv6Network: /64 is too small for the default IPv6SubnetLen (64); use /63 or larger or set IPv6SubnetLen']);
    });
  });
});
