import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ErrorCode, TwillError } from '../common/errors.js';
import type { SubnetEnv } from '../common/subnet-env.js';
import { allocate } from '../ipam/allocator.js';
import { MemoryIpamStore } from '../ipam/memory-store.js';
import { broadcast, formatCidr, formatIPv4, parseIPv4 } from '../net/ipv4.js';
import type { IpamConf, NetConf } from './config.js';
import { ipamDataDir, resolvePodNetwork, subnetFileOf, type PodNetwork } from './pod-network.js';
import { rangeOf } from './verbs/context.js';

const conf = (over: Partial<NetConf> = {}, ipam?: Partial<IpamConf>): NetConf => {
  const c: NetConf = { cniVersion: '1.1.0', name: 'twill', type: 'twill', ...over };
  if (ipam) c.ipam = { type: 'twill', ...ipam };
  return c;
};
const resolve = (c: NetConf, subnetEnv?: SubnetEnv, underlayMtu = 1500): PodNetwork => resolvePodNetwork({ conf: c, subnetEnv, underlayMtu });
const ip = (n: number): string => formatIPv4(n);

function rejects(c: NetConf, env: SubnetEnv | undefined, code: number, msg?: RegExp): void {
  assert.throws(
    () => resolve(c, env),
    (e: unknown) => {
      assert.ok(e instanceof TwillError, String(e));
      assert.equal(e.code, code, e.message);
      if (msg) assert.match(e.message, msg);
      return true;
    },
  );
}

describe('resolvePodNetwork: subnet and gateway', () => {
  it('config subnet: gateway is the first host, range the whole host range, default route', () => {
    const n = resolve(conf({}, { subnet: '10.244.1.0/24' }));
    assert.equal(formatCidr(n.subnet), '10.244.1.0/24');
    assert.equal(ip(n.gateway), '10.244.1.1');
    assert.equal(ip(n.podGateway), '10.244.1.1');
    assert.equal(ip(n.first), '10.244.1.1');
    assert.equal(ip(n.last), '10.244.1.254');
    assert.equal(n.mode, 'bridge');
    assert.equal(n.bridge, 'cni0');
    assert.deepEqual(
      n.routes.map((r) => [formatCidr(r.dst), ip(r.gw)]),
      [['0.0.0.0/0', '10.244.1.1']],
    );
    assert.equal(n.ipMasq, false);
    assert.equal(n.hairpin, false);
    assert.equal(n.clusterNetwork, undefined);
  });

  it('config subnet wins over the subnet file (and the file gateway is ignored then)', () => {
    const n = resolve(conf({}, { subnet: '10.99.0.0/24' }), { subnet: '10.244.1.7/24', network: '10.244.0.0/16' });
    assert.equal(formatCidr(n.subnet), '10.99.0.0/24');
    assert.equal(ip(n.gateway), '10.99.0.1');
  });

  it('subnet file: gateway is the host part of TWILL_SUBNET; network address alone means first host', () => {
    const a = resolve(conf(), { subnet: '10.244.1.1/24', network: '10.244.0.0/16' });
    assert.equal(formatCidr(a.subnet), '10.244.1.0/24');
    assert.equal(ip(a.gateway), '10.244.1.1');
    assert.equal(formatCidr(a.clusterNetwork as NonNullable<PodNetwork['clusterNetwork']>), '10.244.0.0/16');
    const b = resolve(conf(), { subnet: '10.244.1.9/24' });
    assert.equal(ip(b.gateway), '10.244.1.9');
    assert.equal(ip(b.podGateway), '10.244.1.9');
    const c = resolve(conf(), { subnet: '10.244.1.0/24' });
    assert.equal(ip(c.gateway), '10.244.1.1');
  });

  it('ipam.gateway overrides both', () => {
    assert.equal(ip(resolve(conf({}, { subnet: '10.244.1.0/24', gateway: '10.244.1.254' })).gateway), '10.244.1.254');
    assert.equal(ip(resolve(conf({}, { gateway: '10.244.1.200' }), { subnet: '10.244.1.1/24' }).gateway), '10.244.1.200');
  });

  it('the range can be narrowed with rangeStart/rangeEnd', () => {
    const n = resolve(conf({}, { subnet: '10.244.1.0/24', rangeStart: '10.244.1.100', rangeEnd: '10.244.1.110' }));
    assert.equal(ip(n.first), '10.244.1.100');
    assert.equal(ip(n.last), '10.244.1.110');
    const one = resolve(conf({}, { subnet: '10.244.1.0/24', rangeStart: '10.244.1.5', rangeEnd: '10.244.1.5' }));
    assert.equal(one.first, one.last);
  });

  it('/30 is the smallest subnet', () => {
    const n = resolve(conf({}, { subnet: '192.0.2.4/30' }));
    assert.equal(ip(n.first), '192.0.2.5');
    assert.equal(ip(n.last), '192.0.2.6');
    assert.equal(ip(n.gateway), '192.0.2.5');
  });

  it('configured routes: a gw when given, else the gateway', () => {
    const n = resolve(conf({}, { subnet: '10.244.1.0/24', routes: [{ dst: '10.96.0.0/12' }, { dst: '192.0.2.0/24', gw: '10.244.1.254' }] }));
    assert.deepEqual(
      n.routes.map((r) => [formatCidr(r.dst), ip(r.gw)]),
      [
        ['10.96.0.0/12', '10.244.1.1'],
        ['192.0.2.0/24', '10.244.1.254'],
      ],
    );
    assert.deepEqual(resolve(conf({}, { subnet: '10.244.1.0/24', routes: [] })).routes, [], 'an empty list means no routes');
  });

  it('bridge name, hairpin, ipMasq (only from the config: TWILL_IPMASQ means the agent masquerades)', () => {
    const n = resolve(conf({ bridge: 'br9', hairpinMode: true }, { subnet: '10.244.1.0/24' }), { ipMasq: true });
    assert.equal(n.bridge, 'br9');
    assert.equal(n.hairpin, true);
    assert.equal(n.ipMasq, false, 'the agent masquerades: no second table from the plugin');
    assert.equal(resolve(conf({ ipMasq: false }, { subnet: '10.244.1.0/24' }), { ipMasq: true }).ipMasq, false);
    assert.equal(resolve(conf({ ipMasq: true }, { subnet: '10.244.1.0/24' }), { ipMasq: false }).ipMasq, true);
  });
});

describe('resolvePodNetwork: MTU', () => {
  it('config mtu > TWILL_MTU > underlay MTU - 50 (VXLAN overhead)', () => {
    assert.equal(resolve(conf({ mtu: 1400 }, { subnet: '10.244.1.0/24' }), { mtu: 1450 }, 9000).mtu, 1400);
    assert.equal(resolve(conf({}, { subnet: '10.244.1.0/24' }), { mtu: 1450 }, 9000).mtu, 1450);
    assert.equal(resolve(conf({}, { subnet: '10.244.1.0/24' }), {}, 9000).mtu, 8950);
    assert.equal(resolve(conf({}, { subnet: '10.244.1.0/24' }), undefined, 1500).mtu, 1450);
  });
});

describe('resolvePodNetwork: routed mode', () => {
  it('pod gateway is 169.254.1.1 and every route goes through it', () => {
    const n = resolve(
      conf({ mode: 'routed' }, { subnet: '10.244.1.0/24', routes: [{ dst: '0.0.0.0/0' }, { dst: '10.96.0.0/12', gw: '10.244.1.254' }] }),
    );
    assert.equal(n.mode, 'routed');
    assert.equal(ip(n.podGateway), '169.254.1.1');
    assert.equal(ip(n.gateway), '10.244.1.1', 'the subnet gateway still exists (kept free)');
    assert.deepEqual(
      n.routes.map((r) => [formatCidr(r.dst), ip(r.gw)]),
      [
        ['0.0.0.0/0', '169.254.1.1'],
        ['10.96.0.0/12', '169.254.1.1'],
      ],
    );
  });

  it('default route via 169.254.1.1 when no routes are configured', () => {
    const n = resolve(conf({ mode: 'routed' }), { subnet: '10.244.3.1/24' });
    assert.deepEqual(
      n.routes.map((r) => [formatCidr(r.dst), ip(r.gw)]),
      [['0.0.0.0/0', '169.254.1.1']],
    );
  });
});

describe('resolvePodNetwork: errors', () => {
  const S = '10.244.1.0/24';
  it('-> 7 for invalid subnets, ranges, gateways and routes', () => {
    const cases: Array<[NetConf, SubnetEnv | undefined, RegExp]> = [
      [conf({}, { subnet: '10.244.1.1/24' }), undefined, /ipam\.subnet.*host bits/],
      [conf({}, { subnet: '10.244.1.0' }), undefined, /ipam\.subnet/],
      [conf({}, { subnet: '10.244.1.0/33' }), undefined, /ipam\.subnet/],
      [conf({}, { subnet: 'garbage' }), undefined, /ipam\.subnet/],
      [conf({}, { subnet: '10.244.1.0/31' }), undefined, /too small/],
      [conf({}, { subnet: '10.244.1.1/32' }), undefined, /too small/],
      [conf(), { subnet: '10.244.1.0/31' }, /too small/],
      [conf(), { subnet: 'nonsense' }, /TWILL_SUBNET/],
      [conf(), { subnet: '10.244.1.255/24' }, /gateway/],
      [conf({}, { subnet: S, rangeStart: '10.244.2.1' }), undefined, /rangeStart/],
      [conf({}, { subnet: S, rangeStart: '10.244.1.0' }), undefined, /rangeStart/],
      [conf({}, { subnet: S, rangeEnd: '10.244.1.255' }), undefined, /rangeEnd/],
      [conf({}, { subnet: S, rangeEnd: '10.244.0.200' }), undefined, /rangeEnd/],
      [conf({}, { subnet: S, rangeStart: 'x' }), undefined, /rangeStart/],
      [conf({}, { subnet: S, rangeStart: '10.244.1.50', rangeEnd: '10.244.1.40' }), undefined, /after/],
      [conf({}, { subnet: S, gateway: '10.244.2.1' }), undefined, /gateway/],
      [conf({}, { subnet: S, gateway: '10.244.1.0' }), undefined, /gateway/],
      [conf({}, { subnet: S, gateway: '10.244.1.255' }), undefined, /gateway/],
      [conf({}, { subnet: S, gateway: '10.244.1' }), undefined, /gateway/],
      [conf({}, { subnet: S, routes: [{ dst: '10.96.0.1/12' }] }), undefined, /route destination/],
      [conf({}, { subnet: S, routes: [{ dst: 'default' }] }), undefined, /route destination/],
      [conf({}, { subnet: S, routes: [{ dst: '10.96.0.0/12', gw: 'x' }] }), undefined, /route gw/],
      [conf({}, { subnet: S }), { network: '10.244.0.1/16' }, /TWILL_NETWORK/],
    ];
    for (const [c, env, msg] of cases) rejects(c, env, ErrorCode.InvalidConfig, msg);
  });

  it('-> 102 when neither the config nor the subnet file names a subnet', () => {
    rejects(conf(), undefined, ErrorCode.NoSubnet);
    rejects(conf({}, {}), undefined, ErrorCode.NoSubnet);
    rejects(conf({}, {}), { network: '10.244.0.0/16', mtu: 1450 }, ErrorCode.NoSubnet);
  });
});

describe('ipamDataDir / subnetFileOf', () => {
  it('defaults and overrides', () => {
    assert.equal(ipamDataDir(conf()), '/var/lib/twill/ipam');
    assert.equal(ipamDataDir(conf({}, { dataDir: '/tmp/d' })), '/tmp/d');
    assert.equal(subnetFileOf(conf(), '/run/twill/subnet.env'), '/run/twill/subnet.env');
    assert.equal(subnetFileOf(conf({}, { subnetFile: '/tmp/s.env' }), '/run/twill/subnet.env'), '/tmp/s.env');
  });
});

describe('resolvePodNetwork + allocator (property)', () => {
  it('a valid configuration never yields network, broadcast or gateway, and always the whole range', () => {
    const setup = fc
      .record({
        base: fc.integer({ min: 0, max: 0xffffffff }),
        prefix: fc.integer({ min: 22, max: 30 }),
        picks: fc.array(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { minLength: 3, maxLength: 3 }),
        useRange: fc.boolean(),
        useGateway: fc.boolean(),
        mode: fc.constantFrom('bridge' as const, 'routed' as const),
      })
      .map(({ base, prefix, picks, useRange, useGateway, mode }) => {
        const network = (base >>> (32 - prefix)) * 2 ** (32 - prefix);
        const first = network + 1;
        const n = 2 ** (32 - prefix) - 2;
        const at = (f: number | undefined): number => first + Math.floor((f ?? 0) * n);
        const [x, y] = [at(picks[0]), at(picks[1])].sort((p, q) => p - q) as [number, number];
        const ipam: Partial<IpamConf> = { subnet: `${formatIPv4(network)}/${prefix}` };
        if (useRange) Object.assign(ipam, { rangeStart: formatIPv4(x), rangeEnd: formatIPv4(y) });
        if (useGateway) ipam.gateway = formatIPv4(at(picks[2]));
        return conf({ mode }, ipam);
      });
    fc.assert(
      fc.property(setup, (c) => {
        const net = resolve(c);
        const range = rangeOf(net);
        const store = new MemoryIpamStore();
        const got = new Set<number>();
        for (let i = 0; ; i++) {
          let a: number;
          try {
            a = allocate(store, range, { containerId: `c${i}`, ifName: 'eth0' }).ip;
          } catch (e) {
            assert.ok(e instanceof TwillError && e.code === ErrorCode.RangeExhausted);
            break;
          }
          assert.notEqual(a, net.subnet.network);
          assert.notEqual(a, broadcast(net.subnet));
          assert.notEqual(a, net.gateway);
          assert.ok(a >= net.first && a <= net.last);
          got.add(a);
        }
        const gwInRange = net.gateway >= net.first && net.gateway <= net.last;
        assert.equal(got.size, net.last - net.first + 1 - (gwInRange ? 1 : 0));
        assert.equal(parseIPv4(c.ipam?.gateway ?? formatIPv4(net.subnet.network + 1)), net.gateway);
      }),
      { numRuns: 200 },
    );
  });
});
