import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIPv4 } from '../net/ipv4.js';
import { parseFdb, parseIpState } from './kernel-reader.js';
import { parseBatchFailures } from './system-kernel.js';

const ip = (s: string): number => parseIPv4(s) as number;

// Shapes as printed by iproute2 6.1 (`ip -json -details -batch -`), trimmed.
const IP_OUT = [
  JSON.stringify([
    { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP'], mtu: 65536, address: '00:00:00:00:00:00', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
    { ifindex: 3, ifname: 'eth0', flags: ['UP'], mtu: 1500, address: '3e:9c:29:2f:62:e0', linkinfo: { info_kind: 'veth' }, addr_info: [{ family: 'inet', local: '192.0.2.1', prefixlen: 24 }] },
    {
      ifindex: 4,
      ifname: 'twill.1',
      flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
      mtu: 1450,
      address: '0e:00:00:00:00:01',
      linkinfo: {
        info_kind: 'vxlan',
        info_data: { id: 1, local: '192.0.2.1', link: 'eth0', port_range: { low: 0, high: 0 }, port: 8472, learning: false, ttl: 0, udp_csum: true },
      },
      addr_info: [
        { family: 'inet', local: '10.244.1.0', prefixlen: 32, scope: 'global' },
        { family: 'inet6', local: 'fe80::c54:ff:fe00:7', prefixlen: 64, scope: 'link' },
      ],
    },
    { ifindex: 5, ifname: 'twill.x', flags: ['BROADCAST'], mtu: 1500, address: '0e:00:00:00:00:05', linkinfo: { info_kind: 'veth' }, addr_info: [] },
  ]),
  JSON.stringify([
    { type: 'unicast', dst: '10.244.2.0/24', gateway: '10.244.2.0', dev: 'twill.1', scope: 'global', flags: ['onlink'] },
    { type: 'unicast', dst: '10.244.5.0/24', gateway: '192.0.2.5', dev: 'eth0', scope: 'global', flags: ['linkdown'], metric: 20 },
    { type: 'unicast', dst: '10.244.1.7', dev: 'twl0123456789ab', scope: 'link', flags: [] },
    { type: 'blackhole', dst: 'default', flags: [] },
  ]),
  JSON.stringify([
    { dst: '10.244.3.0', dev: 'twill.1', lladdr: '0e:00:00:00:00:03', state: ['PERMANENT'] },
    { dst: '10.244.9.0', dev: 'twill.1', state: ['FAILED'] },
    { dst: '192.0.2.5', dev: 'eth0', lladdr: '3e:00:00:00:00:05', state: ['REACHABLE'] },
    { dst: 'fe80::1', dev: 'twill.1', lladdr: '0e:00:00:00:00:03', state: ['STALE'] },
  ]),
].join('\n');

describe('kernel-reader parsing', () => {
  it('keeps only our links, their IPv4 addresses and neighbours, and every proto-84 route', () => {
    const s = parseIpState(`${IP_OUT}\n`);
    assert.deepEqual(s.links, [
      {
        name: 'twill.1',
        kind: 'vxlan',
        up: true,
        mtu: 1450,
        mac: '0e:00:00:00:00:01',
        vxlan: { vni: 1, port: 8472, local: ip('192.0.2.1'), dev: 'eth0', learning: false, udpCsum: true },
      },
      { name: 'twill.x', kind: 'veth', up: false, mtu: 1500, mac: '0e:00:00:00:00:05' },
    ]);
    assert.deepEqual(s.addresses, [{ dev: 'twill.1', address: ip('10.244.1.0'), prefix: 32 }]);
    assert.deepEqual(s.neighbours, [
      { dev: 'twill.1', ip: ip('10.244.3.0'), mac: '0e:00:00:00:00:03', permanent: true },
      { dev: 'twill.1', ip: ip('10.244.9.0'), mac: '', permanent: false },
    ]);
    assert.deepEqual(s.routes, [
      { dst: { network: ip('10.244.2.0'), prefix: 24 }, type: 'unicast', via: ip('10.244.2.0'), dev: 'twill.1', onlink: true, metric: 0 },
      { dst: { network: ip('10.244.5.0'), prefix: 24 }, type: 'unicast', via: ip('192.0.2.5'), dev: 'eth0', onlink: false, metric: 20 },
      { dst: { network: ip('10.244.1.7'), prefix: 32 }, type: 'unicast', via: undefined, dev: 'twl0123456789ab', onlink: false, metric: 0 },
      { dst: { network: 0, prefix: 0 }, type: 'blackhole', via: undefined, dev: undefined, onlink: false, metric: 0 },
    ]);
  });

  it('refuses output with the wrong number of documents', () => {
    assert.throws(() => parseIpState('[]\n[]\n'), { code: 'read-failed' });
    assert.throws(() => parseFdb(['twill.1', 'twill.2'], '[]\n'), { code: 'read-failed' });
  });

  it('parses FDB entries per device, keeping those with an IPv4 remote', () => {
    const out = [
      JSON.stringify([
        { mac: '0e:00:00:00:00:02', dst: '192.0.2.2', flags: ['self'], state: 'permanent' },
        { mac: '33:33:00:00:00:01', flags: ['self'], state: 'permanent' },
      ]),
      JSON.stringify([]),
    ].join('\n');
    assert.deepEqual(parseFdb(['twill.1', 'twill.2'], out), [{ dev: 'twill.1', mac: '0e:00:00:00:00:02', dst: ip('192.0.2.2') }]);
  });
});

describe('parseBatchFailures', () => {
  const lines = ['a', 'b', 'c', 'd'];
  it('maps "Command failed -:N" back to the line, with the message before it', () => {
    const stderr = 'RTNETLINK answers: File exists\nCommand failed -:2\nCannot find device "nope"\nCommand failed -:4\n';
    assert.deepEqual(parseBatchFailures(lines, stderr, 1), [
      { line: 'b', message: 'RTNETLINK answers: File exists' },
      { line: 'd', message: 'Cannot find device "nope"' },
    ]);
  });
  it('a message without a line marker means ip exited: the batch was aborted', () => {
    assert.deepEqual(parseBatchFailures(lines, 'RTNETLINK answers: No such file or directory\n', 2), [
      { line: undefined, message: 'RTNETLINK answers: No such file or directory (batch aborted)' },
    ]);
    assert.deepEqual(parseBatchFailures(lines, '', 0), []);
    assert.deepEqual(parseBatchFailures(lines, '', 137), [{ line: undefined, message: 'exit status 137 (batch aborted)' }]);
  });
});
