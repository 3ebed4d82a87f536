import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseIPv4 } from '../net/ipv4.js';
import { addResult, hostMac, podMac, podPrefix, renameLine, renderHostAdd, renderMasquerade, renderPodAdd, type AddPlan } from './add-plan.js';
import type { NetConf } from './config.js';
import { resolvePodNetwork, type PodNetwork } from './pod-network.js';
import { toWire } from './result.js';

const V = 'twl0123456789ab';
const T = 'twn00112233aabb';
const NS = '/var/run/netns/cni-1';

function network(mode: 'bridge' | 'routed', over: Partial<NetConf> = {}, routes?: Array<{ dst: string; gw?: string }>): PodNetwork {
  const conf: NetConf = {
    cniVersion: '1.1.0',
    name: 'twill',
    type: 'twill',
    mode,
    mtu: 1450,
    ipam: { type: 'twill', subnet: '10.244.1.0/24', ...(routes ? { routes } : {}) },
    ...over,
  };
  return resolvePodNetwork({ conf, subnetEnv: { network: '10.244.0.0/16' }, underlayMtu: 1500 });
}

function plan(net: PodNetwork, over: Partial<AddPlan> = {}): AddPlan {
  return {
    net,
    network: 'twill',
    netns: NS,
    ifName: 'eth0',
    hostVeth: V,
    tmpVeth: T,
    alias: 'twill/twill/abc123/eth0',
    ip: parseIPv4('10.244.1.5') as number,
    replaceExisting: false,
    ...over,
  };
}

describe('MACs and prefix', () => {
  it('pod 0a:58:<ip>, host 0e:58:<ip>', () => {
    assert.equal(podMac(parseIPv4('10.244.1.5') as number), '0a:58:0a:f4:01:05');
    assert.equal(hostMac(parseIPv4('10.244.1.5') as number), '0e:58:0a:f4:01:05');
  });
  it('pod prefix: the subnet`s in bridge mode, 32 in routed mode', () => {
    assert.equal(podPrefix(network('bridge')), 24);
    assert.equal(podPrefix(network('routed')), 32);
  });
});

describe('renderHostAdd', () => {
  it('bridge mode: created, aliased and enslaved under the temporary name, renamed, then up', () => {
    assert.deepEqual(renderHostAdd(plan(network('bridge'))), [
      `link add ${T} mtu 1450 address 0e:58:0a:f4:01:05 type veth peer name eth0 mtu 1450 address 0a:58:0a:f4:01:05 netns ${NS}`,
      `link set dev ${T} alias twill/twill/abc123/eth0`,
      'addr replace 10.244.1.1/24 dev cni0',
      'link set dev cni0 up',
      `link set dev ${T} master cni0`,
      `link set dev ${T} name ${V}`,
      `link set dev ${V} up`,
    ]);
  });

  it('bridge mode with hairpin, another bridge, and a leftover link to replace', () => {
    assert.deepEqual(renderHostAdd(plan(network('bridge', { bridge: 'br-pods', hairpinMode: true }), { replaceExisting: true })), [
      `link del ${V}`,
      `link add ${T} mtu 1450 address 0e:58:0a:f4:01:05 type veth peer name eth0 mtu 1450 address 0a:58:0a:f4:01:05 netns ${NS}`,
      `link set dev ${T} alias twill/twill/abc123/eth0`,
      'addr replace 10.244.1.1/24 dev br-pods',
      'link set dev br-pods up',
      `link set dev ${T} master br-pods`,
      `link set dev ${T} type bridge_slave hairpin on`,
      `link set dev ${T} name ${V}`,
      `link set dev ${V} up`,
    ]);
  });

  it('routed mode: no bridge, a /32 route with Twill`s protocol on the final name', () => {
    assert.deepEqual(renderHostAdd(plan(network('routed'), { ifName: 'net1' })), [
      `link add ${T} mtu 1450 address 0e:58:0a:f4:01:05 type veth peer name net1 mtu 1450 address 0a:58:0a:f4:01:05 netns ${NS}`,
      `link set dev ${T} alias twill/twill/abc123/eth0`,
      `link set dev ${T} name ${V}`,
      `link set dev ${V} up`,
      `route replace 10.244.1.5/32 dev ${V} proto 85 scope link`,
    ]);
  });

  it('bridge mode after a subnet change: the stale gateways go right after the new one is in place', () => {
    const lines = renderHostAdd(plan(network('bridge'), { staleBridgeAddrs: ['10.244.7.1/24'] }));
    assert.deepEqual(lines.slice(2, 5), ['addr replace 10.244.1.1/24 dev cni0', 'addr del 10.244.7.1/24 dev cni0', 'link set dev cni0 up']);
  });

  it('the alias is set before the veth gets its final name, in every mode', () => {
    for (const net of [network('bridge'), network('bridge', { hairpinMode: true }), network('routed')]) {
      const p = plan(net);
      const lines = renderHostAdd(p);
      const rename = lines.indexOf(renameLine(p));
      assert.ok(rename > lines.indexOf(`link set dev ${T} alias twill/twill/abc123/eth0`));
      assert.ok(lines.slice(0, rename).every((l) => !l.includes(V)), 'nothing uses the final name before the rename');
    }
  });
});

describe('renderPodAdd', () => {
  it('bridge mode: address with the subnet prefix, default route via the gateway', () => {
    assert.deepEqual(renderPodAdd(plan(network('bridge'))), [
      'addr add 10.244.1.5/24 dev eth0',
      'link set dev eth0 up',
      'route add 0.0.0.0/0 via 10.244.1.1 dev eth0',
    ]);
  });

  it('bridge mode with configured routes', () => {
    const net = network('bridge', {}, [{ dst: '10.96.0.0/12' }, { dst: '192.0.2.0/24', gw: '10.244.1.254' }]);
    assert.deepEqual(renderPodAdd(plan(net)), [
      'addr add 10.244.1.5/24 dev eth0',
      'link set dev eth0 up',
      'route add 10.96.0.0/12 via 10.244.1.1 dev eth0',
      'route add 192.0.2.0/24 via 10.244.1.254 dev eth0',
    ]);
  });

  it('routed mode: /32, permanent neighbour and on-link route for 169.254.1.1 before the routes', () => {
    assert.deepEqual(renderPodAdd(plan(network('routed'))), [
      'addr add 10.244.1.5/32 dev eth0',
      'link set dev eth0 up',
      'neigh replace 169.254.1.1 lladdr 0e:58:0a:f4:01:05 dev eth0 nud permanent',
      'route add 169.254.1.1/32 dev eth0 scope link',
      'route add 0.0.0.0/0 via 169.254.1.1 dev eth0',
    ]);
  });
});

describe('renderMasquerade', () => {
  it('skips the cluster network when known', () => {
    assert.equal(
      renderMasquerade(network('bridge')),
      [
        'table ip twill_cni {',
        '  chain masq_10_244_1_0_24 {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        '  }',
        '}',
        'flush chain ip twill_cni masq_10_244_1_0_24',
        'add rule ip twill_cni masq_10_244_1_0_24 ip saddr 10.244.1.0/24 ip daddr != 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade',
        '',
      ].join('\n'),
    );
  });

  it('skips the node subnet when the cluster network is unknown', () => {
    const net = resolvePodNetwork({
      conf: { cniVersion: '1.1.0', name: 'twill', type: 'twill', ipam: { type: 'twill', subnet: '10.244.1.0/24' } },
      subnetEnv: undefined,
      underlayMtu: 1500,
    });
    const last = renderMasquerade(net).split('\n').at(-2);
    assert.equal(last, 'add rule ip twill_cni masq_10_244_1_0_24 ip saddr 10.244.1.0/24 ip daddr != 10.244.1.0/24 ip daddr != 224.0.0.0/4 masquerade');
  });
});

describe('addResult', () => {
  it('bridge mode: [bridge, host veth, pod]; ips[0].interface = 2', () => {
    const r = addResult(plan(network('bridge')), '1.1.0');
    assert.deepEqual(r, {
      cniVersion: '1.1.0',
      interfaces: [
        { name: 'cni0', mac: '' },
        { name: V, mac: '0e:58:0a:f4:01:05', mtu: 1450 },
        { name: 'eth0', mac: '0a:58:0a:f4:01:05', sandbox: NS, mtu: 1450 },
      ],
      ips: [{ address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 2 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }],
      dns: {},
    });
    assert.equal(r.interfaces?.[r.ips?.[0]?.interface ?? -1]?.sandbox, NS);
  });

  it('routed mode: [host veth, pod]; ips[0].interface = 1, address /32 via 169.254.1.1', () => {
    const r = addResult(plan(network('routed')), '0.4.0');
    assert.deepEqual(r.interfaces?.map((i) => i.name), [V, 'eth0']);
    assert.deepEqual(r.ips, [{ address: '10.244.1.5/32', gateway: '169.254.1.1', interface: 1 }]);
    assert.deepEqual(r.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }]);
    assert.deepEqual((toWire(r, '0.4.0').ips as unknown[])[0], { version: '4', address: '10.244.1.5/32', gateway: '169.254.1.1', interface: 1 });
  });
});
