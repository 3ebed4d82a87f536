import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseCidr, parseIPv4 } from '../net/ipv4.js';
import { bridgeAlias, bridgeHasOtherRoutes, isTwillBridge, parseProcRoutes, staleBridgeAddresses } from './bridge-gateway.js';

// As the kernel prints it (ip route: default via 192.0.2.254 dev eth0; 192.0.2.0/24 dev eth0;
// 10.244.1.0/24 dev cni0; 10.244.7.0/24 dev cni0; 10.99.0.0/16 via 192.0.2.9 dev eth0).
const PROC = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\tFE0200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
cni0\t0001F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
cni0\t0007F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t0000630A\t090200C0\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0
`;
const cidr = (t: string) => {
  const c = parseCidr(t, true);
  assert.ok(c);
  return { network: c.network, prefix: c.prefix };
};
const ip = (t: string) => parseIPv4(t) as number;

describe('bridge gateway', () => {
  it('parseProcRoutes: connected routes with device, destination and prefix', () => {
    assert.deepEqual(parseProcRoutes(PROC), [
      { dev: 'eth0', dst: cidr('192.0.2.0/24') },
      { dev: 'cni0', dst: cidr('10.244.1.0/24') },
      { dev: 'cni0', dst: cidr('10.244.7.0/24') },
    ]);
    assert.deepEqual(parseProcRoutes(''), []);
  });

  it('bridgeHasOtherRoutes: only a route on the bridge other than the current subnet counts', () => {
    const routes = parseProcRoutes(PROC);
    assert.equal(bridgeHasOtherRoutes(routes, 'cni0', cidr('10.244.1.0/24')), true);
    assert.equal(bridgeHasOtherRoutes(routes.filter((r) => r.dst.network !== ip('10.244.7.0')), 'cni0', cidr('10.244.1.0/24')), false);
    assert.equal(bridgeHasOtherRoutes(routes, 'cni1', cidr('10.244.1.0/24')), false);
    assert.equal(bridgeHasOtherRoutes(routes, 'cni0', cidr('10.244.1.0/25')), true, 'a changed prefix is a change');
  });

  const addrs = (...a: string[]) => a.map((x) => ({ family: 'inet', local: x.split('/')[0], prefixlen: Number(x.split('/')[1]) }));

  it('Twill`s bridge (alias, or no alias and the MAC Twill derives from an address) loses every other IPv4 address', () => {
    const marked = { ifalias: bridgeAlias('twill'), address: '02:11:22:33:44:55', addr_info: [...addrs('10.244.7.1/24', '10.244.1.1/24', '10.244.1.1/25'), { family: 'inet6', local: 'fe80::1', prefixlen: 64 }] };
    assert.deepEqual(staleBridgeAddresses(marked, 'twill', ip('10.244.1.1'), 24), ['10.244.7.1/24', '10.244.1.1/25']);
    const legacy = { address: '0e:58:0a:f4:07:01', addr_info: addrs('10.244.7.1/24', '10.244.1.1/24') };
    assert.ok(isTwillBridge(legacy, 'twill'));
    assert.deepEqual(staleBridgeAddresses(legacy, 'twill', ip('10.244.1.1'), 24), ['10.244.7.1/24']);
    assert.deepEqual(staleBridgeAddresses({ ...marked, addr_info: addrs('10.244.1.1/24') }, 'twill', ip('10.244.1.1'), 24), []);
  });

  it('a bridge that is not Twill`s keeps all its addresses', () => {
    const operators = { address: '02:11:22:33:44:55', addr_info: addrs('192.0.2.1/24', '10.244.1.1/24') };
    assert.equal(isTwillBridge(operators, 'twill'), false);
    assert.deepEqual(staleBridgeAddresses(operators, 'twill', ip('10.244.1.1'), 24), []);
    const otherNetwork = { ifalias: bridgeAlias('other'), address: '0e:58:0a:f4:07:01', addr_info: addrs('10.244.7.1/24') };
    assert.deepEqual(staleBridgeAddresses(otherNetwork, 'twill', ip('10.244.1.1'), 24), [], 'another network`s bridge');
    const aliasedByOperator = { ifalias: 'uplink', address: '0e:58:0a:f4:07:01', addr_info: addrs('10.244.7.1/24') };
    assert.deepEqual(staleBridgeAddresses(aliasedByOperator, 'twill', ip('10.244.1.1'), 24), []);
  });
});
