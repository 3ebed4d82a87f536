import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VxlanLinkSpec } from '../backends/types.js';
import { parseIPv4 } from '../net/ipv4.js';
import {
  InvalidSpecError,
  renderAddr,
  renderFdb,
  renderLinkAdd,
  renderLinkDel,
  renderLinkSet,
  renderNeighDel,
  renderNeighReplace,
  renderRoute,
  renderRouteDel,
} from './render-ip.js';

const ip = (s: string): number => parseIPv4(s) as number;
const link: VxlanLinkSpec = {
  kind: 'vxlan',
  name: 'twill.1',
  vni: 1,
  port: 8472,
  local: ip('192.0.2.11'),
  dev: 'eth0',
  mtu: 1450,
  mac: '0e:54:c0:00:02:0b',
  learning: false,
  udpCsum: true,
};

describe('render-ip', () => {
  it('renders every object kind (golden lines)', () => {
    const lines = [
      renderLinkAdd(link),
      renderLinkSet(link),
      renderLinkDel('twill.1'),
      renderAddr('replace', { dev: 'twill.1', address: ip('10.244.1.0'), prefix: 32 }),
      renderAddr('del', { dev: 'twill.1', address: ip('10.244.1.0'), prefix: 32 }),
      renderNeighReplace({ dev: 'twill.1', ip: ip('10.244.2.0'), mac: '0e:54:c0:00:02:0c' }),
      renderNeighDel({ dev: 'twill.1', ip: ip('10.244.2.0') }),
      renderFdb('replace', { dev: 'twill.1', mac: '0e:54:c0:00:02:0c', dst: ip('192.0.2.12') }),
      renderFdb('del', { dev: 'twill.1', mac: '0e:54:c0:00:02:0c', dst: ip('192.0.2.12') }),
      renderRoute('add', { dst: { network: ip('10.244.2.0'), prefix: 24 }, via: ip('10.244.2.0'), dev: 'twill.1', onlink: true }),
      renderRoute('replace', { dst: { network: ip('10.244.2.0'), prefix: 24 }, via: ip('192.0.2.12'), dev: 'eth0', onlink: false }),
      renderRouteDel({ dst: { network: ip('10.244.2.0'), prefix: 24 }, type: 'unicast', via: undefined, dev: undefined, onlink: false, metric: 0 }),
      renderRouteDel({ dst: { network: ip('10.244.9.0'), prefix: 24 }, type: 'blackhole', via: undefined, dev: undefined, onlink: false, metric: 20 }),
    ].map((c) => `${c.program}/${c.kind}: ${c.line}`);
    assert.deepEqual(lines, [
      'ip/link: link add twill.1 address 0e:54:c0:00:02:0b mtu 1450 up type vxlan id 1 local 192.0.2.11 dev eth0 dstport 8472 nolearning udpcsum',
      'ip/link: link set dev twill.1 address 0e:54:c0:00:02:0b mtu 1450 up',
      'ip/link: link del dev twill.1',
      'ip/addr: address replace 10.244.1.0/32 dev twill.1',
      'ip/addr: address del 10.244.1.0/32 dev twill.1',
      'ip/neigh: neigh replace 10.244.2.0 lladdr 0e:54:c0:00:02:0c dev twill.1 nud permanent',
      'ip/neigh: neigh del 10.244.2.0 dev twill.1',
      'bridge/fdb: fdb replace 0e:54:c0:00:02:0c dev twill.1 dst 192.0.2.12 self permanent',
      'bridge/fdb: fdb del 0e:54:c0:00:02:0c dev twill.1 dst 192.0.2.12 self',
      'ip/route: route add 10.244.2.0/24 via 10.244.2.0 dev twill.1 onlink proto 84',
      'ip/route: route replace 10.244.2.0/24 via 192.0.2.12 dev eth0 proto 84',
      'ip/route: route del 10.244.2.0/24 proto 84',
      'ip/route: route del blackhole 10.244.9.0/24 proto 84 metric 20',
    ]);
  });

  it('rejects anything that could change the meaning of a batch line', () => {
    const bad: [string, () => unknown][] = [
      ['newline in a device name', () => renderLinkDel('twill.1\nlink del eth0')],
      ['space in a device name', () => renderAddr('del', { dev: 'eth0 up', address: 1, prefix: 32 })],
      ['device name too long', () => renderLinkDel('twill.1234567890ab')],
      ['device name ..', () => renderLinkDel('..')],
      ['bad MAC', () => renderNeighReplace({ dev: 'twill.1', ip: 1, mac: '0e:54:c0:00:02' })],
      ['upper-case MAC words', () => renderFdb('replace', { dev: 'twill.1', mac: 'self permanent', dst: 1 })],
      ['negative address', () => renderFdb('replace', { dev: 'twill.1', mac: '0e:00:00:00:00:01', dst: -1 })],
      ['fractional address', () => renderNeighDel({ dev: 'twill.1', ip: 1.5 })],
      ['address above 2^32', () => renderNeighDel({ dev: 'twill.1', ip: 2 ** 32 })],
      ['host bits in a route destination', () => renderRoute('add', { dst: { network: ip('10.244.2.1'), prefix: 24 }, via: 1, dev: 'eth0', onlink: false })],
      ['prefix 33', () => renderAddr('replace', { dev: 'twill.1', address: 1, prefix: 33 })],
      ['VNI 0', () => renderLinkAdd({ ...link, vni: 0 })],
      ['MTU 10', () => renderLinkSet({ ...link, mtu: 10 })],
      ['port 70000', () => renderLinkAdd({ ...link, port: 70000 })],
      ['unknown route type', () => renderRouteDel({ dst: { network: 0, prefix: 0 }, type: 'x y', via: undefined, dev: undefined, onlink: false, metric: 0 })],
    ];
    for (const [what, f] of bad) assert.throws(f, InvalidSpecError, what);
  });
});
