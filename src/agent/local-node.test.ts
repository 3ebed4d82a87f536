import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommandRunner } from '../dataplane/command.js';
import { formatIPv4 } from '../net/ipv4.js';
import { UnderlayError, detectUnderlay, selectUnderlay, underlayWant, type IpAddrLink, type UnderlayFacts, type UnderlayWant } from './local-node.js';

// Recorded from a namespace (`ip -json -details -batch -` with `route show default` and `addr show`,
// then `ip -json route get ...`), trimmed to the keys selection reads; plus Twill's own devices
// and a link that is down, which autodetection must pass over.
const link = (ifindex: number, ifname: string, flags: string[], addrs: Array<[string, number]>, mtu = 1500): IpAddrLink & { ifindex: number } => ({
  ifindex,
  ifname,
  flags,
  mtu,
  addr_info: [...addrs.map(([local, prefixlen]) => ({ family: 'inet', local, prefixlen, scope: 'global' })), { family: 'inet6', local: 'fe80::1', prefixlen: 64 }],
});
const UP = ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'];
const LINKS = [
  link(1, 'lo', ['LOOPBACK', 'UP', 'LOWER_UP'], [['127.0.0.1', 8]], 65536),
  link(2, 'eth0', UP, [['192.0.2.1', 24]]),
  link(3, 'eth1', UP, [['198.51.100.1', 24], ['198.51.100.77', 24]], 9000),
  link(4, 'eth2', ['BROADCAST', 'MULTICAST'], [['203.0.113.1', 24]]),
  link(5, 'twill.1', UP, [['10.244.3.0', 32]], 1450),
  link(6, 'cni0', UP, [['10.244.3.1', 24]], 1450),
];
const DEFAULT = [{ type: 'unicast', dst: 'default', gateway: '192.0.2.254', dev: 'eth0', protocol: 'boot', scope: 'global', flags: [] }];
const REACH_ETH1 = [{ type: 'unicast', dst: '203.0.113.9', gateway: '198.51.100.254', dev: 'eth1', table: 'main', prefsrc: '198.51.100.1', flags: [], uid: 0, cache: [] }];
const REACH_LOCAL = [{ type: 'local', dst: '198.51.100.77', dev: 'lo', table: 'main', prefsrc: '198.51.100.77', flags: [], uid: 0, cache: ['local'] }];
const facts = (over: Partial<UnderlayFacts> = {}): UnderlayFacts => ({ links: LINKS, defaultRoutes: DEFAULT, ...over });

function pick(want: UnderlayWant, f = facts()): { iface: string; ip: string; prefix: number; mtu: number; reason: string } {
  const u = selectUnderlay(f, want);
  return { iface: u.iface, ip: formatIPv4(u.ip), prefix: u.cidr.prefix, mtu: u.mtu, reason: u.reason };
}

describe('underlay selection', () => {
  it('default route, --public-ip and --public-iface as before, now with a reason', () => {
    assert.deepEqual(pick({}), { iface: 'eth0', ip: '192.0.2.1', prefix: 24, mtu: 1500, reason: 'default route via 192.0.2.254 dev eth0: eth0 192.0.2.1/24' });
    assert.deepEqual(pick({ ip: '198.51.100.77' }), { iface: 'eth1', ip: '198.51.100.77', prefix: 24, mtu: 9000, reason: '--public-ip 198.51.100.77: held by eth1 (198.51.100.77/24)' });
    assert.deepEqual(pick({ iface: 'eth1' }).reason, '--public-iface eth1: eth1 198.51.100.1/24');
    assert.throws(() => selectUnderlay(facts({ defaultRoutes: [] }), {}), (e: unknown) => e instanceof UnderlayError && /no IPv4 default route/.test(e.message));
    assert.throws(() => selectUnderlay(facts(), { ip: '192.0.2.99' }), /--public-ip 192\.0\.2\.99: no interface holds it/);
  });

  it('--iface-regex: first matching interface (name, else an address), never lo, a down link or Twill\'s own devices', () => {
    assert.deepEqual(pick({ ifaceRegex: ['^eth[12]$'] }), { iface: 'eth1', ip: '198.51.100.1', prefix: 24, mtu: 9000, reason: '--iface-regex ^eth[12]$: eth1 198.51.100.1/24 (name matches)' });
    assert.equal(pick({ ifaceRegex: ['^198\\.51\\.100\\.77$'] }).reason, '--iface-regex ^198\\.51\\.100\\.77$: eth1 198.51.100.77/24 (address matches)');
    assert.equal(pick({ ifaceRegex: ['^nomatch', '^eth0$'] }).iface, 'eth0', 'regexes are tried in order');
    assert.equal(pick({ ifaceRegex: ['.*'] }).iface, 'eth0', 'lo (index 1) is skipped');
    assert.throws(() => selectUnderlay(facts(), { ifaceRegex: ['^(eth2|twill\\.1|cni0|lo)$'] }), /--iface-regex .*: no interface with an IPv4 address matches/);
  });

  it('--iface-cidr: the first address inside the CIDR', () => {
    assert.deepEqual(pick({ ifaceCidr: ['198.51.100.64/26'] }), { iface: 'eth1', ip: '198.51.100.77', prefix: 24, mtu: 9000, reason: '--iface-cidr 198.51.100.64/26: eth1 holds 198.51.100.77/24' });
    assert.equal(pick({ ifaceCidr: ['10.0.0.0/8', '192.0.2.0/24'] }).iface, 'eth0', 'Twill\'s 10.244 devices are not candidates; the next CIDR is');
  });

  it('--iface-can-reach: the device and source address of the kernel\'s route', () => {
    assert.deepEqual(pick({ canReach: '203.0.113.9' }, facts({ reach: REACH_ETH1 })), {
      iface: 'eth1',
      ip: '198.51.100.1',
      prefix: 24,
      mtu: 9000,
      reason: '--iface-can-reach 203.0.113.9: route via eth1 gateway 198.51.100.254 src 198.51.100.1',
    });
    assert.equal(pick({ canReach: '198.51.100.77' }, facts({ reach: REACH_LOCAL })).reason, '--iface-can-reach 198.51.100.77: route via eth1 src 198.51.100.77', 'a local target: the interface holding it');
    assert.throws(() => selectUnderlay(facts({ reach: [] }), { canReach: '203.0.113.9' }), /--iface-can-reach 203\.0\.113\.9: no route/);
  });

  it('methods given together fall through in the documented order; every miss is reported', () => {
    assert.equal(pick({ iface: 'eth9', ifaceRegex: ['^eth1$'], canReach: '203.0.113.9' }, facts({ reach: REACH_ETH1 })).reason, '--iface-regex ^eth1$: eth1 198.51.100.1/24 (name matches)');
    assert.equal(pick({ ifaceRegex: ['^x'], ifaceCidr: ['192.0.2.0/24'], canReach: '203.0.113.9' }, facts({ reach: REACH_ETH1 })).iface, 'eth0', 'cidr before can-reach');
    assert.throws(
      () => selectUnderlay(facts({ reach: [] }), { iface: 'eth9', ifaceRegex: ['^x'], ifaceCidr: ['203.0.113.0/24'], canReach: '203.0.113.9' }),
      (e: unknown) =>
        e instanceof UnderlayError &&
        e.message === 'no underlay address: --public-iface eth9: interface eth9 not found; --iface-regex ^x: no interface with an IPv4 address matches; --iface-cidr 203.0.113.0/24: no interface holds an address inside it; --iface-can-reach 203.0.113.9: no route',
    );
  });

  it('underlayWant maps the options; detectUnderlay asks the kernel for the can-reach route only when needed', () => {
    assert.deepEqual(underlayWant({ publicIface: 'eth1', ifaceRegex: [], ifaceCidr: ['192.0.2.0/24'] }), { iface: 'eth1', ifaceCidr: ['192.0.2.0/24'] });
    const calls: string[] = [];
    const runner: CommandRunner = {
      run: (argv, input) => {
        calls.push(`${argv.join(' ')} <<< ${(input ?? '').trim().replace(/\n/g, '; ')}`);
        if ((input ?? '').startsWith('route get 203.0.113.9')) return { status: 0, stdout: `${JSON.stringify(REACH_ETH1)}\n`, stderr: '' };
        if ((input ?? '').startsWith('route get')) return { status: 2, stdout: '', stderr: 'RTNETLINK answers: Network is unreachable' };
        return { status: 0, stdout: `${JSON.stringify(DEFAULT)}\n${JSON.stringify(LINKS)}\n`, stderr: '' };
      },
    };
    assert.equal(detectUnderlay(runner, {}).iface, 'eth0');
    assert.equal(calls.length, 1);
    assert.equal(detectUnderlay(runner, { canReach: '203.0.113.9' }).iface, 'eth1');
    assert.match(calls[2] ?? '', /^ip -json -details -batch - <<< route get 203\.0\.113\.9$/);
    assert.throws(() => detectUnderlay(runner, { canReach: '198.18.0.1' }), /Network is unreachable/);
    assert.equal(detectUnderlay(runner, { canReach: '198.18.0.1', ifaceRegex: ['^eth0$'] }).iface, 'eth0', 'an unreachable target is a miss when another method is given');
    assert.throws(() => detectUnderlay(runner, { canReach: '1.2.3.4; reboot' }), /not an IPv4 address/, 'nothing unvalidated reaches ip');
  });
});
