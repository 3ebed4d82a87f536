import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SUPPORTED_VERSIONS } from '../common/constants.js';
import { createLogger } from '../common/json-log.js';
import type { SubnetEnv } from '../common/subnet-env.js';
import type { CommandResult, CommandRunner } from '../dataplane/command.js';
import { FsIpamStore } from '../ipam/fs-store.js';
import type { CniDeps, HostPort } from './deps.js';
import { hostVethName } from './naming.js';
import { runSkel, type DepsFactory } from './skel.js';

const root = fs.mkdtempSync(path.join(tmpdir(), 'twill-skel-test-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => {
  dirs += 1;
  const d = path.join(root, `d${dirs}`);
  fs.mkdirSync(d);
  return d;
};

interface Call {
  argv: string[];
  input: string | undefined;
}

/** A fake world: records every command; `fail` decides which ones fail. */
class Fake {
  readonly calls: Call[] = [];
  readonly logLines: string[] = [];
  readonly sysctls: Array<[string, string]> = [];
  readonly links = new Set<string>(['lo', 'eth0']);
  existing = new Set<string>(['/var/run/netns/pod1']);
  subnetFile: SubnetEnv | undefined = undefined;
  procRoutes = 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n';
  depsCalls = 0;
  fail: (argv: string[], input: string | undefined) => CommandResult | undefined = () => undefined;
  throwFromHost: Error | undefined;

  readonly runner: CommandRunner = {
    run: (argv, input) => {
      this.calls.push({ argv: [...argv], input });
      return this.fail([...argv], input) ?? { status: 0, stdout: '', stderr: '' };
    },
  };

  readonly host: HostPort = {
    listLinks: () => {
      if (this.throwFromHost) throw this.throwFromHost;
      return new Set(this.links);
    },
    underlayMtu: () => 1500,
    ensureSysctl: (p, v) => {
      this.sysctls.push([p, v]);
      return true;
    },
    exists: (p) => this.existing.has(p),
    readSubnetFile: () => this.subnetFile,
    procRoutes: () => this.procRoutes,
  };

  readonly make: DepsFactory = () => {
    this.depsCalls += 1;
    const deps: CniDeps = {
      runner: this.runner,
      host: this.host,
      log: createLogger({ write: (l) => this.logLines.push(l) }, 'debug'),
      subnetFile: '/nonexistent/subnet.env',
    };
    return deps;
  };

  cmdLines(): string[] {
    return this.calls.map((c) => c.argv.join(' '));
  }
}

const podEnv = (command: string, over: Record<string, string | undefined> = {}): Record<string, string | undefined> => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/var/run/netns/pod1',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
  ...over,
});

function config(dataDir: string, over: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}): string {
  return JSON.stringify({
    cniVersion: '1.1.0',
    name: 'twill',
    type: 'twill',
    ipam: { type: 'twill', subnet: '10.250.0.0/24', dataDir, subnetFile: '/nonexistent/subnet.env', ...ipam },
    ...over,
  });
}

function parseOut(stdout: string): Record<string, unknown> {
  assert.ok(stdout.endsWith('\n'), 'one JSON document and a newline');
  assert.equal(stdout.trim().split('\n').length, 1);
  return JSON.parse(stdout) as Record<string, unknown>;
}

function expectError(out: { stdout: string; exitCode: number }, code: number, cniVersion: string, msg?: RegExp): Record<string, unknown> {
  assert.equal(out.exitCode, 1);
  const body = parseOut(out.stdout);
  assert.equal(body.code, code, String(body.msg));
  assert.equal(body.cniVersion, cniVersion);
  assert.equal(typeof body.msg, 'string');
  if (msg) assert.match(body.msg as string, msg);
  return body;
}

describe('runSkel: VERSION', () => {
  it('answers the supported versions without touching anything', () => {
    const f = new Fake();
    const out = runSkel({ CNI_COMMAND: 'VERSION' }, '', f.make);
    assert.equal(out.exitCode, 0);
    assert.deepEqual(parseOut(out.stdout), { cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_VERSIONS] });
    assert.deepEqual(f.calls, []);
    assert.equal(f.depsCalls, 0);
  });

  it('echoes the config version when it is one we speak', () => {
    const f = new Fake();
    assert.equal(parseOut(runSkel({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}', f.make).stdout).cniVersion, '0.4.0');
    assert.equal(parseOut(runSkel({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"9.9.9"}', f.make).stdout).cniVersion, '1.1.0');
  });
});

describe('runSkel: errors', () => {
  it('invalid env -> 4, answered in the config`s version, checked before stdin', () => {
    const f = new Fake();
    const dataDir = freshDir();
    expectError(runSkel(podEnv('ADD', { CNI_CONTAINERID: undefined }), config(dataDir, { cniVersion: '0.3.1' }), f.make), 4, '0.3.1', /CNI_CONTAINERID/);
    expectError(runSkel(podEnv('ADD', { CNI_IFNAME: 'x'.repeat(16) }), '{"cniVersion":"0.4.0", broken', f.make), 4, '0.4.0', /CNI_IFNAME/);
    expectError(runSkel({}, config(dataDir), f.make), 4, '1.1.0', /CNI_COMMAND/);
    expectError(runSkel({ CNI_COMMAND: 'UPDATE' }, config(dataDir), f.make), 4, '1.1.0');
    assert.deepEqual(f.calls, []);
    assert.ok(f.logLines.length >= 4, 'every error is logged');
    for (const l of f.logLines) assert.equal(JSON.parse(l).level, 'error');
  });

  it('malformed JSON -> 6; unsupported version -> 1 (answered in the latest version)', () => {
    const f = new Fake();
    expectError(runSkel(podEnv('ADD'), '{"cniVersion":"1.0.0",', f.make), 6, '1.0.0');
    expectError(runSkel(podEnv('ADD'), '', f.make), 6, '1.1.0');
    expectError(runSkel(podEnv('ADD'), config(freshDir(), { cniVersion: '0.2.0' }), f.make), 1, '1.1.0', /0\.2\.0/);
  });

  it('invalid config -> 7 with the config`s version', () => {
    const f = new Fake();
    expectError(runSkel(podEnv('ADD'), config(freshDir(), { cniVersion: '0.4.0', mtu: 'big' }), f.make), 7, '0.4.0', /mtu/);
    expectError(runSkel(podEnv('ADD'), config(freshDir(), {}, { type: 'host-local' }), f.make), 7, '1.1.0', /ipam type/);
  });

  it('ADD on a netns that does not exist -> 4, and no reservation', () => {
    const f = new Fake();
    const dataDir = freshDir();
    expectError(runSkel(podEnv('ADD', { CNI_NETNS: '/var/run/netns/gone' }), config(dataDir), f.make), 4, '1.1.0', /gone/);
    assert.deepEqual(fs.readdirSync(dataDir), []);
    assert.deepEqual(f.calls, []);
  });

  it('ADD without any subnet -> 102', () => {
    const f = new Fake();
    expectError(runSkel(podEnv('ADD'), config(freshDir(), {}, { subnet: undefined }), f.make), 102, '1.1.0');
  });

  it('an unexpected exception -> 199 with the stack in details', () => {
    const f = new Fake();
    f.throwFromHost = new Error('boom');
    const body = expectError(runSkel(podEnv('ADD'), config(freshDir()), f.make), 199, '1.1.0', /boom/);
    assert.match(String(body.details), /Error: boom/);
  });

  it('GC without a valid-attachments list -> 7; GC and STATUS below 1.1.0 -> 1', () => {
    const f = new Fake();
    const dataDir = freshDir();
    expectError(runSkel({ CNI_COMMAND: 'GC' }, config(dataDir), f.make), 7, '1.1.0', /valid-attachments/);
    expectError(runSkel({ CNI_COMMAND: 'GC' }, config(dataDir, { cniVersion: '1.0.0', 'cni.dev/valid-attachments': [] }), f.make), 1, '1.0.0');
    expectError(runSkel({ CNI_COMMAND: 'STATUS' }, config(dataDir, { cniVersion: '0.4.0' }), f.make), 1, '0.4.0');
    assert.deepEqual(f.calls, []);
  });

  it('CHECK on 0.3.1 -> 1; CHECK without prevResult -> 7', () => {
    const f = new Fake();
    expectError(runSkel(podEnv('CHECK'), config(freshDir(), { cniVersion: '0.3.1' }), f.make), 1, '0.3.1', /CHECK/);
    expectError(runSkel(podEnv('CHECK'), config(freshDir(), { cniVersion: '0.4.0' }), f.make), 7, '0.4.0', /prevResult/);
  });

  it('STATUS without a subnet -> 50', () => {
    const f = new Fake();
    expectError(runSkel({ CNI_COMMAND: 'STATUS' }, config(freshDir(), {}, { subnet: undefined }), f.make), 50, '1.1.0');
  });
});

/** The temporary veth name the (last) host batch created. */
function tmpName(f: Fake): string {
  const input = [...f.calls].reverse().find((c) => c.argv.join(' ') === 'ip -batch -' && c.input?.includes('type veth'))?.input ?? '';
  return /link add (\S+) /.exec(input)?.[1] ?? '';
}

function linkShow(kind: string, ifalias?: string): CommandResult {
  return { status: 0, stdout: `${JSON.stringify([{ ifname: 'x', ...(ifalias ? { ifalias } : {}), linkinfo: { info_kind: kind } }])}\n`, stderr: '' };
}

describe('runSkel: ADD / DEL / GC with a fake kernel', () => {
  const veth = hostVethName({ containerId: 'abc123', ifName: 'eth0' });

  it('an existing link of the veth name that is not this attachment`s veth is refused and left alone', () => {
    for (const existing of [linkShow('veth', 'twill/twill/someone-else/eth0'), linkShow('veth'), linkShow('bridge', 'twill/twill/abc123/eth0')]) {
      const f = new Fake();
      const dataDir = freshDir();
      f.links.add(veth);
      f.fail = (argv) => (argv.join(' ') === `ip -json -details link show dev ${veth}` ? existing : undefined);
      expectError(runSkel(podEnv('ADD'), config(dataDir), f.make), 101, '1.1.0', /exists and is not this attachment's veth/);
      assert.ok(!f.calls.some((c) => c.argv.join(' ') === 'ip -batch -' || c.argv.includes('del')), `nothing deleted or created: ${f.cmdLines().join('; ')}`);
      assert.deepEqual(FsIpamStore.openExisting(dataDir, 'twill')?.list(), [], 'reservation released');
    }
  });

  it('the undo deletes only the link this ADD created: the temporary name before the rename, the final name after', () => {
    const hostBatchFailsAt = (line: number) => (argv: string[]) =>
      argv.join(' ') === 'ip -batch -' ? { status: 1, stdout: '', stderr: `RTNETLINK answers: File exists\nCommand failed -:${line}\n` } : undefined;
    // Bridge mode lines: 1 link add, 2 alias, 3 addr, 4 bridge up, 5 master, 6 rename, 7 up.
    for (const [line, final] of [[1, false], [5, false], [6, false], [7, true]] as const) {
      const f = new Fake();
      f.links.add('cni0');
      f.fail = hostBatchFailsAt(line);
      expectError(runSkel(podEnv('ADD'), config(freshDir()), f.make), 101, '1.1.0', /host side/);
      const dels = f.cmdLines().filter((l) => l.startsWith('ip link del'));
      assert.deepEqual(dels, [`ip link del ${final ? veth : tmpName(f)}`], `host batch failing at line ${line}`);
    }
  });

  it('a failing pod batch -> 101, rolled back: host veth deleted, reservation released', () => {
    const f = new Fake();
    const dataDir = freshDir();
    f.fail = (argv) => (argv[0] === 'nsenter' ? { status: 2, stdout: '', stderr: 'RTNETLINK answers: Operation not permitted' } : undefined);
    const body = expectError(runSkel(podEnv('ADD'), config(dataDir, { cniVersion: '1.0.0' }), f.make), 101, '1.0.0', /pod side.*Operation not permitted/);
    assert.match(String(body.details), /addr add 10\.250\.0\.2\/24 dev eth0/);
    const lines = f.cmdLines();
    const podIdx = lines.findIndex((l) => l.startsWith('nsenter --net=/var/run/netns/pod1 ip -batch -'));
    const delIdx = lines.indexOf(`ip link del ${veth}`);
    assert.ok(podIdx >= 0, lines.join('\n'));
    assert.ok(delIdx > podIdx, `rollback after the failure:\n${lines.join('\n')}`);
    const store = FsIpamStore.openExisting(dataDir, 'twill');
    assert.ok(store);
    assert.deepEqual(store.list(), [], 'reservation released');
    assert.deepEqual(store.listLookups(), [], 'index entry removed');
    assert.deepEqual(fs.readdirSync(store.dir).filter((n) => n.startsWith('.tmp-')), []);
  });

  it('a failing host batch -> 101, reservation released; a retried ADD gets the next address (round-robin)', () => {
    const f = new Fake();
    const dataDir = freshDir();
    f.fail = (argv, input) => (argv.join(' ') === 'ip -batch -' && input?.includes('link add') ? { status: 1, stdout: '', stderr: 'RTNETLINK answers: File exists' } : undefined);
    expectError(runSkel(podEnv('ADD'), config(dataDir), f.make), 101, '1.1.0', /host side/);
    assert.deepEqual(f.cmdLines().filter((l) => l.startsWith('ip link del')), [`ip link del ${tmpName(f)}`], 'only the temporary name is deleted');
    assert.deepEqual(FsIpamStore.openExisting(dataDir, 'twill')?.list(), []);
    f.fail = () => undefined;
    const retry = runSkel(podEnv('ADD'), config(dataDir), f.make);
    assert.equal(retry.exitCode, 0, retry.stdout);
    assert.equal((parseOut(retry.stdout).ips as Array<{ address: string }>)[0]?.address, '10.250.0.3/24');
  });

  it('a successful ADD (bridge, 1.1.0): commands, result and reservation; DEL undoes it; GC with null releases all', () => {
    const f = new Fake();
    const dataDir = freshDir();
    const out = runSkel(podEnv('ADD', { CNI_ARGS: 'K8S_POD_NAME=web' }), config(dataDir, { mtu: 1400 }), f.make);
    assert.equal(out.exitCode, 0, out.stdout);
    const result = parseOut(out.stdout);
    assert.deepEqual(result, {
      cniVersion: '1.1.0',
      interfaces: [
        { name: 'cni0', mac: '0e:58:0a:fa:00:01' },
        { name: veth, mac: '0e:58:0a:fa:00:02', mtu: 1400 },
        { name: 'eth0', mac: '0a:58:0a:fa:00:02', sandbox: '/var/run/netns/pod1', mtu: 1400 },
      ],
      ips: [{ address: '10.250.0.2/24', gateway: '10.250.0.1', interface: 2 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.250.0.1' }],
      dns: {},
    });
    const tmp = tmpName(f);
    assert.match(tmp, /^twn[0-9a-f]{12}$/);
    assert.deepEqual(f.calls, [
      { argv: ['ip', '-batch', '-'], input: 'link add name cni0 address 0e:58:0a:fa:00:01 type bridge\nlink set dev cni0 alias twill-bridge/twill\n' },
      {
        argv: ['ip', '-batch', '-'],
        input: [
          `link add ${tmp} mtu 1400 address 0e:58:0a:fa:00:02 type veth peer name eth0 mtu 1400 address 0a:58:0a:fa:00:02 netns /var/run/netns/pod1`,
          `link set dev ${tmp} alias twill/twill/abc123/eth0`,
          'addr replace 10.250.0.1/24 dev cni0',
          'link set dev cni0 up',
          `link set dev ${tmp} master cni0`,
          `link set dev ${tmp} name ${veth}`,
          `link set dev ${veth} up`,
          '',
        ].join('\n'),
      },
      {
        argv: ['nsenter', '--net=/var/run/netns/pod1', 'ip', '-batch', '-'],
        input: ['addr add 10.250.0.2/24 dev eth0', 'link set dev eth0 up', 'route add 0.0.0.0/0 via 10.250.0.1 dev eth0', ''].join('\n'),
      },
    ]);
    assert.deepEqual(f.sysctls, [['/proc/sys/net/ipv4/ip_forward', '1']]);
    const store = FsIpamStore.openExisting(dataDir, 'twill');
    assert.ok(store);
    assert.deepEqual(store.list(), [{ ip: 0x0afa0002, containerId: 'abc123', ifName: 'eth0' }]);

    // A second ADD of the same attachment (link now present): same address, the old link replaced.
    f.links.add(veth);
    f.links.add('cni0');
    f.calls.length = 0;
    f.fail = (argv) => (argv.join(' ') === `ip -json -details link show dev ${veth}` ? linkShow('veth', 'twill/twill/abc123/eth0') : undefined);
    const again = runSkel(podEnv('ADD'), config(dataDir, { mtu: 1400 }), f.make);
    f.fail = () => undefined;
    assert.equal(again.exitCode, 0, again.stdout);
    assert.deepEqual((parseOut(again.stdout).ips as unknown[])[0], { address: '10.250.0.2/24', gateway: '10.250.0.1', interface: 2 });
    assert.equal(f.cmdLines()[0], `ip -json -details link show dev ${veth}`, 'the existing link is inspected first');
    assert.ok(f.calls[1]?.input?.startsWith(`link del ${veth}\n`), 'the retried ADD replaces its own leftover link');

    // DEL: link deleted, reservation released; a second DEL is still success.
    f.calls.length = 0;
    const del = runSkel(podEnv('DEL', { CNI_NETNS: '' }), config(dataDir), f.make);
    assert.deepEqual(del, { stdout: '', exitCode: 0 });
    assert.deepEqual(f.cmdLines(), [`ip link del ${veth}`]);
    assert.deepEqual(store.list(), []);
    f.links.delete(veth);
    f.calls.length = 0;
    assert.deepEqual(runSkel(podEnv('DEL'), config(dataDir), f.make), { stdout: '', exitCode: 0 });
    assert.deepEqual(f.calls, []);

    // GC with a null list releases every reservation.
    assert.equal(runSkel(podEnv('ADD', { CNI_CONTAINERID: 'other' }), config(dataDir), f.make).exitCode, 0);
    assert.equal(store.list().length, 1);
    const gc = runSkel({ CNI_COMMAND: 'GC', CNI_CONTAINERID: '', CNI_NETNS: '', CNI_IFNAME: '', CNI_ARGS: '' }, config(dataDir, { 'cni.dev/valid-attachments': null }), f.make);
    assert.deepEqual(gc, { stdout: '', exitCode: 0 });
    assert.deepEqual(store.list(), []);
  });

  it('DEL with nothing there succeeds without creating the store', () => {
    const f = new Fake();
    const dataDir = freshDir();
    assert.deepEqual(runSkel(podEnv('DEL', { CNI_NETNS: undefined }), config(dataDir, {}, { subnet: undefined }), f.make), { stdout: '', exitCode: 0 });
    assert.deepEqual(fs.readdirSync(dataDir), []);
    assert.deepEqual(f.calls, []);
  });

  it('routed mode ADD answering 0.3.1: /32 address, proxy_arp on the veth, ips[].version', () => {
    const f = new Fake();
    const out = runSkel(podEnv('ADD'), config(freshDir(), { cniVersion: '0.3.1', mode: 'routed' }), f.make);
    assert.equal(out.exitCode, 0, out.stdout);
    const r = parseOut(out.stdout);
    assert.deepEqual(r.ips, [{ version: '4', address: '10.250.0.2/32', gateway: '169.254.1.1', interface: 1 }]);
    assert.deepEqual(r.interfaces, [
      { name: veth, mac: '0e:58:0a:fa:00:02' },
      { name: 'eth0', mac: '0a:58:0a:fa:00:02', sandbox: '/var/run/netns/pod1' },
    ]);
    assert.deepEqual(f.sysctls, [
      [`/proc/sys/net/ipv4/conf/${veth}/proxy_arp`, '1'],
      ['/proc/sys/net/ipv4/ip_forward', '1'],
    ]);
    assert.ok(!f.cmdLines().some((l) => l.includes('bridge')), 'no bridge in routed mode');
  });

  it('ipMasq writes the nft table; a failing nft rolls everything back', () => {
    const f = new Fake();
    const dataDir = freshDir();
    f.fail = (argv) => (argv[0] === 'nft' ? { status: 1, stdout: '', stderr: 'Error: Could not process rule' } : undefined);
    expectError(runSkel(podEnv('ADD'), config(dataDir, { ipMasq: true }), f.make), 101, '1.1.0', /nftables/);
    const nft = f.calls.find((c) => c.argv[0] === 'nft');
    assert.deepEqual(nft?.argv, ['nft', '-f', '-']);
    assert.match(nft?.input ?? '', /ip saddr 10\.250\.0\.0\/24 .* masquerade/);
    assert.ok(f.cmdLines().includes(`ip link del ${veth}`));
    assert.deepEqual(FsIpamStore.openExisting(dataDir, 'twill')?.list(), []);
  });
});
