import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIp, formatPrefix } from '../net/ip.js';
import { UnderlayError, selectUnderlay, selectUnderlay6, type IpAddrLink, type UnderlayFacts } from './local-node.js';

const UP = ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'];
const LINKS: IpAddrLink[] = [
  {
    ifname: 'eth0', flags: UP, mtu: 1500,
    addr_info: [
      { family: 'inet', local: '192.0.2.11', prefixlen: 24, scope: 'global' },
      { family: 'inet6', local: '2001:db8::dead', prefixlen: 64, scope: 'global', temporary: true },
      { family: 'inet6', local: '2001:db8::99', prefixlen: 64, scope: 'global', deprecated: true },
      { family: 'inet6', local: '2001:DB8::11', prefixlen: 64, scope: 'global' },
      { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
    ],
  },
  { ifname: 'eth1', flags: UP, mtu: 1500, addr_info: [{ family: 'inet', local: '198.51.100.1', prefixlen: 24 }, { family: 'inet6', local: '2001:db8:1::1', prefixlen: 64 }] },
  { ifname: 'eth2', flags: UP, mtu: 1500, addr_info: [{ family: 'inet', local: '203.0.113.1', prefixlen: 24 }, { family: 'inet6', local: 'fe80::2', prefixlen: 64 }] },
];
const facts: UnderlayFacts = { links: LINKS, defaultRoutes: [{ dst: 'default', gateway: '192.0.2.1', dev: 'eth0' }] };

describe('IPv6 underlay detection', () => {
  it('the first stable global IPv6 address of the chosen interface (not temporary, deprecated, link-local)', () => {
    const u = selectUnderlay(facts, {});
    assert.equal(u.iface, 'eth0');
    assert.equal(formatIp(u.ip6 ?? { family: 6, value: 0n }), '2001:db8::11');
    assert.equal(formatPrefix(u.cidr6 ?? { family: 6, network: 0n, prefix: 0 }), '2001:db8::/64');
    assert.match(u.reason6 ?? '', /first global IPv6 address on eth0: 2001:db8::11\/64/);
  });

  it('an interface with only a link-local address: dual stack over an IPv4 underlay (no ip6)', () => {
    const u = selectUnderlay(facts, { iface: 'eth2' });
    assert.equal(u.ip6, undefined);
    assert.ok(!('cidr6' in u));
  });

  it('--public-ipv6 wins, found on any interface; unknown or malformed is an UnderlayError', () => {
    const u = selectUnderlay6(facts, 'eth0', '2001:db8:1::1');
    assert.equal(formatIp(u.ip6 ?? { family: 6, value: 0n }), '2001:db8:1::1');
    assert.match(u.reason6 ?? '', /held by eth1/);
    assert.throws(() => selectUnderlay(facts, { ip6: '2001:db8:9::9' }), (e: unknown) => e instanceof UnderlayError && /no interface holds it/.test(e.message));
    assert.throws(() => selectUnderlay(facts, { ip6: '192.0.2.11' }), /not an IPv6 address/);
  });
});
