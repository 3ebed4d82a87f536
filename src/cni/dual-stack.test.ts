/** Dual stack in the plugin, pure parts: range sets, the IPv6 plan lines, results per CNI version. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SUPPORTED_VERSIONS } from '../common/constants.js';
import { ErrorCode, TwillError } from '../common/errors.js';
import type { SubnetEnv } from '../common/subnet-env.js';
import { formatIp, formatPrefix, parseIpOf } from '../net/ip.js';
import { formatCidr, formatIPv4, parseIPv4 } from '../net/ipv4.js';
import { addResult, renderHostAdd, renderPodAdd, type AddPlan } from './add-plan.js';
import { parseNetConf, type IpamConf, type NetConf } from './config.js';
import { resolvePodNetwork, type PodNetwork } from './pod-network.js';
import { fromWire, toWire } from './result.js';

const v6 = (value: bigint): string => formatIp({ family: 6, value });
const conf = (over: Partial<NetConf> = {}, ipam?: Partial<IpamConf>): NetConf => {
  const c: NetConf = { cniVersion: '1.1.0', name: 'twill', type: 'twill', mtu: 1450, ...over };
  if (ipam) c.ipam = { type: 'twill', ...ipam };
  return c;
};
const resolve = (c: NetConf, subnetEnv?: SubnetEnv): PodNetwork => resolvePodNetwork({ conf: c, subnetEnv, underlayMtu: 1500 });
const DUAL = [[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/64' }]];

function rejects(c: NetConf, env: SubnetEnv | undefined, msg: RegExp): void {
  assert.throws(
    () => resolve(c, env),
    (e: unknown) => {
      assert.ok(e instanceof TwillError, String(e));
      assert.equal(e.code, ErrorCode.InvalidConfig, e.message);
      assert.match(e.message, msg);
      return true;
    },
  );
}

describe('dual stack: range sets', () => {
  it('ipam.ranges: one set per family, gateways ::1 and .1, both default routes', () => {
    const n = resolve(conf({}, { ranges: DUAL }));
    assert.equal(formatCidr(n.subnet), '10.244.1.0/24');
    assert.ok(n.v6);
    assert.equal(formatPrefix(n.v6.subnet), 'fd00:10:244:1::/64');
    assert.equal(v6(n.v6.gateway), 'fd00:10:244:1::1');
    assert.equal(v6(n.v6.podGateway), 'fd00:10:244:1::1');
    assert.equal(v6(n.v6.first), 'fd00:10:244:1::1');
    assert.equal(v6(n.v6.last), 'fd00:10:244:1:ffff:ffff:ffff:ffff');
    assert.deepEqual(n.routes.map((r) => formatCidr(r.dst)), ['0.0.0.0/0']);
    assert.deepEqual(n.v6.routes.map((r) => [formatPrefix(r.dst), v6(r.gw)]), [['::/0', 'fd00:10:244:1::1']]);
  });

  it('order of the sets does not matter; rangeStart/rangeEnd/gateway of the v6 range apply', () => {
    const n = resolve(conf({}, { ranges: [[{ subnet: 'fd00:10:244:1::/64', rangeStart: 'fd00:10:244:1::100', rangeEnd: 'fd00:10:244:1::1ff', gateway: 'fd00:10:244:1::fe' }], [{ subnet: '10.244.1.0/24', gateway: '10.244.1.254' }]] }));
    assert.equal(formatIPv4(n.gateway), '10.244.1.254');
    assert.equal(v6(n.v6?.first ?? 0n), 'fd00:10:244:1::100');
    assert.equal(v6(n.v6?.last ?? 0n), 'fd00:10:244:1::1ff');
    assert.equal(v6(n.v6?.gateway ?? 0n), 'fd00:10:244:1::fe');
  });

  it('routed mode: the v6 next hop is fe80::1 for every route', () => {
    const n = resolve(conf({ mode: 'routed' }, { ranges: DUAL, routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }, { dst: 'fd00:10:96::/112', gw: 'fd00:10:244:1::fe' }] }));
    assert.equal(v6(n.v6?.podGateway ?? 0n), 'fe80::1');
    assert.deepEqual(n.v6?.routes.map((r) => [formatPrefix(r.dst), v6(r.gw)]), [
      ['::/0', 'fe80::1'],
      ['fd00:10:96::/112', 'fe80::1'],
    ]);
    assert.equal(n.routes.length, 1);
  });

  it('subnet file: TWILL_IPV6_SUBNET (gateway/prefix) gives the v6 set when the config names no ranges', () => {
    const env: SubnetEnv = { subnet: '10.244.3.1/24', ipv6Subnet: 'fd00:10:244:3::1/64', ipv6Network: 'fd00:10:244::/56' };
    const n = resolve(conf(), env);
    assert.equal(formatPrefix(n.v6?.subnet ?? { family: 6, network: 0n, prefix: 0 }), 'fd00:10:244:3::/64');
    assert.equal(v6(n.v6?.gateway ?? 0n), 'fd00:10:244:3::1');
    assert.equal(formatPrefix(n.v6?.clusterNetwork ?? { family: 6, network: 0n, prefix: 0 }), 'fd00:10:244::/56');
    // With ipam.subnet for IPv4, the file still gives IPv6.
    assert.ok(resolve(conf({}, { subnet: '10.244.9.0/24' }), env).v6);
    // A v4-only subnet file: no v6.
    assert.equal(resolve(conf(), { subnet: '10.244.3.1/24' }).v6, undefined);
  });

  it('ipam.ranges wins over the subnet file', () => {
    const n = resolve(conf({}, { ranges: [[{ subnet: '10.244.1.0/24' }]] }), { subnet: '10.244.3.1/24', ipv6Subnet: 'fd00:10:244:3::1/64' });
    assert.equal(formatCidr(n.subnet), '10.244.1.0/24');
    assert.equal(n.v6, undefined);
  });

  it('rejects bad sets with code 7 naming the field', () => {
    const cases: Array<[unknown, RegExp]> = [
      [[[{ subnet: '10.244.1.0/24' }], [{ subnet: '10.244.2.0/24' }]], /second IPv4 range set/],
      [[[{ subnet: 'fd00:10:244:1::/64' }], [{ subnet: 'fd00:10:244:2::/64' }], [{ subnet: '10.244.1.0/24' }]], /second IPv6 range set/],
      [[[{ subnet: '10.244.1.0/24' }, { subnet: 'fd00:10:244:1::/64' }]], /one address family/],
      [[[{ subnet: '10.244.1.0/24' }, { subnet: '10.244.2.0/24' }]], /not supported yet/],
      [[[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10::/48' }]], /\/64 to \/126/],
      [[[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/127' }]], /\/64 to \/126/],
      [[[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::1/64' }]], /ipam\.ranges\.1\.0\.subnet.*host bits/],
      [[[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fe80::/64' }]], /link-local/],
      [[[{ subnet: '10.244.1.0/24' }], [{ subnet: 'ff02::/64' }]], /multicast/],
      [[[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/64', gateway: 'fd00:10:244:2::1' }]], /gateway/],
      [[[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/64', gateway: '10.244.1.1' }]], /gateway.*not an IPv6 address/],
      [[[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/64', rangeStart: 'fd00:10:244:2::1' }]], /ipam\.ranges\.1\.0\.rangeStart/],
      [[[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/64', rangeStart: 'fd00:10:244:1::9', rangeEnd: 'fd00:10:244:1::8' }]], /after/],
      [[[{ subnet: '10.244.1.0/24', rangeStart: '10.244.2.1' }]], /ipam\.ranges\.0\.0\.rangeStart/],
      [[[{ subnet: 'fd00:10:244:1::/64' }]], /IPv6-only .* not supported yet/],
    ];
    for (const [ranges, msg] of cases) rejects(conf({}, { ranges: ranges as IpamConf['ranges'] }), undefined, msg);
    rejects(conf({}, { ranges: DUAL, subnet: '10.244.1.0/24' }), undefined, /ipam\.subnet and ipam\.ranges/);
    rejects(conf({}, { subnet: '10.244.1.0/24', routes: [{ dst: '::/0' }] }), undefined, /IPv6 but the network has no IPv6 range/);
    rejects(conf(), { subnet: '10.244.3.1/24', ipv6Subnet: 'nonsense' }, /TWILL_IPV6_SUBNET/);
    rejects(conf(), { subnet: '10.244.3.1/24', ipv6Subnet: 'fd00:10:244:3::1/64', ipv6Network: 'fd00:99::/56' }, /TWILL_IPV6_NETWORK.*does not contain/);
  });

  it('parseNetConf checks the shape of ipam.ranges (code 7 with the path)', () => {
    const base = { cniVersion: '1.1.0', name: 'n', type: 'twill' };
    const shapes: Array<[unknown, RegExp]> = [
      [[], /ipam\.ranges/],
      [{}, /ipam\.ranges/],
      [[[]], /ipam\.ranges\.0/],
      [[[{}]], /ipam\.ranges\.0\.0\.subnet/],
      [[[{ subnet: 'fd00::/64', gateway: 1 }]], /ipam\.ranges\.0\.0\.gateway/],
      [['x'], /ipam\.ranges\.0/],
    ];
    for (const [ranges, msg] of shapes) {
      assert.throws(
        () => parseNetConf(JSON.stringify({ ...base, ipam: { type: 'twill', ranges } })),
        (e: unknown) => e instanceof TwillError && e.code === ErrorCode.InvalidConfig && msg.test(e.message),
        JSON.stringify(ranges),
      );
    }
    assert.deepEqual(parseNetConf(JSON.stringify({ ...base, ipam: { type: 'twill', ranges: DUAL } })).ipam?.ranges, DUAL);
  });
});

function plan(mode: 'bridge' | 'routed'): AddPlan {
  const net = resolve(conf({ mode }, { ranges: DUAL }));
  return {
    net,
    network: 'twill',
    netns: '/var/run/netns/p',
    ifName: 'eth0',
    hostVeth: 'twl0123456789ab',
    tmpVeth: 'twn00112233aabb',
    alias: 'twill/twill/c/eth0',
    ip: parseIPv4('10.244.1.5') as number,
    ip6: parseIpOf(6, 'fd00:10:244:1::5')?.value as bigint,
    replaceExisting: false,
  };
}

describe('dual stack: kernel lines', () => {
  it('bridge mode: the bridge holds both gateways (v6 nodad); the pod gets both addresses (v6 nodad, before link up) and both defaults', () => {
    const p = plan('bridge');
    const host = renderHostAdd(p);
    assert.ok(host.includes('addr replace 10.244.1.1/24 dev cni0'));
    assert.ok(host.includes('addr replace fd00:10:244:1::1/64 dev cni0 nodad'));
    assert.ok(host.indexOf('addr replace fd00:10:244:1::1/64 dev cni0 nodad') < host.indexOf('link set dev cni0 up'));
    const pod = renderPodAdd(p);
    assert.deepEqual(pod, [
      'addr add 10.244.1.5/24 dev eth0',
      'addr add fd00:10:244:1::5/64 dev eth0 nodad',
      'link set dev eth0 up',
      'route add 0.0.0.0/0 via 10.244.1.1 dev eth0',
      'route add ::/0 via fd00:10:244:1::1 dev eth0',
    ]);
  });

  it('routed mode: fe80::1 on the host veth (nodad), /128 host route proto 85, pod default via fe80::1 with a permanent neighbour', () => {
    const p = plan('routed');
    const host = renderHostAdd(p);
    assert.ok(host.includes('addr add fe80::1/64 dev twl0123456789ab nodad'));
    assert.ok(host.includes('route replace fd00:10:244:1::5/128 dev twl0123456789ab proto 85'));
    assert.ok(host.indexOf('link set dev twl0123456789ab up') < host.indexOf('addr add fe80::1/64 dev twl0123456789ab nodad'));
    const pod = renderPodAdd(p);
    assert.ok(pod.includes('addr add fd00:10:244:1::5/128 dev eth0 nodad'));
    assert.ok(pod.includes('neigh replace fe80::1 lladdr 0e:58:0a:f4:01:05 dev eth0 nud permanent'));
    assert.equal(pod.at(-1), 'route add ::/0 via fe80::1 dev eth0');
  });

  it('an IPv4-only plan renders no IPv6 line', () => {
    const p = plan('bridge');
    const v4only: AddPlan = { ...p, net: resolve(conf({}, { subnet: '10.244.1.0/24' })) };
    delete v4only.ip6;
    for (const line of [...renderHostAdd(v4only), ...renderPodAdd(v4only)]) assert.ok(!line.includes(':') || line.includes('lladdr') || line.includes('address'), line);
  });
});

describe('dual stack: results in every CNI version', () => {
  for (const mode of ['bridge', 'routed'] as const) {
    for (const version of SUPPORTED_VERSIONS) {
      it(`${mode} at ${version}: both addresses in ips[] (IPv4 first), version "4"/"6" only before 1.0.0, both default routes`, () => {
        const wire = toWire(addResult(plan(mode), version), version);
        const ips = wire.ips as Array<Record<string, unknown>>;
        const gw6 = mode === 'bridge' ? 'fd00:10:244:1::1' : 'fe80::1';
        const gw4 = mode === 'bridge' ? '10.244.1.1' : '169.254.1.1';
        const podIdx = mode === 'bridge' ? 2 : 1;
        const legacy = version.startsWith('0.');
        assert.deepEqual(ips, [
          { ...(legacy ? { version: '4' } : {}), address: `10.244.1.5/${mode === 'bridge' ? 24 : 32}`, gateway: gw4, interface: podIdx },
          { ...(legacy ? { version: '6' } : {}), address: `fd00:10:244:1::5/${mode === 'bridge' ? 64 : 128}`, gateway: gw6, interface: podIdx },
        ]);
        assert.deepEqual(wire.routes, [
          { dst: '0.0.0.0/0', gw: gw4 },
          { dst: '::/0', gw: gw6 },
        ]);
        // A chained plugin reading it back (prevResult) sees the same.
        const back = fromWire(JSON.parse(JSON.stringify(wire)));
        assert.deepEqual(back?.ips?.map((i) => i.address), ips.map((i) => i.address));
      });
    }
  }
});
