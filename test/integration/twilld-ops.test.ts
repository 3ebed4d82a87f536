/**
 * twilld as an operator meets it, in a bare namespace (no lab, no etcd: everything here happens
 * before the datastore is needed): `twilld` in ps, --help/--version, refused options, underlay
 * selection by default route, regex, CIDR and can-reach with its reason in /status, the log and
 * `twill status`, the health server on [::1], and one log schema for the agent's own lines and
 * the plugin lines it writes for calls on its CNI socket.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CNI_BIN, ROOT, must, sh, withScope, type Scope } from './harness.js';
import { withLab } from './lab-helpers.js';

const TWILLD = path.join(ROOT, 'bin/twilld');
const TWILL = path.join(ROOT, 'bin/twill');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const NODE_ENV = { ...process.env, NODE_EXTRA_CA_CERTS: '' };

/** A node with two underlay links: eth0 192.0.2.1/24 (default route), eth1 198.51.100.1/24 (203.0.113.0/24 behind it). */
function twoLinkNode(s: Scope): string {
  const n = s.netns('node');
  const w = s.netns('wan');
  must(['ip', '-n', n, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'w0', 'netns', w]);
  must(['ip', '-n', n, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'w1', 'netns', w]);
  must(['ip', '-n', n, '-batch', '-'], 'addr add 192.0.2.1/24 dev eth0\naddr add 198.51.100.1/24 dev eth1\nlink set eth0 up\nlink set eth1 up\n');
  must(['ip', '-n', w, '-batch', '-'], 'addr add 192.0.2.254/24 dev w0\naddr add 198.51.100.254/24 dev w1\nlink set w0 up\nlink set w1 up\n');
  must(['ip', '-n', n, '-batch', '-'], 'route add default via 192.0.2.254\nroute add 203.0.113.0/24 via 198.51.100.254\n');
  return n;
}

interface Running {
  child: ChildProcess;
  out: () => string;
}

function startTwilld(s: Scope, netns: string, extra: string[]): Running {
  const dir = s.tmpdir('twilld-ops');
  const argv = [
    'netns', 'exec', netns, process.execPath, TWILLD,
    '--node-name', 'n1',
    '--etcd-endpoints', 'http://127.0.0.1:1',
    '--subnet-file', path.join(dir, 'subnet.env'),
    '--cni-socket', path.join(dir, 'cni.sock'),
    '--health-listen', '[::1]:9402',
    ...extra,
  ];
  const child = spawn('ip', argv, { stdio: ['ignore', 'pipe', 'pipe'], env: NODE_ENV });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}

function get(netns: string, url: string): { status: number; body: string } {
  const script = 'fetch(process.argv[1]).then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })), (e) => process.stdout.write(JSON.stringify({ status: 0, body: String(e) })))';
  const r = spawnSync('ip', ['netns', 'exec', netns, process.execPath, '-e', script, url], { encoding: 'utf8', timeout: 15_000, env: NODE_ENV });
  try {
    return JSON.parse(r.stdout) as { status: number; body: string };
  } catch {
    return { status: 0, body: r.stdout + r.stderr };
  }
}

interface Status {
  publicIP?: string;
  underlay?: { iface: string; ip: string; reason: string };
}

async function underlayOf(netns: string, t: Running): Promise<Status> {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    assert.equal(t.child.exitCode, null, `twilld exited: ${t.out()}`);
    const r = get(netns, 'http://[::1]:9402/status');
    if (r.status === 200) {
      const st = JSON.parse(r.body) as Status;
      if (st.underlay) return st;
    }
    await sleep(200);
  }
  assert.fail(`no underlay in /status within 60 s; log:\n${t.out()}`);
}

/** The test's own event loop reads twilld's output: wait (not spawnSync) until `text` arrived. */
async function logged(t: Running, text: string): Promise<void> {
  const end = Date.now() + 20_000;
  while (!t.out().includes(text) && Date.now() < end) await sleep(100);
  assert.ok(t.out().includes(text), `twilld did not log ${text}:\n${t.out()}`);
}

function stop(t: Running): void {
  if (t.child.pid !== undefined && t.child.exitCode === null) process.kill(t.child.pid, 'SIGKILL');
}

describe('twilld for operators', () => {
  it('--help and --version print and exit 0; bad options exit 2 naming the option', () => {
    const help = spawnSync(process.execPath, [TWILLD, '--help'], { encoding: 'utf8', env: NODE_ENV });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: twilld \[options\]/);
    assert.match(help.stdout, /--iface-can-reach <ip>/);
    const version = spawnSync(process.execPath, [TWILLD, '--version'], { encoding: 'utf8', env: NODE_ENV });
    assert.equal(version.status, 0);
    assert.equal(version.stdout, `${VERSION}\n`);
    const cli = spawnSync(process.execPath, [TWILL, '--version'], { encoding: 'utf8', env: NODE_ENV });
    assert.equal(cli.status, 0);
    assert.equal(cli.stdout, `${VERSION}\n`);
    for (const [args, msg] of [
      [['--health-listen', '0.0.0.0:9402'], /healthListen: 0\.0\.0\.0:9402 is not a loopback address.*--health-listen-public/],
      [['--subnet-file', 'subnet.env'], /subnetFile: subnet file: an absolute path/],
      [['--etcd-ca', 'ca.pem'], /etcdCa: etcd CA: an absolute path/],
    ] as Array<[string[], RegExp]>) {
      const r = spawnSync(process.execPath, [TWILLD, '--node-name', 'n1', ...args], { encoding: 'utf8', env: NODE_ENV, timeout: 20_000 });
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, msg);
    }
  });

  it('shows as twilld in ps and picks the underlay by default route, regex, CIDR and can-reach, saying why', async () => {
    await withScope(async (s) => {
      const netns = twoLinkNode(s);
      const cases: Array<[string[], string, string]> = [
        [[], 'eth0 192.0.2.1/24', 'default route via 192.0.2.254 dev eth0: eth0 192.0.2.1/24'],
        [['--iface-regex', '^eth1$'], 'eth1 198.51.100.1/24', '--iface-regex ^eth1$: eth1 198.51.100.1/24 (name matches)'],
        [['--iface-cidr', '198.51.100.0/24'], 'eth1 198.51.100.1/24', '--iface-cidr 198.51.100.0/24: eth1 holds 198.51.100.1/24'],
        [['--iface-can-reach', '203.0.113.9'], 'eth1 198.51.100.1/24', '--iface-can-reach 203.0.113.9: route via eth1 gateway 198.51.100.254 src 198.51.100.1'],
      ];
      for (const [flags, chosen, reason] of cases) {
        const t = startTwilld(s, netns, flags);
        try {
          const st = await underlayOf(netns, t);
          assert.equal(`${st.underlay?.iface} ${st.underlay?.ip}`, chosen, flags.join(' '));
          assert.equal(st.underlay?.reason, reason);
          assert.equal(st.publicIP, chosen.split(' ')[1]?.split('/')[0]);
          const ps = sh(['ps', '-o', 'comm=,args=', '-p', String(t.child.pid)]).stdout.trim();
          assert.match(ps, /^twilld\s+twilld --node-name n1 /, `ps shows ${ps}`);
          await logged(t, '"msg":"underlay"');
          const lines = t.out().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
          assert.ok(lines.some((l) => l.msg === 'underlay' && l.reason === reason), `the log names the reason: ${t.out()}`);
          if (flags[0] === '--iface-can-reach') {
            const status = spawnSync('ip', ['netns', 'exec', netns, process.execPath, TWILL, 'status', '--health-url', 'http://[::1]:9402', '--etcd-endpoints', 'http://127.0.0.1:1'], { encoding: 'utf8', env: NODE_ENV, timeout: 30_000 });
            assert.match(status.stdout, new RegExp(`^underlay:  eth1 198\\.51\\.100\\.1/24 \\(${reason.replace(/[.^$()[\]]/g, '\\$&')}\\)$`, 'm'), status.stdout + status.stderr);
          }
        } finally {
          stop(t);
        }
      }
    });
  });

  it('writes one log schema: its own lines and the plugin lines of calls on its CNI socket', async () => {
    await withScope(async (s) => {
      const netns = twoLinkNode(s);
      const dir = s.tmpdir('twilld-log');
      const t = startTwilld(s, netns, []);
      try {
        await underlayOf(netns, t);
        await logged(t, 'serving twill-cni calls');
        const sock = /"socket":"([^"]+cni\.sock)"/.exec(t.out())?.[1];
        assert.ok(sock, `twilld serves no CNI socket: ${t.out()}`);
        const conf = { cniVersion: '1.1.0', name: 'ops', type: 'twill', logLevel: 'debug', ipam: { type: 'twill', subnet: '10.99.0.0/24', dataDir: dir, subnetFile: path.join(dir, 'none.env') } };
        const del = spawnSync('ip', ['netns', 'exec', netns, 'env', `TWILL_CNI_SOCKET=${sock}`, 'CNI_COMMAND=DEL', 'CNI_CONTAINERID=ops1', 'CNI_NETNS=', 'CNI_IFNAME=eth0', 'CNI_PATH=/opt/cni/bin', CNI_BIN], { input: JSON.stringify(conf), encoding: 'utf8', env: NODE_ENV });
        assert.equal(del.status, 0, del.stdout + del.stderr);
        await logged(t, '"containerID":"ops1"');
        const lines = t.out().split('\n').filter(Boolean);
        const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
        const plugin = records.filter((r) => r.containerID === 'ops1');
        assert.ok(plugin.length > 0, `no plugin line through the agent: ${t.out()}`);
        assert.ok(records.some((r) => r.msg === 'twilld starting' && r.version === VERSION));
        for (const r of records) {
          assert.deepEqual(Object.keys(r).slice(0, 2), ['level', 'time'], JSON.stringify(r));
          assert.equal(Object.keys(r).at(-1), 'msg', JSON.stringify(r));
          assert.ok(['debug', 'info', 'warn', 'error', 'fatal'].includes(r.level as string), JSON.stringify(r));
          assert.equal(new Date(r.time as string).toISOString(), r.time, JSON.stringify(r));
        }
      } finally {
        stop(t);
      }
    });
  });

  it('in a lab: the agents are twilld in ps, and `twill connectivity test` streams each probe before the matrix', { timeout: 300_000 }, async () => {
    await withLab({ nodes: 2, pods: 1, backend: 'vxlan', topology: 'l2' }, async ({ state }) => {
      for (const node of state.plan.nodes) {
        const pid = state.pids[`twilld-${node.name}`];
        assert.equal(sh(['ps', '-o', 'comm=', '-p', String(pid)]).stdout.trim(), 'twilld', `${node.name}'s agent in ps`);
      }
      const arrivals: Array<{ at: number; line: string }> = [];
      const status = await new Promise<number>((resolve) => {
        const c = spawn(process.execPath, [TWILL, 'connectivity', 'test', '--lab', state.plan.spec.name], { env: NODE_ENV });
        let buf = '';
        c.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const parts = buf.split('\n');
          buf = parts.pop() ?? '';
          for (const line of parts) arrivals.push({ at: Date.now(), line });
        });
        c.on('close', (code) => resolve(code ?? -1));
      });
      const lines = arrivals.map((a) => a.line);
      assert.equal(status, 0, lines.join('\n'));
      const progress = arrivals.filter((a) => /^\[ ?\d+\/\d+\] \S+ -> \S+ [\d.]+ (icmp|icmp\+tcp): ok$/.test(a.line));
      const n = Number(/\/(\d+)\]/.exec(progress[0]?.line ?? '')?.[1]);
      assert.ok(n > 0 && progress.length === n, `one progress line per probe:\n${lines.join('\n')}`);
      const summary = arrivals.find((a) => a.line.startsWith('connectivity: '));
      assert.ok(summary && summary.line === `connectivity: ${n} of ${n} probes ok`, lines.join('\n'));
      assert.ok(lines.indexOf(progress.at(-1)?.line ?? '') < lines.findIndex((l) => l.startsWith('   ') || l.trim().startsWith('pod')), 'progress comes before the matrix');
      assert.ok((progress[0]?.at ?? Infinity) < summary.at, 'the first probe was printed while the others still ran, not with the matrix');
      const json = spawnSync(process.execPath, [TWILL, 'connectivity', 'test', '--lab', state.plan.spec.name, '-o', 'json'], { encoding: 'utf8', env: NODE_ENV, timeout: 120_000 });
      assert.equal(json.status, 0, json.stderr);
      assert.equal((JSON.parse(json.stdout) as unknown[]).length, n, 'stdout is one JSON document');
      assert.equal(json.stderr.split('\n').filter((l) => l.startsWith('[')).length, n, 'progress went to stderr');
    });
  });
});
