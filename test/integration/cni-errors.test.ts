/**
 * twill-cni on bad input: every rejected call answers a CNI error object on stdout with the right
 * code, exits non-zero and changes nothing (host links, routes, IPAM files; the pod netns).
 * A failing ADD (range exhausted, kernel error in the host or the pod step) rolls back completely.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { CNI_BIN, cni, hostState, must, ping, sh, withScope, type CniReply, type Scope } from './harness.js';

const NETWORK = 'twerr';
const IFNAME = 'eth0';
const SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
const TIMEOUT = 120_000;
type Json = Record<string, unknown>;
type Mode = 'bridge' | 'routed';

interface Env {
  host: string;
  /** Holds a pod attached before the bad calls: they must leave it alone. */
  podA: string;
  /** Target of the bad calls: must end with exactly the links it started with. */
  podB: string;
  dataDir: string;
  /** A subnet file path outside dataDir (which hostState lists). */
  confDir: string;
  subnet: string;
  mode: Mode;
  config(extra?: Json, ipam?: Json): Json;
  /** The ADD result of the pod in podA. */
  baseline: Json;
}

const nsPath = (ns: string): string => `/run/netns/${ns}`;

function expectedVeth(containerId: string): string {
  return `twl${createHash('sha256').update(`${containerId}/${IFNAME}`).digest('hex').slice(0, 12)}`;
}

function podLinks(ns: string): string {
  return must(['ip', '-n', ns, '-o', 'link', 'show'])
    .replace(/^\d+: /gm, '')
    .split('\n')
    .sort()
    .join('\n');
}

/** Everything a call could change: host links/routes/IPAM names, the links and routes of both pods. */
function snapshot(e: Env): string {
  const pods = [e.podA, e.podB].map((ns) => `${podLinks(ns)}\n${must(['ip', '-n', ns, 'route', 'show', 'table', 'all'])}`);
  return `${hostState(e.host, e.dataDir)}\n==pods==\n${pods.join('\n==\n')}`;
}

/**
 * Waits until the kernel is quiet: no admin-up link still waiting for carrier, and two reads in a
 * row equal (the kernel brings veth carrier up asynchronously after creation).
 */
function settle(e: Env): void {
  let prev = '';
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const now = snapshot(e);
    if (now === prev && !now.includes('NO-CARRIER')) return;
    prev = now;
    sh(['sleep', '0.05']);
  }
  throw new Error(`namespaces did not settle: ${prev}`);
}

function reservations(e: Env): string[] {
  try {
    return readdirSync(path.join(e.dataDir, NETWORK)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
  } catch {
    return [];
  }
}

function setup(s: Scope, mode: Mode, subnet: string, ipamExtra: Json = {}): Env {
  const host = s.netns('host');
  const podA = s.netns('pod');
  const podB = s.netns('pod');
  // The plugin is IPv4-only; IPv6 link-local autoconfiguration would add addresses and routes
  // asynchronously and make the before/after snapshots racy.
  for (const ns of [host, podA, podB]) {
    must(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  }
  const dataDir = s.tmpdir('ipam');
  const confDir = s.tmpdir('conf');
  const config = (extra: Json = {}, ipam: Json = {}): Json => ({
    cniVersion: '1.1.0',
    name: NETWORK,
    type: 'twill',
    mode,
    mtu: 1400,
    ipam: { type: 'twill', subnet, dataDir, subnetFile: path.join(confDir, 'subnet.env'), ...ipamExtra, ...ipam },
    ...extra,
  });
  const r = cni({ command: 'ADD', containerId: 'c0', netns: nsPath(podA), ifName: IFNAME, host, config: config() });
  assert.equal(r.status, 0, `baseline ADD: ${r.stdout} ${r.stderr}`);
  const e: Env = { host, podA, podB, dataDir, confDir, subnet, mode, config, baseline: r.json ?? {} };
  settle(e);
  return e;
}

/** Runs the plugin with exactly `vars` in its environment (a null value leaves the variable out). */
function raw(host: string, vars: Record<string, string | null>, stdin: string): CniReply {
  const env = Object.entries(vars)
    .filter((kv): kv is [string, string] => kv[1] !== null)
    .map(([k, v]) => `${k}=${v}`);
  const r = sh(['ip', 'netns', 'exec', host, 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', ...env, CNI_BIN], stdin);
  let json: Json | undefined;
  try {
    json = r.stdout.trim() ? (JSON.parse(r.stdout) as Json) : undefined;
  } catch {
    json = undefined;
  }
  return { ...r, json };
}

function baseVars(e: Env, command = 'ADD'): Record<string, string | null> {
  return { CNI_COMMAND: command, CNI_CONTAINERID: 'c1', CNI_NETNS: nsPath(e.podB), CNI_IFNAME: IFNAME, CNI_ARGS: '', CNI_PATH: '/usr/lib/cni' };
}

function assertError(r: CniReply, code: number, what: string): Json {
  assert.notEqual(r.status, 0, `${what}: exit status 0 (stdout ${r.stdout})`);
  assert.ok(r.json, `${what}: stdout is not a JSON error: ${JSON.stringify(r.stdout)} (stderr ${r.stderr})`);
  assert.equal(r.json.code, code, `${what}: ${r.stdout}`);
  assert.equal(typeof r.json.msg, 'string', `${what}: msg`);
  assert.ok((r.json.msg as string).length > 0, `${what}: empty msg`);
  assert.equal(typeof r.json.cniVersion, 'string', `${what}: cniVersion`);
  return r.json;
}

interface BadCall {
  what: string;
  code: number;
  /** Environment overrides on top of an ADD of c1 into podB; null removes the variable. */
  vars?: Record<string, string | null>;
  /** Raw stdin; default: the config below, as JSON. */
  stdin?: string;
  config?: Json;
}

/** Each call must fail with its code and leave the host, the IPAM dir and both pods unchanged. */
function expectRejected(e: Env, calls: readonly BadCall[]): void {
  settle(e);
  for (const c of calls) {
    const before = snapshot(e);
    const stdin = c.stdin ?? JSON.stringify(c.config ?? e.config());
    const r = raw(e.host, { ...baseVars(e), ...c.vars }, stdin);
    assertError(r, c.code, c.what);
    assert.equal(snapshot(e), before, `${c.what}: state changed`);
  }
}

/** The baseline pod still works: CHECK passes and it reaches its gateway / the host. */
function assertBaselineIntact(e: Env): void {
  const r = cni({ command: 'CHECK', containerId: 'c0', netns: nsPath(e.podA), ifName: IFNAME, host: e.host, config: e.config({ prevResult: e.baseline }) });
  assert.equal(r.status, 0, `baseline CHECK: ${r.stdout}`);
  const target = e.mode === 'bridge' ? String((e.baseline.ips as Json[])[0]?.gateway) : '192.0.2.1';
  if (e.mode === 'routed') sh(['ip', '-n', e.host, 'addr', 'replace', '192.0.2.1/32', 'dev', 'lo']);
  assert.ok(ping(e.podA, target), `baseline pod reaches ${target}`);
}

describe('twill-cni rejects bad input and changes nothing', () => {
  test('malformed JSON: code 6', { timeout: TIMEOUT }, () =>
    withScope((s) => {
      const e = setup(s, 'bridge', '10.220.0.0/24');
      expectRejected(e, [
        { what: 'truncated JSON', code: 6, stdin: '{"cniVersion":"1.1.0","name":"twerr",' },
        { what: 'not JSON', code: 6, stdin: 'cniVersion=1.1.0' },
        { what: 'empty stdin', code: 6, stdin: '' },
        { what: 'DEL of the baseline pod with malformed JSON', code: 6, stdin: '{', vars: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c0', CNI_NETNS: nsPath(e.podA) } },
      ]);
      assertBaselineIntact(e);
    }),
  );

  test('invalid environment: code 4', { timeout: TIMEOUT }, () =>
    withScope((s) => {
      const e = setup(s, 'bridge', '10.220.1.0/24');
      expectRejected(e, [
        { what: 'CNI_COMMAND missing', code: 4, vars: { CNI_COMMAND: null } },
        { what: 'CNI_COMMAND empty', code: 4, vars: { CNI_COMMAND: '' } },
        { what: 'CNI_COMMAND unknown', code: 4, vars: { CNI_COMMAND: 'ATTACH' } },
        { what: 'CNI_COMMAND lower case', code: 4, vars: { CNI_COMMAND: 'add' } },
        { what: 'CNI_CONTAINERID missing', code: 4, vars: { CNI_CONTAINERID: null } },
        { what: 'CNI_CONTAINERID with "/"', code: 4, vars: { CNI_CONTAINERID: 'a/b' } },
        { what: 'CNI_CONTAINERID with a space', code: 4, vars: { CNI_CONTAINERID: 'a b' } },
        { what: 'CNI_CONTAINERID starting with "-"', code: 4, vars: { CNI_CONTAINERID: '-x' } },
        { what: 'CNI_CONTAINERID too long', code: 4, vars: { CNI_CONTAINERID: 'a'.repeat(257) } },
        { what: 'CNI_NETNS missing on ADD', code: 4, vars: { CNI_NETNS: null } },
        { what: 'CNI_NETNS relative', code: 4, vars: { CNI_NETNS: `run/netns/${e.podB}` } },
        { what: 'CNI_NETNS with ..', code: 4, vars: { CNI_NETNS: `/run/netns/../netns/${e.podB}` } },
        { what: 'CNI_NETNS that does not exist', code: 4, vars: { CNI_NETNS: `/run/netns/${e.podB}-absent` } },
        { what: 'CNI_IFNAME missing', code: 4, vars: { CNI_IFNAME: null } },
        { what: 'CNI_IFNAME of 16 characters', code: 4, vars: { CNI_IFNAME: 'eth0123456789abc' } },
        { what: 'CNI_IFNAME with "/"', code: 4, vars: { CNI_IFNAME: 'eth/0' } },
        { what: 'CNI_IFNAME ".."', code: 4, vars: { CNI_IFNAME: '..' } },
        { what: 'DEL without CNI_CONTAINERID', code: 4, vars: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: null, CNI_NETNS: nsPath(e.podA) } },
        { what: 'DEL of the baseline pod without CNI_IFNAME', code: 4, vars: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c0', CNI_IFNAME: null } },
        { what: 'CHECK without CNI_NETNS', code: 4, vars: { CNI_COMMAND: 'CHECK', CNI_CONTAINERID: 'c0', CNI_NETNS: null }, config: e.config({ prevResult: e.baseline }) },
      ]);
      // Env is validated before stdin: a bad env with malformed JSON still says 4.
      expectRejected(e, [{ what: 'bad env and bad JSON', code: 4, vars: { CNI_IFNAME: 'a/b' }, stdin: '{' }]);
      assertBaselineIntact(e);
    }),
  );

  test('unsupported cniVersion: code 1', { timeout: TIMEOUT }, () =>
    withScope((s) => {
      const e = setup(s, 'bridge', '10.220.2.0/24');
      expectRejected(e, [
        { what: 'cniVersion 0.2.0', code: 1, config: e.config({ cniVersion: '0.2.0' }) },
        { what: 'cniVersion 9.9.9', code: 1, config: e.config({ cniVersion: '9.9.9' }) },
        { what: 'cniVersion empty', code: 1, config: e.config({ cniVersion: '' }) },
        { what: 'DEL of the baseline pod at 0.1.0', code: 1, config: e.config({ cniVersion: '0.1.0' }), vars: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c0', CNI_NETNS: nsPath(e.podA) } },
      ]);
      assertBaselineIntact(e);
    }),
  );

  test('invalid network configuration: code 7', { timeout: TIMEOUT }, () =>
    withScope((s) => {
      const e = setup(s, 'bridge', '10.220.3.0/24');
      const ipam = (over: Json): Json => e.config({}, over);
      expectRejected(e, [
        { what: 'subnet with host bits', code: 7, config: ipam({ subnet: '10.220.3.3/24' }) },
        { what: 'subnet octet 300', code: 7, config: ipam({ subnet: '300.1.1.0/24' }) },
        { what: 'subnet prefix /33', code: 7, config: ipam({ subnet: '10.0.0.0/33' }) },
        { what: 'subnet without prefix', code: 7, config: ipam({ subnet: '10.220.3.0' }) },
        { what: 'subnet /31 (no host addresses)', code: 7, config: ipam({ subnet: '10.220.3.0/31' }) },
        { what: 'rangeStart after rangeEnd', code: 7, config: ipam({ rangeStart: '10.220.3.200', rangeEnd: '10.220.3.100' }) },
        { what: 'rangeStart outside the subnet', code: 7, config: ipam({ rangeStart: '10.9.9.5' }) },
        { what: 'rangeEnd outside the subnet', code: 7, config: ipam({ rangeEnd: '10.220.4.10' }) },
        { what: 'rangeEnd = broadcast', code: 7, config: ipam({ rangeEnd: '10.220.3.255' }) },
        { what: 'rangeStart not an address', code: 7, config: ipam({ rangeStart: 'ten' }) },
        { what: 'gateway outside the subnet', code: 7, config: ipam({ gateway: '10.221.0.1' }) },
        { what: 'ipam type host-local', code: 7, config: ipam({ type: 'host-local' }) },
        { what: 'network name with "/"', code: 7, config: e.config({ name: 'a/b' }) },
        { what: 'network name ".."', code: 7, config: e.config({ name: '..' }) },
        { what: 'network name missing', code: 7, config: e.config({ name: undefined }) },
        { what: 'unknown mode', code: 7, config: e.config({ mode: 'vxlan' }) },
        { what: 'mtu 100', code: 7, config: e.config({ mtu: 100 }) },
        { what: 'mtu as a string', code: 7, config: e.config({ mtu: '1400' }) },
        { what: 'bridge name of 16 characters', code: 7, config: e.config({ bridge: 'bridge0123456789' }) },
        { what: 'route destination invalid', code: 7, config: ipam({ routes: [{ dst: '10.0.0.0/40' }] }) },
        { what: 'config is a JSON array', code: 7, stdin: '[]' },
        { what: 'DEL of the baseline pod with an invalid name', code: 7, config: e.config({ name: 'a/b' }), vars: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c0', CNI_NETNS: nsPath(e.podA) } },
      ]);
      // A relative path names a different file for the agent and for the standalone plugin.
      expectRejected(e, [
        { what: 'relative ipam.dataDir', code: 7, config: ipam({ dataDir: 'ipam' }) },
        { what: 'relative ipam.subnetFile', code: 7, config: ipam({ subnet: undefined, subnetFile: 'subnet.env' }) },
        { what: 'relative logFile', code: 7, config: e.config({ logFile: 'twill-cni.log' }) },
      ]);
      // A subnet file with a bad subnet is invalid configuration too.
      writeFileSync(path.join(e.confDir, 'subnet.env'), 'TWILL_SUBNET=10.300.0.1/24\n');
      expectRejected(e, [{ what: 'bad TWILL_SUBNET', code: 7, config: ipam({ subnet: undefined }) }]);
      // So is a TWILL_MTU or TWILL_IPMASQ the kernel must not see (even when the config sets its own mtu).
      for (const [bad, config] of [
        ['TWILL_MTU=abc', e.config({}, { subnet: undefined })],
        ['TWILL_MTU=99999', e.config({ mtu: undefined }, { subnet: undefined })],
        ['TWILL_MTU=100', e.config({ mtu: undefined }, { subnet: undefined })],
        ['TWILL_IPMASQ=yes', e.config({}, { subnet: undefined })],
      ] as const) {
        writeFileSync(path.join(e.confDir, 'subnet.env'), `TWILL_SUBNET=10.220.3.1/24\n${bad}\n`);
        expectRejected(e, [{ what: `subnet file with ${bad}`, code: 7, config }]);
        const r = raw(e.host, baseVars(e), JSON.stringify(config));
        assert.match(String(r.json?.msg), new RegExp(`subnet file .*subnet\\.env: ${bad.split('=')[0]}=`), 'the error names the file and the key');
      }
      writeFileSync(path.join(e.confDir, 'subnet.env'), 'TWILL_SUBNET=10.220.3.1/24\nTWILL_MTU=1400\nTWILL_IPMASQ=false\n');
      assertBaselineIntact(e);
    }),
  );

  test('no subnet in the config and no subnet file: code 102', { timeout: TIMEOUT }, () =>
    withScope((s) => {
      const e = setup(s, 'routed', '10.220.4.0/24');
      expectRejected(e, [
        { what: 'no subnet anywhere', code: 102, config: e.config({}, { subnet: undefined }) },
        { what: 'subnetFile pointing to a missing file', code: 102, config: e.config({}, { subnet: undefined, subnetFile: path.join(e.confDir, 'absent.env') }) },
      ]);
      writeFileSync(path.join(e.confDir, 'subnet.env'), 'TWILL_NETWORK=10.220.0.0/16\nTWILL_MTU=1400\n');
      expectRejected(e, [{ what: 'subnet file without TWILL_SUBNET', code: 102, config: e.config({}, { subnet: undefined }) }]);
      assertBaselineIntact(e);
    }),
  );

  test('verbs below their version: code 1; VERSION answers', { timeout: TIMEOUT }, () =>
    withScope((s) => {
      const e = setup(s, 'bridge', '10.220.5.0/24');
      const c0 = { CNI_CONTAINERID: 'c0', CNI_NETNS: nsPath(e.podA) };
      const gcVars = { CNI_COMMAND: 'GC', CNI_CONTAINERID: '', CNI_NETNS: '', CNI_IFNAME: '' };
      expectRejected(e, [
        ...['0.3.0', '0.3.1'].map((v) => ({ what: `CHECK at ${v}`, code: 1, vars: { CNI_COMMAND: 'CHECK', ...c0 }, config: e.config({ cniVersion: v, prevResult: e.baseline }) })),
        ...['0.3.1', '0.4.0', '1.0.0'].map((v) => ({ what: `GC at ${v}`, code: 1, vars: gcVars, config: e.config({ cniVersion: v, 'cni.dev/valid-attachments': null }) })),
        ...['0.3.0', '1.0.0'].map((v) => ({ what: `STATUS at ${v}`, code: 1, vars: { ...gcVars, CNI_COMMAND: 'STATUS' }, config: e.config({ cniVersion: v }) })),
        { what: 'CHECK without prevResult', code: 7, vars: { CNI_COMMAND: 'CHECK', ...c0 } },
      ]);
      assertBaselineIntact(e);

      for (const stdin of ['', JSON.stringify(e.config({ cniVersion: '0.4.0' }))]) {
        const before = snapshot(e);
        const r = raw(e.host, { CNI_COMMAND: 'VERSION' }, stdin);
        assert.equal(r.status, 0, `VERSION: ${r.stdout} ${r.stderr}`);
        assert.ok(r.json, `VERSION answers JSON: ${r.stdout}`);
        assert.deepEqual(r.json.supportedVersions, SUPPORTED);
        assert.equal(r.json.cniVersion, stdin === '' ? '1.1.0' : '0.4.0');
        assert.equal(snapshot(e), before);
      }
    }),
  );
});

describe('twill-cni: a failing ADD rolls back', () => {
  const cases: Array<{ mode: Mode; subnet: string; ipam: Json }> = [
    { mode: 'bridge', subnet: '10.221.0.0/30', ipam: {} },
    { mode: 'routed', subnet: '10.221.1.0/24', ipam: { rangeStart: '10.221.1.7', rangeEnd: '10.221.1.7' } },
  ];
  for (const c of cases) {
    test(`range exhausted in ${c.mode} mode: code 100, first pod intact`, { timeout: TIMEOUT }, () =>
      withScope((s) => {
        const e = setup(s, c.mode, c.subnet, c.ipam);
        const only = c.mode === 'bridge' ? '10.221.0.2' : '10.221.1.7';
        assert.equal((e.baseline.ips as Json[])[0]?.address, `${only}/${c.mode === 'bridge' ? 30 : 32}`);
        expectRejected(e, [{ what: 'second ADD', code: 100 }]);
        assert.deepEqual(reservations(e), [only]);
        assert.equal(sh(['ip', '-n', e.host, 'link', 'show', 'dev', expectedVeth('c1')]).status, 1, 'no host veth for the failed ADD');
        assertBaselineIntact(e);
        // STATUS agrees that nothing is free.
        const st = cni({ command: 'STATUS', host: e.host, config: e.config() });
        assertError(st, 50, 'STATUS with a full range');
      }),
    );
  }

  for (const mode of ['bridge', 'routed'] as const) {
    test(`kernel failure in ${mode} mode: code 101, reservation and veth rolled back`, { timeout: TIMEOUT }, () =>
      withScope((s) => {
        const e = setup(s, mode, mode === 'bridge' ? '10.222.0.0/24' : '10.222.1.0/24');

        // Host step fails: the pod netns already holds a foreign interface named CNI_IFNAME.
        must(['ip', '-n', e.podB, 'link', 'add', IFNAME, 'type', 'veth', 'peer', 'name', 'x0']);
        const foreignMac = (): unknown => (JSON.parse(must(['ip', '-n', e.podB, '-json', 'link', 'show', 'dev', IFNAME])) as Json[])[0]?.address;
        const mac = foreignMac();
        const hostFail = expectRejectedOne(e, 101, 'ADD onto a foreign eth0');
        assert.match(String(hostFail.msg), /host side/);
        assert.equal(reservations(e).length, 1, 'only the baseline reservation');
        assert.equal(foreignMac(), mac, 'the foreign eth0 is untouched');
        must(['ip', '-n', e.podB, 'link', 'del', IFNAME]);

        // Pod step fails after the host step succeeded: the pod already has a default route.
        must(['ip', '-n', e.podB, 'link', 'add', 'x1', 'type', 'veth', 'peer', 'name', 'x2']);
        must(['ip', '-n', e.podB, 'addr', 'add', '198.51.100.2/24', 'dev', 'x1']);
        must(['ip', '-n', e.podB, 'link', 'set', 'x1', 'up']);
        must(['ip', '-n', e.podB, 'link', 'set', 'x2', 'up']);
        must(['ip', '-n', e.podB, 'route', 'add', 'default', 'via', '198.51.100.1']);
        const failed = expectRejectedOne(e, 101, 'ADD into a pod that has a default route');
        assert.match(String(failed.msg), /pod side/);
        assert.equal(reservations(e).length, 1, 'only the baseline reservation');
        assert.equal(sh(['ip', '-n', e.host, 'link', 'show', 'dev', expectedVeth('c1')]).status, 1, 'no host veth left');
        assertBaselineIntact(e);

        // Once the obstacle is gone the same ADD succeeds.
        must(['ip', '-n', e.podB, 'route', 'del', 'default']);
        const ok = raw(e.host, baseVars(e), JSON.stringify(e.config()));
        assert.equal(ok.status, 0, `ADD after the fix: ${ok.stdout}`);
        assert.equal(reservations(e).length, 2);
      }),
    );
  }
});

function expectRejectedOne(e: Env, code: number, what: string): Json {
  settle(e);
  const before = snapshot(e);
  const r = raw(e.host, baseVars(e), JSON.stringify(e.config()));
  const json = assertError(r, code, what);
  assert.equal(snapshot(e), before, `${what}: state changed`);
  return json;
}
