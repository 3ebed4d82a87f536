import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCidr } from '../net/ipv4.js';
import { parseIpOf, parsePrefixOf, type Ip, type IpPrefix } from '../net/ip.js';
import { agentChains, agentRules, notrackRules6, renderAgentTable } from './nft-rules.js';
import { ip6MasqOn, parseAgentOptions } from './options.js';

const net = parseCidr('10.244.0.0/16', true) as { network: number; prefix: number };
const sub = parseCidr('10.244.7.0/24', true) as { network: number; prefix: number };
const pfx6 = (s: string): IpPrefix => {
  const p = parsePrefixOf(6, s, true) as IpPrefix;
  return { family: 6, network: p.network, prefix: p.prefix };
};
const input = { clusterNetwork: net, nodeSubnet: sub, ipMasq: true };
const dual = { ...input, clusterNetwork6: pfx6('fd00:10:244::/56'), nodeSubnet6: pfx6('fd00:10:244:7::/64') };

describe('agent nftables table, dual stack', () => {
  it('forward accepts cover the v6 network; v6 masquerade only with ip6Masq', () => {
    const off = agentRules(dual);
    assert.deepEqual(off.forward, ['ip saddr 10.244.0.0/16 accept', 'ip daddr 10.244.0.0/16 accept', 'ip6 saddr fd00:10:244::/56 accept', 'ip6 daddr fd00:10:244::/56 accept']);
    assert.equal(off.postrouting.length, 4, 'IPv4 masquerade only: --ip6-masq is off by default');
    assert.ok(!off.postrouting.some((r) => r.startsWith('ip6')));
    const on = agentRules({ ...dual, ip6Masq: true });
    assert.deepEqual(on.postrouting.slice(4), [
      'ip6 saddr fd00:10:244::/56 ip6 daddr fd00:10:244::/56 return',
      'ip6 saddr fd00:10:244::/56 ip6 daddr != ff00::/8 masquerade fully-random',
      'ip6 saddr != fd00:10:244::/56 ip6 daddr fd00:10:244:7::/64 return',
      'ip6 saddr != fd00:10:244::/56 ip6 daddr fd00:10:244::/56 masquerade fully-random',
    ]);
    const v6only = agentChains({ ...dual, ipMasq: false, ip6Masq: true });
    assert.equal(v6only['postrouting']?.length, 5, 'a nat chain for the v6 rules alone');
  });

  it('an IPv4-only input renders the IPv4-only table byte for byte', () => {
    assert.equal(renderAgentTable({ ...input, ip6Masq: true }).text, renderAgentTable(input).text);
  });

  it('notrack for VXLAN over an IPv6 underlay', () => {
    const local = parseIpOf(6, '2001:db8::11') as Ip;
    assert.deepEqual(notrackRules6([{ local, port: 8472 }, { local, port: 8472 }]), {
      prerouting: ['ip6 daddr 2001:db8::11 udp dport 8472 notrack'],
      output: ['ip6 saddr 2001:db8::11 udp dport 8472 notrack'],
    });
    const c = agentChains({ ...input, tunnels: [{ local: 1, port: 8472 }], tunnels6: [{ local, port: 8472 }] });
    assert.equal(c['raw-prerouting']?.length, 3);
  });

  it('--ip6-masq is off by default; flag and TWILL_IP6_MASQ turn it on', () => {
    const base = ['--node-name', 'n1'];
    const d = parseAgentOptions(base, {});
    assert.ok(d.ok && !ip6MasqOn(d.options) && !('ip6Masq' in d.options));
    const f = parseAgentOptions([...base, '--ip6-masq'], {});
    assert.ok(f.ok && ip6MasqOn(f.options));
    const e = parseAgentOptions(base, { TWILL_IP6_MASQ: 'true' });
    assert.ok(e.ok && ip6MasqOn(e.options));
    const bad = parseAgentOptions(base, { TWILL_IP6_MASQ: 'maybe' });
    assert.equal(bad.ok, false);
  });
});
