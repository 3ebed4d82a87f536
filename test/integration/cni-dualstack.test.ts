/**
 * twill-cni dual stack (IPv4 + IPv6) in real namespaces: every CNI version x both modes, with the
 * ranges from `ipam.ranges` (host-local's shape) or from the subnet file (TWILL_IPV6_SUBNET). Pings
 * both families pod -> gateway/host and pod -> pod, CHECK sees a removed IPv6 route/address, DEL twice,
 * GC; 110 parallel dual-stack ADDs with no duplicate in either family; the DAD measurement.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { CNI_BIN, cni, cniEnv, must, ping, sh, withScope, type CniReply, type Scope } from './harness.js';

const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
const MODES = ['bridge', 'routed'] as const;
type Version = (typeof VERSIONS)[number];
type Mode = (typeof MODES)[number];
type Json = Record<string, unknown>;

const NETWORK = 'twds';
const IFNAME = 'eth0';
const MTU = 1400;
const TIMEOUT = 180_000;
/** Ping targets "on the host" in routed mode (documentation ranges on the host's lo). */
const HOST_LO4 = '192.0.2.1';
const HOST_LO6 = '2001:db8::1';
const V6_RE = /^fd00:10:244:/;

interface Net {
  host: string;
  dataDir: string;
  n: number;
  config(extra?: Json): Json;
}

const atLeast = (v: Version, min: Version): boolean => VERSIONS.indexOf(v) >= VERSIONS.indexOf(min);

/** `fromFile`: the ranges come from the subnet file (TWILL_SUBNET + TWILL_IPV6_SUBNET), not the config. */
function setupNet(s: Scope, version: Version, mode: Mode, n: number, fromFile: boolean): Net {
  const host = s.netns('host');
  const dataDir = s.tmpdir('ipam');
  const subnetFile = path.join(dataDir, 'subnet.env');
  if (fromFile) writeFileSync(subnetFile, `TWILL_SUBNET=10.211.${n}.1/24\nTWILL_IPV6_SUBNET=fd00:10:244:${n}::1/64\nTWILL_IPV6_NETWORK=fd00:10:244::/56\n`);
  const config = (extra: Json = {}): Json => {
    const ipam: Json = { type: 'twill', dataDir, subnetFile };
    if (!fromFile) ipam.ranges = [[{ subnet: `10.211.${n}.0/24` }], [{ subnet: `fd00:10:244:${n}::/64` }]];
    return { cniVersion: version, name: NETWORK, type: 'twill', mode, mtu: MTU, ipam, ...extra };
  };
  return { host, dataDir, n, config };
}

function call(net: Net, command: string, containerId: string, ns: string | undefined, config: Json = net.config()): CniReply {
  return cni({ command, containerId, netns: ns === undefined ? '' : `/run/netns/${ns}`, ifName: IFNAME, host: net.host, config });
}

function ok(r: CniReply, what: string): Json {
  assert.equal(r.status, 0, `${what}: exit ${r.status}, stdout ${r.stdout}, stderr ${r.stderr}`);
  return r.json ?? {};
}

function failsWith(r: CniReply, code: number, what: string): Json {
  assert.notEqual(r.status, 0, `${what}: expected failure, got exit 0 (${r.stdout})`);
  assert.equal(r.json?.code, code, `${what}: ${r.stdout}`);
  return r.json ?? {};
}

function ipJson(ns: string, args: readonly string[]): Json[] {
  return JSON.parse(must(['ip', '-n', ns, '-json', ...args]) || '[]') as Json[];
}

function records(net: Net): { v4: string[]; v6: string[] } {
  let names: string[] = [];
  try {
    names = readdirSync(path.join(net.dataDir, NETWORK));
  } catch {
    /* no store */
  }
  return { v4: names.filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort(), v6: names.filter((f) => V6_RE.test(f)).sort() };
}

interface Pod {
  ns: string;
  containerId: string;
  result: Json;
  ip4: string;
  ip6: string;
}

function assertResult(net: Net, version: Version, mode: Mode, result: Json): { ip4: string; ip6: string } {
  assert.equal(result.cniVersion, version);
  const ips = result.ips as Json[];
  assert.equal(ips.length, 2, `two addresses: ${JSON.stringify(ips)}`);
  const [a4, a6] = ips as [Json, Json];
  if (atLeast(version, '1.0.0')) {
    assert.ok(!('version' in a4) && !('version' in a6), `no ips[].version at ${version}`);
  } else {
    assert.equal(a4.version, '4');
    assert.equal(a6.version, '6');
  }
  const [ip4, len4] = String(a4.address).split('/') as [string, string];
  const [ip6, len6] = String(a6.address).split('/') as [string, string];
  assert.ok(ip4.startsWith(`10.211.${net.n}.`), ip4);
  assert.ok(ip6.startsWith(`fd00:10:244:${net.n}::`), ip6);
  assert.equal(len4, mode === 'bridge' ? '24' : '32');
  assert.equal(len6, mode === 'bridge' ? '64' : '128');
  assert.notEqual(ip6, `fd00:10:244:${net.n}::1`, 'the v6 gateway is never handed out');
  assert.equal(a4.interface, a6.interface);
  const gw4 = mode === 'bridge' ? `10.211.${net.n}.1` : '169.254.1.1';
  const gw6 = mode === 'bridge' ? `fd00:10:244:${net.n}::1` : 'fe80::1';
  assert.equal(a4.gateway, gw4);
  assert.equal(a6.gateway, gw6);
  assert.deepEqual(result.routes, [
    { dst: '0.0.0.0/0', gw: gw4 },
    { dst: '::/0', gw: gw6 },
  ]);
  return { ip4, ip6 };
}

function add(net: Net, version: Version, mode: Mode, ns: string, containerId: string): Pod {
  const result = ok(call(net, 'ADD', containerId, ns), `ADD ${containerId}`);
  return { ns, containerId, result, ...assertResult(net, version, mode, result) };
}

function assertKernel(net: Net, mode: Mode, pod: Pod): void {
  const [link] = ipJson(pod.ns, ['addr', 'show', 'dev', IFNAME]);
  const global6 = (link?.addr_info as Json[]).filter((a) => a.family === 'inet6' && a.scope === 'global');
  assert.equal(global6.length, 1, JSON.stringify(global6));
  assert.equal(global6[0]?.local, pod.ip6);
  assert.equal(global6[0]?.tentative, undefined, 'the pod address is not tentative (nodad)');
  const [def6] = ipJson(pod.ns, ['-6', 'route', 'show', 'default']);
  assert.equal(def6?.gateway, mode === 'bridge' ? `fd00:10:244:${net.n}::1` : 'fe80::1');
  assert.equal(must(['ip', 'netns', 'exec', net.host, 'cat', '/proc/sys/net/ipv6/conf/all/forwarding']).trim(), '1');
  if (mode === 'bridge') {
    const [br] = ipJson(net.host, ['-6', 'addr', 'show', 'dev', 'cni0', 'scope', 'global']);
    assert.deepEqual(
      // ip -json prints filtered-out addresses as empty objects.
      (br?.addr_info as Json[]).filter((a) => a.local !== undefined).map((a) => `${String(a.local)}/${String(a.prefixlen)}`),
      [`fd00:10:244:${net.n}::1/64`],
    );
  } else {
    const routes = ipJson(net.host, ['-6', 'route', 'show', 'proto', '85']).filter((r) => r.dst === pod.ip6);
    assert.equal(routes.length, 1, `one /128 route to ${pod.ip6}`);
  }
}

function hostTargets(net: Net, mode: Mode): [string, string] {
  if (mode === 'bridge') return [`10.211.${net.n}.1`, `fd00:10:244:${net.n}::1`];
  sh(['ip', '-n', net.host, 'addr', 'add', `${HOST_LO4}/32`, 'dev', 'lo']);
  sh(['ip', '-n', net.host, 'addr', 'add', `${HOST_LO6}/128`, 'dev', 'lo', 'nodad']);
  return [HOST_LO4, HOST_LO6];
}

function assertPing(from: string, to: string, what: string): void {
  assert.ok(ping(from, to), `${what}: ping ${from} -> ${to}`);
}

describe('twill-cni dual stack: every CNI version x mode', () => {
  VERSIONS.forEach((version, vi) => {
    MODES.forEach((mode, mi) => {
      const n = vi * 2 + mi + 1;
      // Every other case takes its ranges from the subnet file.
      const fromFile = n % 2 === 0;
      test(`${mode} mode at cniVersion ${version} (${fromFile ? 'subnet file' : 'ipam.ranges'})`, { timeout: TIMEOUT }, () =>
        withScope((s) => {
          const net = setupNet(s, version, mode, n, fromFile);
          const p1 = add(net, version, mode, s.netns('pod'), 'c1');
          const p2 = add(net, version, mode, s.netns('pod'), 'c2');
          assert.notEqual(p1.ip6, p2.ip6);
          assert.deepEqual(records(net), { v4: [p1.ip4, p2.ip4].sort(), v6: [p1.ip6, p2.ip6].sort() });
          assertKernel(net, mode, p1);
          assertKernel(net, mode, p2);

          const [t4, t6] = hostTargets(net, mode);
          assertPing(p1.ns, t4, 'pod1 -> host v4');
          assertPing(p1.ns, t6, 'pod1 -> host v6');
          assertPing(p1.ns, p2.ip4, 'pod1 -> pod2 v4');
          assertPing(p1.ns, p2.ip6, 'pod1 -> pod2 v6');
          assertPing(p2.ns, p1.ip6, 'pod2 -> pod1 v6');

          // Re-ADD keeps both addresses.
          const again = add(net, version, mode, p1.ns, 'c1');
          assert.deepEqual([again.ip4, again.ip6], [p1.ip4, p1.ip6]);

          if (atLeast(version, '0.4.0')) {
            ok(call(net, 'CHECK', 'c1', p1.ns, net.config({ prevResult: p1.result })), 'CHECK pod1');
            ok(call(net, 'CHECK', 'c2', p2.ns, net.config({ prevResult: p2.result })), 'CHECK pod2');
            must(['ip', '-n', p1.ns, '-6', 'route', 'del', 'default']);
            const noRoute = failsWith(call(net, 'CHECK', 'c1', p1.ns, net.config({ prevResult: p1.result })), 103, 'CHECK without v6 default route');
            assert.match(String(noRoute.msg), /route ::\/0 via \S+ is missing/);
            assert.doesNotMatch(String(noRoute.msg), /0\.0\.0\.0/);
            must(['ip', '-n', p2.ns, 'addr', 'del', String((p2.result.ips as Json[])[1]?.address), 'dev', IFNAME]);
            const noAddr = failsWith(call(net, 'CHECK', 'c2', p2.ns, net.config({ prevResult: p2.result })), 103, 'CHECK without v6 address');
            assert.match(String(noAddr.msg), new RegExp(`address ${p2.ip6}/\\d+ is missing`));
            if (mode === 'routed') {
              const veth = String((p1.result.interfaces as Json[])[0]?.name);
              must(['ip', '-n', net.host, '-6', 'route', 'del', `${p1.ip6}/128`, 'dev', veth]);
              const noHost = failsWith(call(net, 'CHECK', 'c1', p1.ns, net.config({ prevResult: p1.result })), 103, 'CHECK without host v6 route');
              assert.match(String(noHost.msg), new RegExp(`host route ${p1.ip6}/128`));
            }
          }

          if (version === '1.1.0') {
            // GC with only pod2 valid: pod1's both reservations and its veth go.
            ok(call(net, 'GC', '', undefined, net.config({ 'cni.dev/valid-attachments': [{ containerID: 'c2', ifname: IFNAME }] })), 'GC');
            assert.deepEqual(records(net), { v4: [p2.ip4], v6: [p2.ip6] });
          }

          for (const p of [p1, p2]) {
            for (let i = 0; i < 2; i++) ok(call(net, 'DEL', p.containerId, p.ns), `DEL #${i + 1} ${p.containerId}`);
          }
          assert.deepEqual(records(net), { v4: [], v6: [] });
        }),
      );
    });
  });
});

describe('twill-cni dual stack: failures and scale', () => {
  test('an exhausted IPv6 range fails the ADD and leaves no IPv4 reservation behind', { timeout: TIMEOUT }, () =>
    withScope((s) => {
      const net = setupNet(s, '1.1.0', 'bridge', 20, false);
      // A /126 holds ::1 (gateway), ::2, ::3 as hosts: a range of one address (::2).
      const config = (extra: Json = {}): Json => {
        const c = net.config(extra);
        (c.ipam as Json).ranges = [[{ subnet: '10.211.20.0/24' }], [{ subnet: 'fd00:10:244:20::/126', rangeStart: 'fd00:10:244:20::2', rangeEnd: 'fd00:10:244:20::2' }]];
        return c;
      };
      const p1 = ok(call(net, 'ADD', 'c1', s.netns('pod'), config()), 'ADD 1');
      assert.equal((p1.ips as Json[])[1]?.address, 'fd00:10:244:20::2/126');
      const r = call(net, 'ADD', 'c2', s.netns('pod'), config());
      failsWith(r, 100, 'ADD into the exhausted v6 range');
      assert.deepEqual(records(net), { v4: ['10.211.20.2'], v6: ['fd00:10:244:20::2'] }, 'only pod1 holds addresses');
    }),
  );

  test('invalid range sets: code 7, nothing created', { timeout: TIMEOUT }, () =>
    withScope((s) => {
      const net = setupNet(s, '1.1.0', 'bridge', 21, false);
      const ns = s.netns('pod');
      const bad: unknown[] = [
        [[{ subnet: '10.211.21.0/24' }], [{ subnet: '10.211.22.0/24' }]],
        [[{ subnet: '10.211.21.0/24' }, { subnet: 'fd00:10:244:21::/64' }]],
        [[{ subnet: '10.211.21.0/24' }], [{ subnet: 'fd00:10:244:21::/48' }]],
        [[{ subnet: '10.211.21.0/24' }], [{ subnet: 'fd00:10:244:21::/64', gateway: 'fd00:10:244:22::1' }]],
        [[{ subnet: '10.211.21.0/24' }], []],
      ];
      for (const ranges of bad) {
        const c = net.config();
        (c.ipam as Json).ranges = ranges;
        failsWith(call(net, 'ADD', 'c1', ns, c), 7, JSON.stringify(ranges));
      }
      assert.deepEqual(records(net), { v4: [], v6: [] });
      assert.equal(sh(['ip', '-n', ns, 'link', 'show', 'dev', IFNAME]).status, 1);
    }),
  );

  test('110 parallel dual-stack ADDs: no duplicate address in either family, all pingable over v6', { timeout: 300_000 }, async () => {
    await withScope(async (s) => {
      const net = setupNet(s, '1.1.0', 'bridge', 30, false);
      const pods = Array.from({ length: 110 }, (_, i) => ({ id: `p${i}`, ns: s.netns('pp') }));
      const replies = await Promise.all(
        pods.map(
          (p) =>
            new Promise<{ status: number | null; stdout: string }>((resolve) => {
              const child = spawn(
                'nsenter',
                [`--net=/run/netns/${net.host}`, 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', ...cniEnv({ command: 'ADD', containerId: p.id, netns: `/run/netns/${p.ns}`, ifName: IFNAME }), CNI_BIN],
                { stdio: ['pipe', 'pipe', 'ignore'] },
              );
              let stdout = '';
              child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
              child.on('close', (status) => resolve({ status, stdout }));
              child.stdin.end(JSON.stringify(net.config()));
            }),
        ),
      );
      const v4 = new Set<string>();
      const v6 = new Set<string>();
      replies.forEach((r, i) => {
        assert.equal(r.status, 0, `ADD ${i}: ${r.stdout}`);
        const ips = (JSON.parse(r.stdout) as Json).ips as Json[];
        v4.add(String(ips[0]?.address));
        v6.add(String(ips[1]?.address));
      });
      assert.equal(v4.size, 110, 'no duplicate IPv4 address');
      assert.equal(v6.size, 110, 'no duplicate IPv6 address');
      assert.equal(records(net).v6.length, 110);
      assertPing(pods[0]?.ns as string, String([...v6][109]).split('/')[0] as string, 'first pod -> last pod v6');
    });
  });
});

/**
 * DAD: time from the ADD result to the first IPv6 ping reply (pod -> bridge gateway), with the
 * plugin's `nodad` and with DAD forced back on (the address re-added without nodad, as a plugin
 * that waited for nothing would leave it). Prints the numbers; asserts nodad answers in well under
 * the kernel's DAD time (1 s with the default retrans timer).
 */
test('DAD: first IPv6 reply after ADD, with nodad and without', { timeout: TIMEOUT }, () =>
  withScope((s) => {
    const net = setupNet(s, '1.1.0', 'bridge', 40, false);
    const firstReply = (ns: string, dst: string): number => {
      const t0 = process.hrtime.bigint();
      // One probe every 10 ms until a reply: ping -c 1 -W 0.01 in a loop would be process-bound.
      const r = sh(['ip', 'netns', 'exec', ns, 'ping', '-6', '-c', '1', '-i', '0.01', '-w', '5', '-W', '0.01', dst]);
      const t1 = process.hrtime.bigint();
      assert.equal(r.status, 0, `ping ${dst}: ${r.stdout}${r.stderr}`);
      return Number(t1 - t0) / 1e6;
    };
    const gw6 = 'fd00:10:244:40::1';
    const ns1 = s.netns('pod');
    ok(call(net, 'ADD', 'c1', ns1), 'ADD nodad');
    const withNodad = firstReply(ns1, gw6);

    const ns2 = s.netns('pod');
    const r2 = ok(call(net, 'ADD', 'c2', ns2), 'ADD 2');
    const addr = String((r2.ips as Json[])[1]?.address);
    // Put the address back the way it is without nodad (DAD runs), then time the first reply.
    must(['ip', '-n', ns2, 'addr', 'del', addr, 'dev', IFNAME]);
    must(['ip', '-n', ns2, 'addr', 'add', addr, 'dev', IFNAME]);
    must(['ip', '-n', ns2, '-6', 'route', 'replace', 'default', 'via', gw6, 'dev', IFNAME]);
    const withDad = firstReply(ns2, gw6);
    process.stdout.write(`# DAD: first v6 reply ${withNodad.toFixed(1)} ms with nodad, ${withDad.toFixed(1)} ms with DAD\n`);
    assert.ok(withNodad < 500, `nodad: first reply after ${withNodad} ms`);
    assert.ok(withDad > withNodad, `DAD delays the first reply (${withDad} ms vs ${withNodad} ms)`);
  }),
);
