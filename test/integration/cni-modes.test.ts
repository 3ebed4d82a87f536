/**
 * twill-cni in real namespaces, for every supported CNI version and both modes: ADD (result shape
 * per version, kernel state read back with `ip -json`, real pings), re-ADD, CHECK, DEL twice; then
 * GC and STATUS at 1.1.0. Each case gets a fresh host netns and fresh pod netns (withScope).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { cni, hostState, must, ping, sh, withScope, type CniReply, type Scope } from './harness.js';
import { CNI_ROUTE_PROTO, CNI_ROUTE_PROTO_NAME } from '../../src/common/constants.js';

const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
const MODES = ['bridge', 'routed'] as const;
type Version = (typeof VERSIONS)[number];
type Mode = (typeof MODES)[number];

const NETWORK = 'twtest';
const MTU = 1400;
const IFNAME = 'eth0';
const ROUTED_GW = '169.254.1.1';
/** Underlay address the host holds on lo in routed mode: the pods' ping target "on the host". */
const HOST_LO_ADDR = '192.0.2.1';
const TIMEOUT = 120_000;

type Json = Record<string, unknown>;

interface Net {
  host: string;
  dataDir: string;
  subnetFile: string;
  /** Third octet of 10.210.N.0/24. */
  n: number;
  config(extra?: Json): Json;
}

function netnsPath(ns: string): string {
  return `/run/netns/${ns}`;
}

function atLeast(v: Version, min: Version): boolean {
  return VERSIONS.indexOf(v) >= VERSIONS.indexOf(min);
}

/** A fresh host netns with its own IPAM dir and a config factory for `10.210.<n>.0/24`. */
/** `withSubnet: false` leaves ipam.subnet out (the subnet file decides). */
function setupNet(s: Scope, version: Version, mode: Mode, n: number, withSubnet = true): Net {
  const host = s.netns('host');
  const dataDir = s.tmpdir('ipam');
  const subnetFile = path.join(dataDir, 'subnet.env');
  const config = (extra: Json = {}): Json => {
    const ipam: Json = { type: 'twill', dataDir, subnetFile };
    if (withSubnet) ipam.subnet = `10.210.${n}.0/24`;
    return { cniVersion: version, name: NETWORK, type: 'twill', mode, mtu: MTU, ipam, ...extra };
  };
  return { host, dataDir, subnetFile, n, config };
}

function call(net: Net, command: string, containerId: string, netns: string | undefined, config: Json = net.config()): CniReply {
  return cni({ command, containerId, netns: netns === undefined ? '' : netnsPath(netns), ifName: IFNAME, host: net.host, config });
}

function ok(r: CniReply, what: string): Json {
  assert.equal(r.status, 0, `${what}: exit ${r.status}, stdout ${r.stdout}, stderr ${r.stderr}`);
  return r.json ?? {};
}

function failsWith(r: CniReply, code: number, what: string): Json {
  assert.notEqual(r.status, 0, `${what}: expected failure, got exit 0 (${r.stdout})`);
  assert.ok(r.json, `${what}: stdout is not JSON: ${r.stdout}`);
  assert.equal(r.json.code, code, `${what}: ${r.stdout}`);
  assert.equal(typeof r.json.msg, 'string');
  return r.json;
}

function ipJson<T = Json>(ns: string, args: readonly string[]): T[] {
  return JSON.parse(must(['ip', '-n', ns, '-json', ...args]) || '[]') as T[];
}

function linkExists(ns: string, name: string): boolean {
  return sh(['ip', '-n', ns, 'link', 'show', 'dev', name]).status === 0;
}

function expectedVeth(containerId: string): string {
  return `twl${createHash('sha256').update(`${containerId}/${IFNAME}`).digest('hex').slice(0, 12)}`;
}

function macOf(prefix: string, ip: string): string {
  return [prefix, '58', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

function reservations(net: Net): string[] {
  try {
    return readdirSync(path.join(net.dataDir, NETWORK))
      .filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))
      .sort();
  } catch {
    return [];
  }
}

function ourVeths(ns: string): string[] {
  return ipJson<{ ifname: string }>(ns, ['link', 'show', 'type', 'veth'])
    .map((l) => l.ifname)
    .filter((n) => /^twl[0-9a-f]{12}$/.test(n))
    .sort();
}

/** hostState once the kernel is quiet (veth carrier and IPv6 link-local come up asynchronously). */
function settledHostState(net: Net): string {
  let prev = '';
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const now = hostState(net.host, net.dataDir);
    const dadPending = sh(['ip', '-n', net.host, '-6', 'addr', 'show', 'tentative']).stdout.trim() !== '';
    if (now === prev && !now.includes('NO-CARRIER') && !dadPending) return now;
    prev = now;
    sh(['sleep', '0.1']);
  }
  throw new Error(`host netns did not settle: ${prev}`);
}

interface Attached {
  ns: string;
  containerId: string;
  result: Json;
  ip: string;
  hostVeth: string;
}

/** Checks the ADD result JSON against what `version` and `mode` promise; returns the pod's facts. */
function assertResult(net: Net, version: Version, mode: Mode, ns: string, containerId: string, result: Json, mtu = MTU): Attached {
  const subnetPrefix = `10.210.${net.n}.`;
  assert.equal(result.cniVersion, version);
  const ifs = result.interfaces as Json[];
  const ips = result.ips as Json[];
  assert.ok(Array.isArray(ifs) && Array.isArray(ips), 'interfaces and ips are arrays');
  assert.equal(ifs.length, mode === 'bridge' ? 3 : 2, `interfaces: ${JSON.stringify(ifs)}`);
  assert.equal(ips.length, 1);
  const ip0 = ips[0] as Json;
  if (atLeast(version, '1.0.0')) assert.ok(!('version' in ip0), `no ips[].version at ${version}`);
  else assert.equal(ip0.version, '4', `ips[].version "4" at ${version}`);
  for (const i of ifs) {
    if (version === '1.1.0') {
      if (i.sandbox !== undefined || String(i.name).startsWith('twl')) assert.equal(i.mtu, mtu, `interfaces[].mtu at 1.1.0: ${JSON.stringify(i)}`);
    } else {
      assert.ok(!('mtu' in i), `no interfaces[].mtu at ${version}: ${JSON.stringify(i)}`);
    }
  }
  const idx = ip0.interface as number;
  assert.equal(typeof idx, 'number');
  const podIf = ifs[idx] as Json;
  assert.equal(podIf.name, IFNAME);
  assert.equal(podIf.sandbox, netnsPath(ns));
  const [addr, prefix] = String(ip0.address).split('/') as [string, string];
  assert.equal(prefix, mode === 'bridge' ? '24' : '32');
  assert.ok(addr.startsWith(subnetPrefix), `${addr} in 10.210.${net.n}.0/24`);
  const last = Number(addr.slice(subnetPrefix.length));
  assert.ok(last >= 2 && last <= 254, `${addr} is neither network, gateway nor broadcast`);
  const gw = mode === 'bridge' ? `${subnetPrefix}1` : ROUTED_GW;
  assert.equal(ip0.gateway, gw);
  assert.equal(podIf.mac, macOf('0a', addr));
  assert.deepEqual(result.routes, [{ dst: '0.0.0.0/0', gw }]);

  const hostVeth = expectedVeth(containerId);
  const hostIf = ifs.find((i) => i.name === hostVeth);
  assert.ok(hostIf, `host veth ${hostVeth} in the result`);
  assert.equal(hostIf.mac, macOf('0e', addr));
  assert.equal(hostIf.sandbox, undefined);
  if (mode === 'bridge') assert.deepEqual((ifs[0] as Json).name, 'cni0');
  return { ns, containerId, result, ip: addr, hostVeth };
}

/** Reads the kernel back: pod interface, host veth, bridge port or /32 route and proxy_arp. */
function assertKernel(net: Net, mode: Mode, pod: Attached, mtu = MTU): void {
  const podIf = (pod.result.interfaces as Json[])[(pod.result.ips as Json[])[0]?.interface as number] as Json;
  const [link] = ipJson(pod.ns, ['-details', 'addr', 'show', 'dev', IFNAME]);
  assert.ok(link, `${IFNAME} exists in ${pod.ns}`);
  assert.equal(link.ifname, IFNAME);
  assert.equal(link.address, podIf.mac);
  assert.equal(link.mtu, mtu);
  assert.ok((link.flags as string[]).includes('UP'));
  const inet = (link.addr_info as Json[]).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
  assert.deepEqual(inet, [(pod.result.ips as Json[])[0]?.address]);
  const [def] = ipJson(pod.ns, ['route', 'show', 'default']);
  assert.equal(def?.gateway, mode === 'bridge' ? `10.210.${net.n}.1` : ROUTED_GW);

  const [veth] = ipJson(net.host, ['-details', 'link', 'show', 'dev', pod.hostVeth]);
  assert.ok(veth, `host veth ${pod.hostVeth}`);
  assert.equal(veth.mtu, mtu);
  assert.equal(veth.address, macOf('0e', pod.ip));
  assert.equal(veth.ifalias, `twill/${NETWORK}/${pod.containerId}/${IFNAME}`);
  assert.ok((veth.flags as string[]).includes('UP'));
  if (mode === 'bridge') {
    assert.equal(veth.master, 'cni0');
    const [br] = ipJson(net.host, ['addr', 'show', 'dev', 'cni0']);
    const brAddrs = (br?.addr_info as Json[]).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
    assert.deepEqual(brAddrs, [`10.210.${net.n}.1/24`]);
  } else {
    assert.equal(veth.master, undefined);
    const routes = ipJson(net.host, ['route', 'show', 'table', 'main']).filter((r) => r.dst === pod.ip);
    assert.equal(routes.length, 1, `one /32 route to ${pod.ip}: ${JSON.stringify(routes)}`);
    assert.equal(routes[0]?.dev, pod.hostVeth);
    assert.ok([String(CNI_ROUTE_PROTO), CNI_ROUTE_PROTO_NAME].includes(String(routes[0]?.protocol)), `the plugin's own protocol: ${String(routes[0]?.protocol)}`);
    assert.equal(routes[0]?.scope, 'link');
    const proxyArp = must(['ip', 'netns', 'exec', net.host, 'cat', `/proc/sys/net/ipv4/conf/${pod.hostVeth}/proxy_arp`]).trim();
    assert.equal(proxyArp, '1');
    const [neigh] = ipJson(pod.ns, ['neigh', 'show', ROUTED_GW, 'dev', IFNAME]);
    assert.equal(neigh?.lladdr, macOf('0e', pod.ip));
  }
}

function assertPing(from: string, to: string, what: string): void {
  assert.ok(ping(from, to), `${what}: ping ${from} -> ${to}`);
}

/** The target a pod pings "on the host": the bridge gateway, or an address on the host's lo. */
function hostTarget(net: Net, mode: Mode): string {
  if (mode === 'bridge') return `10.210.${net.n}.1`;
  if (!sh(['ip', '-n', net.host, 'addr', 'show', 'dev', 'lo']).stdout.includes(`${HOST_LO_ADDR}/32`)) {
    must(['ip', '-n', net.host, 'addr', 'add', `${HOST_LO_ADDR}/32`, 'dev', 'lo']);
  }
  return HOST_LO_ADDR;
}

function add(net: Net, version: Version, mode: Mode, ns: string, containerId: string): Attached {
  const result = ok(call(net, 'ADD', containerId, ns), `ADD ${containerId}`);
  return assertResult(net, version, mode, ns, containerId, result);
}

function assertGone(net: Net, pod: Attached): void {
  assert.equal(linkExists(net.host, pod.hostVeth), false, `host veth ${pod.hostVeth} is gone`);
  assert.equal(linkExists(pod.ns, IFNAME), false, `${IFNAME} is gone from ${pod.ns}`);
  assert.equal(existsSync(path.join(net.dataDir, NETWORK, pod.ip)), false, `reservation ${pod.ip} is gone`);
  assert.equal(existsSync(path.join(net.dataDir, NETWORK, 'by-attachment', `${pod.containerId}@${IFNAME}`)), false, 'index entry is gone');
  assert.equal(ipJson(net.host, ['route', 'show', 'table', 'main']).filter((r) => r.dst === pod.ip).length, 0, `no route to ${pod.ip}`);
}

describe('twill-cni: every CNI version x mode', () => {
  VERSIONS.forEach((version, vi) => {
    MODES.forEach((mode, mi) => {
      test(`${mode} mode at cniVersion ${version}`, { timeout: TIMEOUT }, () =>
        withScope((s) => {
          const net = setupNet(s, version, mode, vi * 2 + mi);
          const ns1 = s.netns('pod');
          const ns2 = s.netns('pod');

          // ADD two pods: result shape and kernel state.
          const p1 = add(net, version, mode, ns1, 'c1');
          const p2 = add(net, version, mode, ns2, 'c2');
          assert.notEqual(p1.ip, p2.ip);
          assert.deepEqual(reservations(net), [p1.ip, p2.ip].sort());
          assertKernel(net, mode, p1);
          assertKernel(net, mode, p2);
          assert.equal(must(['ip', 'netns', 'exec', net.host, 'cat', '/proc/sys/net/ipv4/ip_forward']).trim(), '1');

          // Real packets: pod to pod, pod to the host.
          const target = hostTarget(net, mode);
          assertPing(ns1, p2.ip, 'pod1 -> pod2');
          assertPing(ns2, p1.ip, 'pod2 -> pod1');
          assertPing(ns1, target, 'pod1 -> host');

          // The same container + ifname ADDed again keeps its address and still works.
          const again = add(net, version, mode, ns1, 'c1');
          assert.equal(again.ip, p1.ip);
          assert.deepEqual(again.result, p1.result);
          assert.deepEqual(reservations(net), [p1.ip, p2.ip].sort());
          assertKernel(net, mode, again);
          assertPing(ns1, p2.ip, 'pod1 -> pod2 after re-ADD');

          if (atLeast(version, '0.4.0')) {
            ok(call(net, 'CHECK', 'c1', ns1, net.config({ prevResult: p1.result })), 'CHECK pod1');
            ok(call(net, 'CHECK', 'c2', ns2, net.config({ prevResult: p2.result })), 'CHECK pod2');
            // Kernel drift that CHECK must see.
            must(['ip', '-n', ns1, 'route', 'del', 'default']);
            const noRoute = failsWith(call(net, 'CHECK', 'c1', ns1, net.config({ prevResult: p1.result })), 103, 'CHECK without default route');
            assert.match(String(noRoute.msg), /route 0\.0\.0\.0\/0 via [0-9.]+ is missing/);
            must(['ip', '-n', ns2, 'link', 'set', 'dev', IFNAME, 'mtu', '1300']);
            const badMtu = failsWith(call(net, 'CHECK', 'c2', ns2, net.config({ prevResult: p2.result })), 103, 'CHECK with changed MTU');
            assert.match(String(badMtu.msg), /MTU is 1300, expected 1400/);
          }

          // DEL twice: both succeed; link, route and reservation are gone.
          for (const p of [p1, p2]) {
            for (let i = 0; i < 2; i++) {
              const r = call(net, 'DEL', p.containerId, p.ns);
              assert.equal(r.status, 0, `DEL #${i + 1} ${p.containerId}: ${r.stdout} ${r.stderr}`);
              assert.equal(r.stdout, '');
            }
            assertGone(net, p);
          }
          assert.deepEqual(reservations(net), []);
          assert.deepEqual(ourVeths(net.host), []);
        }),
      );
    });
  });
});

describe('twill-cni GC at 1.1.0', () => {
  MODES.forEach((mode, mi) => {
    test(`GC in ${mode} mode`, { timeout: TIMEOUT }, () =>
      withScope((s) => {
        const net = setupNet(s, '1.1.0', mode, 20 + mi);
        // The before/after comparison below must not see IPv6 link-local addresses that the kernel
        // adds asynchronously to new links (the plugin is IPv4-only).
        must(['ip', 'netns', 'exec', net.host, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
        const pods = ['c1', 'c2', 'c3'].map((id) => add(net, '1.1.0', mode, s.netns('pod'), id));
        // A pod of another network on the same host and IPAM dir: GC of NETWORK must not touch it.
        const otherNs = s.netns('pod');
        const otherConf = {
          ...net.config(),
          name: 'twother',
          bridge: 'cni1',
          ipam: { type: 'twill', subnet: `10.210.${30 + mi}.0/24`, dataDir: net.dataDir, subnetFile: net.subnetFile },
        };
        ok(cni({ command: 'ADD', containerId: 'c9', netns: netnsPath(otherNs), ifName: IFNAME, host: net.host, config: otherConf }), 'ADD other network');
        const otherVeth = expectedVeth('c9');
        const [p1, p2, p3] = pods as [Attached, Attached, Attached];
        const gc = (extra: Json): CniReply => cni({ command: 'GC', host: net.host, config: { ...net.config(), ...extra } });

        // Only c2 is valid: c1 and c3 lose their reservations and host veths.
        // libcni 1.3 sends the list under both keys.
        const valid = [{ containerID: 'c2', ifname: IFNAME }];
        const r = gc({ 'cni.dev/valid-attachments': valid, 'cni.dev/attachments': valid });
        assert.equal(r.status, 0, `GC: ${r.stdout} ${r.stderr}`);
        assert.equal(r.stdout, '');
        assert.deepEqual(reservations(net), [p2.ip]);
        assert.deepEqual(ourVeths(net.host), [p2.hostVeth, otherVeth].sort());
        assert.equal(linkExists(p1.ns, IFNAME), false);
        assert.equal(linkExists(p3.ns, IFNAME), false);
        const hostRoutes = ipJson(net.host, ['route', 'show', 'table', 'main']).map((r) => r.dst);
        assert.ok(!hostRoutes.includes(p1.ip) && !hostRoutes.includes(p3.ip), `no routes to collected pods: ${hostRoutes.join(', ')}`);
        assertKernel(net, mode, p2);
        assertPing(p2.ns, hostTarget(net, mode), 'valid pod still reaches the host');

        // The key missing altogether: an error, and nothing removed.
        const before = settledHostState(net);
        failsWith(gc({}), 7, 'GC without valid-attachments');
        assert.equal(hostState(net.host, net.dataDir), before);

        // null = no valid attachment: everything of this network goes, the other network stays.
        const all = gc({ 'cni.dev/valid-attachments': null });
        assert.equal(all.status, 0, `GC null: ${all.stdout} ${all.stderr}`);
        assert.deepEqual(reservations(net), []);
        assert.deepEqual(ourVeths(net.host), [otherVeth]);
        assert.equal(linkExists(p2.ns, IFNAME), false);
        assert.equal(readdirSync(path.join(net.dataDir, 'twother')).filter((f) => /^\d/.test(f)).length, 1);
      }),
    );
  });
});

describe('twill-cni STATUS at 1.1.0', () => {
  test('STATUS with a subnet, without one, then from the subnet file', { timeout: TIMEOUT }, () =>
    withScope((s) => {
      const withSubnet = setupNet(s, '1.1.0', 'bridge', 40);
      const st = cni({ command: 'STATUS', host: withSubnet.host, config: withSubnet.config() });
      assert.equal(st.status, 0, `STATUS: ${st.stdout}`);
      assert.equal(st.stdout, '');

      const net = setupNet(s, '1.1.0', 'bridge', 41, false);
      const noMtu = (): Json => {
        const c = net.config();
        delete c.mtu;
        return c;
      };
      assert.equal(existsSync(net.subnetFile), false);
      failsWith(cni({ command: 'STATUS', host: net.host, config: noMtu() }), 50, 'STATUS without subnet');

      writeFileSync(net.subnetFile, 'TWILL_NETWORK=10.210.0.0/16\nTWILL_SUBNET=10.210.41.1/24\nTWILL_MTU=1380\nTWILL_IPMASQ=false\n');
      const st2 = cni({ command: 'STATUS', host: net.host, config: noMtu() });
      assert.equal(st2.status, 0, `STATUS after subnet file: ${st2.stdout}`);
      const ns = s.netns('pod');
      // A container ID as Kubernetes runtimes make them: 64 hex characters.
      const containerId = createHash('sha256').update('status-pod').digest('hex');
      const result = ok(call(net, 'ADD', containerId, ns, noMtu()), 'ADD from subnet file');
      const pod = assertResult(net, '1.1.0', 'bridge', ns, containerId, result, 1380);
      assertKernel(net, 'bridge', pod, 1380);
      assertPing(ns, '10.210.41.1', 'pod -> gateway from subnet file');
    }),
  );
});

describe('twill-cni bridge gateway after a subnet change', () => {
  test('ADD with subnet A, then with subnet B: the bridge holds only B`s gateway and no route for A; an operator`s bridge keeps its addresses', { timeout: TIMEOUT }, () =>
    withScope((s) => {
      const net = setupNet(s, '1.1.0', 'bridge', 50, false);
      const inet = (dev: string): string[] =>
        ((ipJson(net.host, ['addr', 'show', 'dev', dev])[0]?.addr_info as Json[] | undefined) ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
      const routesOn = (dev: string): string[] => ipJson(net.host, ['route', 'show', 'dev', dev]).map((r) => String(r.dst));
      writeFileSync(net.subnetFile, 'TWILL_NETWORK=10.210.0.0/16\nTWILL_SUBNET=10.210.50.1/24\nTWILL_MTU=1400\n');
      ok(call(net, 'ADD', 'a1', s.netns('pod')), 'ADD with subnet A');
      assert.deepEqual(inet('cni0'), ['10.210.50.1/24']);
      // The node's lease moved: the agent rewrote the subnet file.
      writeFileSync(net.subnetFile, 'TWILL_NETWORK=10.210.0.0/16\nTWILL_SUBNET=10.210.51.1/24\nTWILL_MTU=1400\n');
      const nsB = s.netns('pod');
      const b = ok(call(net, 'ADD', 'b1', nsB), 'ADD with subnet B');
      assert.match(String((b.ips as Json[])[0]?.address), /^10\.210\.51\./);
      assert.deepEqual(inet('cni0'), ['10.210.51.1/24'], 'only the current gateway on the bridge');
      assert.deepEqual(routesOn('cni0'), ['10.210.51.0/24'], 'no connected route for the old subnet');
      assertPing(nsB, '10.210.51.1', 'pod in B -> its gateway');

      // An operator's bridge named in the config (no Twill alias, its own MAC) keeps its other addresses.
      must(['ip', '-n', net.host, 'link', 'add', 'name', 'brop', 'address', '02:00:00:00:00:01', 'type', 'bridge']);
      must(['ip', '-n', net.host, 'addr', 'add', '192.0.2.1/24', 'dev', 'brop']);
      ok(call(net, 'ADD', 'o1', s.netns('pod'), net.config({ name: 'twop', bridge: 'brop' })), 'ADD on the operator`s bridge');
      assert.deepEqual(inet('brop').sort(), ['10.210.51.1/24', '192.0.2.1/24']);
    }),
  );
});
