/**
 * The agent fast path: bin/twill-cni hands calls to a CNI socket served in the node's namespace,
 * and falls back to running standalone when nobody (or an agent of another namespace) answers.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CNI_BIN, ROOT, cniEnv, must, ping, sh, withScope, type Scope } from './harness.js';

function startServer(s: Scope, host: string, socket: string): Promise<ChildProcess> {
  const child = s.spawn(['nsenter', `--net=/run/netns/${host}`, process.execPath, path.join(ROOT, 'dist/src/cni/serve-main.js'), socket]);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('CNI server did not start')), 15_000);
    const poll = setInterval(() => {
      if (existsSync(socket)) {
        clearInterval(poll);
        clearTimeout(t);
        resolve(child);
      }
    }, 50);
  });
}

function shim(host: string, socket: string, env: Parameters<typeof cniEnv>[0], config: unknown, plugin = CNI_BIN): { status: number; stdout: string; json: Record<string, unknown> | undefined } {
  const r = sh(['ip', 'netns', 'exec', host, 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', `TWILL_CNI_SOCKET=${socket}`, ...cniEnv(env), plugin], JSON.stringify(config));
  let json: Record<string, unknown> | undefined;
  try {
    json = r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { status: r.status, stdout: r.stdout, json };
}

function config(dataDir: string, subnet: string): Record<string, unknown> {
  return { cniVersion: '1.1.0', name: 'fast', type: 'twill', mtu: 1450, ipam: { type: 'twill', subnet, dataDir, subnetFile: path.join(dataDir, 'none.env') } };
}

test('twill-cni via the agent socket: same results, real pods, parallel calls, fallbacks', { timeout: 300_000 }, async () => {
  await withScope(async (s) => {
    const host = s.netns('host');
    const dir = s.tmpdir('fast');
    const socket = path.join(dir, 'cni.sock');
    const conf = config(dir, '10.203.0.0/24');
    const server = await startServer(s, host, socket);

    // A copy of the shim without twill-cni.js beside it can only succeed through the socket.
    const shimOnly = path.join(s.tmpdir('shim'), 'twill');
    copyFileSync(CNI_BIN, shimOnly);
    chmodSync(shimOnly, 0o755);
    const pods = [s.netns('pa'), s.netns('pb')];
    const results = pods.map((ns, i) => shim(host, socket, { command: 'ADD', containerId: `fast${i}`, netns: `/run/netns/${ns}`, ifName: 'eth0' }, conf, shimOnly));
    results.forEach((r, i) => assert.equal(r.status, 0, `ADD ${i}: ${r.stdout}`));
    const ips = results.map((r) => ((r.json?.ips as Array<{ address: string }>)[0]?.address ?? '').split('/')[0] ?? '');
    assert.deepEqual(ips, ['10.203.0.2', '10.203.0.3']);
    assert.ok(ping(pods[0] as string, ips[1] as string), 'pod to pod through the bridge');

    // CHECK and DEL through the socket; errors keep their codes and exit status.
    const prev = results[0]?.json;
    assert.equal(shim(host, socket, { command: 'CHECK', containerId: 'fast0', netns: `/run/netns/${pods[0]}`, ifName: 'eth0' }, { ...conf, prevResult: prev }, shimOnly).status, 0);
    const bad = shim(host, socket, { command: 'ADD', containerId: 'x/y', netns: `/run/netns/${pods[0]}`, ifName: 'eth0' }, conf, shimOnly);
    assert.equal(bad.status, 1);
    assert.equal(bad.json?.code, 4);

    // 40 parallel ADDs through one socket: distinct addresses.
    const many = Array.from({ length: 40 }, (_, i) => ({ id: `par${i}`, ns: s.netns(`q${i}-`) }));
    const t0 = Date.now();
    const replies = await Promise.all(
      many.map(
        (p) =>
          new Promise<string>((resolve) => {
            const c = spawn('ip', ['netns', 'exec', host, 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', `TWILL_CNI_SOCKET=${socket}`, ...cniEnv({ command: 'ADD', containerId: p.id, netns: `/run/netns/${p.ns}`, ifName: 'eth0' }), CNI_BIN]);
            let out = '';
            c.stdout.on('data', (d: Buffer) => (out += d.toString()));
            c.on('close', () => resolve(out));
            c.stdin.end(JSON.stringify(conf));
          }),
      ),
    );
    console.log(`# 40 parallel ADDs through the socket took ${Date.now() - t0} ms`);
    const addrs = replies.map((o) => (JSON.parse(o) as { ips: Array<{ address: string }> }).ips[0]?.address);
    assert.equal(new Set(addrs).size, 40);

    // Caller in another namespace than the server: the server declines, the shim runs standalone,
    // and the pod is wired in the caller's namespace.
    const otherHost = s.netns('other');
    const otherPod = s.netns('op');
    const other = shim(otherHost, socket, { command: 'ADD', containerId: 'elsewhere', netns: `/run/netns/${otherPod}`, ifName: 'eth0' }, config(s.tmpdir('other'), '10.204.0.0/24'));
    assert.equal(other.status, 0, other.stdout);
    assert.match(must(['ip', '-n', otherHost, '-o', 'link', 'show', 'type', 'veth']), /twl[0-9a-f]{12}/, 'veth in the caller namespace');
    assert.doesNotMatch(must(['ip', '-n', host, '-o', 'link', 'show']), /alias twill\/fast\/elsewhere/);

    // Without the server, the shim-only copy has nothing to run: proof that the calls above were served.
    server.kill('SIGKILL');
    await new Promise((r) => server.once('exit', r));
    assert.notEqual(shim(host, socket, { command: 'VERSION' }, conf, shimOnly).status, 0, 'shim-only copy fails without the server');

    // Server gone, stale socket file left: the real shim runs standalone.
    assert.ok(existsSync(socket), 'stale socket file stays');
    const fallback = shim(host, socket, { command: 'DEL', containerId: 'fast1', netns: `/run/netns/${pods[1]}`, ifName: 'eth0' }, conf);
    assert.equal(fallback.status, 0, fallback.stdout);
    assert.ok(!readdirSync(path.join(dir, 'fast')).includes('10.203.0.3'), 'DEL released the address standalone');
    // And no socket at all.
    writeFileSync(path.join(dir, 'not-a-socket'), '');
    const noSock = shim(host, path.join(dir, 'not-a-socket'), { command: 'DEL', containerId: 'fast0', netns: `/run/netns/${pods[0]}`, ifName: 'eth0' }, conf);
    assert.equal(noSock.status, 0, noSock.stdout);
  });
});
