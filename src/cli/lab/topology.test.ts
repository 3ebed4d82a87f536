import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planProbes, renderMatrix, type ProbeResult } from './connectivity.js';
import { podAddresses, type LabState } from './lab.js';
import { planLab, validateLabSpec, type LabSpec } from './topology.js';

const base: LabSpec = { name: 't', nodes: 2, pods: 1, backend: 'vxlan', topology: 'l3', network: '10.244.0.0/16', subnetLen: 24 };

describe('lab topology per IP family', () => {
  it('ipv4 (the default, also for labs saved before dual stack): no IPv6 anywhere, the config as before', () => {
    const p = planLab(base);
    assert.deepEqual(p.clusterConfig, { Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan', VNI: 1, Port: 8472, DirectRouting: false } });
    assert.equal(p.nodes.some((n) => n.address6 !== undefined), false);
    assert.equal(p.segments.some((s) => s.cidr6 !== undefined), false);
  });

  it('dual: an IPv6 underlay per segment from 2001:db8::/32, flannel\'s IPv6 keys in the config', () => {
    const p = planLab({ ...base, ipFamily: 'dual' });
    assert.deepEqual(p.segments.map((s) => [s.cidr6, s.gateway6]), [['2001:db8:0:1::/64', '2001:db8:0:1::1'], ['2001:db8:0:2::/64', '2001:db8:0:2::1']]);
    assert.deepEqual(p.nodes.map((n) => [n.address, n.address6]), [['192.0.2.11', '2001:db8:0:1::11'], ['198.51.100.12', '2001:db8:0:2::12']]);
    assert.deepEqual(p.clusterConfig, {
      Network: '10.244.0.0/16', SubnetLen: 24, EnableIPv6: true, IPv6Network: 'fd00:10:244::/56', IPv6SubnetLen: 64,
      Backend: { Type: 'vxlan', VNI: 1, Port: 8472, DirectRouting: false },
    });
  });

  it('ipv6: IPv6-only cluster (EnableIPv4 false, no Network), the IPv4 underlay kept as management network', () => {
    const p = planLab({ ...base, ipFamily: 'ipv6', network6: 'fd00:20::/56' });
    assert.deepEqual(p.clusterConfig, { EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fd00:20::/56', IPv6SubnetLen: 64, Backend: { Type: 'vxlan', VNI: 1, Port: 8472, DirectRouting: false } });
    assert.equal(p.etcdClientUrl, 'http://192.0.2.1:2379');
    assert.ok(p.nodes.every((n) => n.address6 !== undefined));
  });

  it('rejects an unknown family', () => {
    assert.deepEqual(validateLabSpec({ ...base, ipFamily: 'ipx' as never }), ['--ip-family: one of ipv4, ipv6, dual']);
    assert.deepEqual(validateLabSpec({ ...base, ipFamily: 'ipv6' }), ['--ip-family ipv6: IPv6-only clusters are not supported by twilld yet (use dual)'], 'refused up front, not after a lease timeout');
    assert.deepEqual(validateLabSpec({ ...base, ipFamily: 'dual' }), []);
  });
});

describe('connectivity probes per family', () => {
  const plan = planLab({ ...base, ipFamily: 'dual' });
  const state: LabState = {
    plan,
    pids: {},
    createdAt: '',
    pods: {
      'node1-pod1': { node: 'node1', ip: '10.244.1.2', ips: ['10.244.1.2', 'fd00:10:244:1::2'], netns: 'p1' },
      'node2-pod1': { node: 'node2', ip: '10.244.2.2', ips: ['10.244.2.2', 'fd00:10:244:2::2'], netns: 'p2' },
      // A pod of an older lab (no ips): IPv4 only, probes only IPv4 targets.
      'node2-pod2': { node: 'node2', ip: '10.244.2.3', netns: 'p3' },
    },
  };
  it('probes every address of the first pod of each node and every underlay address, within the source pod\'s families', () => {
    const probes = planProbes(state);
    const from1 = probes.filter((p) => p.from === 'node1-pod1').map((p) => `${p.to} ${p.ip} ${p.family} ${p.tcp}`);
    assert.deepEqual(from1, [
      'node1 192.0.2.11 4 false',
      'node1 2001:db8:0:1::11 6 false',
      'node2-pod1 10.244.2.2 4 true',
      'node2-pod1 fd00:10:244:2::2 6 true',
      'node2 198.51.100.12 4 false',
      'node2 2001:db8:0:2::12 6 false',
    ]);
    assert.equal(probes.filter((p) => p.from === 'node2-pod2' && p.family === 6).length, 0);
    assert.equal(probes.filter((p) => p.from === 'node2-pod2').length, 4);
  });

  it('renders one matrix per family with a title each, and one summary', () => {
    const results: ProbeResult[] = planProbes(state).map((p) => ({ ...p, icmp: !(p.family === 6 && p.to === 'node2'), tcpOk: p.tcp ? true : undefined }));
    const lines = renderMatrix(results);
    assert.equal(lines[0], 'IPv4:');
    const v6 = lines.indexOf('IPv6:');
    assert.ok(v6 > 0, lines.join('\n'));
    assert.match(lines[v6 + 2] ?? '', /^node1-pod1\s+ok\s+-\s+FAIL-icmp\s+ok/);
    assert.equal(lines.at(-1), `connectivity: ${results.length - 2} of ${results.length} probes ok, 2 FAILED`);
  });

  it('reads every address of a CNI result, IPv4 first', () => {
    assert.deepEqual(podAddresses(JSON.stringify({ ips: [{ address: 'fd00:10:244:1::2/64' }, { address: '10.244.1.2/24' }] })), ['10.244.1.2', 'fd00:10:244:1::2']);
    assert.deepEqual(podAddresses('{}'), []);
  });
});
