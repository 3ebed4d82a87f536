/**
 * The agent fast path: bin/twill-cni hands calls to a CNI socket served in the node's namespace,
 * and falls back to running standalone when nobody (or an agent of another namespace) answers.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { nullLogger } from '../../src/common/json-log.js';
import type { CniDeps } from '../../src/cni/deps.js';
import { startCniServer } from '../../src/cni/server.js';
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

/** Runs a shim in this process's namespace, asynchronously (an in-process server answers it). */
function shimAsync(plugin: string, socket: string, env: Parameters<typeof cniEnv>[0], config: unknown, extra: Record<string, string> = {}, prefix: string[] = []): Promise<{ status: number; stdout: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const vars = Object.entries({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TWILL_CNI_SOCKET: socket, ...extra }).map(([k, v]) => `${k}=${v}`);
    const c = spawn(prefix[0] ?? 'env', [...prefix.slice(1), ...(prefix.length ? ['env'] : []), '-i', ...vars, ...cniEnv(env), plugin]);
    let stdout = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.on('close', (code) => resolve({ status: code ?? 1, stdout, ms: Date.now() - t0 }));
    c.stdin.end(JSON.stringify(config));
  });
}

/** A copy of the shim whose "standalone plugin" only leaves a mark: shows whether the shim fell back. */
function markingShim(s: Scope): { plugin: string; mark: string } {
  const d = s.tmpdir('mark');
  const mark = path.join(d, 'ran-standalone');
  copyFileSync(CNI_BIN, path.join(d, 'twill-cni'));
  chmodSync(path.join(d, 'twill-cni'), 0o755);
  writeFileSync(path.join(d, 'twill-cni.js'), `#!/bin/sh\ncat >/dev/null\necho "$CNI_COMMAND" >> ${mark}\necho '{"cniVersion":"1.0.0","code":999,"msg":"standalone stand-in"}'\nexit 1\n`, { mode: 0o755 });
  return { plugin: path.join(d, 'twill-cni'), mark };
}

test('a shim never runs a call standalone that the agent accepted, even when the answer is late', { timeout: 120_000 }, async () => {
  await withScope(async (s) => {
    const socket = path.join(s.tmpdir('hang'), 'cni.sock');
    let started = 0;
    // A verb that hangs: the agent's event loop is stuck for 4 s, far past the shim's 1 s timeout.
    const hanging = () => (conf: unknown) => {
      if (conf !== undefined) {
        started += 1;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4000);
      }
      return { log: nullLogger } as unknown as CniDeps;
    };
    const server = await startCniServer({ socketPath: socket, logSink: { write: () => undefined }, deps: hanging });
    const { plugin, mark } = markingShim(s);
    const conf = { cniVersion: '1.0.0', name: 'hang', type: 'twill', ipam: { type: 'twill', subnet: '10.205.0.0/24' } };
    try {
      const r = await shimAsync(plugin, socket, { command: 'ADD', containerId: 'slow', netns: '/run/netns/none', ifName: 'eth0' }, conf, { TWILL_CNI_TIMEOUT: '1' });
      assert.equal(started, 1, 'the agent started the verb');
      assert.equal(r.status, 1, r.stdout);
      const err = JSON.parse(r.stdout) as { code: number; cniVersion: string; msg: string };
      assert.equal(err.code, 11, r.stdout);
      assert.equal(err.cniVersion, '1.0.0');
      assert.match(err.msg, /answer was lost/);
      assert.ok(!existsSync(mark), 'the shim ran the accepted call standalone as well');
    } finally {
      await new Promise((r) => server.close(r));
    }
    // Control: with the agent gone (stale socket, connection refused) the same shim does fall back.
    const r = await shimAsync(plugin, socket, { command: 'ADD', containerId: 'slow', netns: '/run/netns/none', ifName: 'eth0' }, conf, { TWILL_CNI_TIMEOUT: '1' });
    assert.equal(r.status, 1);
    assert.ok(existsSync(mark), `control: no standalone fallback without an agent (${r.stdout})`);
  });
});

test('a non-root caller cannot reach the agent socket and is refused with code 110', { timeout: 120_000 }, async (t) => {
  if (process.geteuid?.() !== 0) return t.skip('needs root');
  if (sh(['sh', '-c', 'command -v setpriv']).status !== 0) return t.skip('setpriv missing');
  await withScope(async (s) => {
    const base = s.tmpdir('nobody');
    chmodSync(base, 0o711);
    const dir = path.join(base, 'run');
    mkdirSync(dir, { mode: 0o755 });
    const socket = path.join(dir, 'cni.sock');
    const server = await startCniServer({ socketPath: socket, logSink: { write: () => undefined }, deps: () => () => ({ log: nullLogger }) as unknown as CniDeps });
    const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
    const conf = { cniVersion: '0.4.0', name: 'nb', type: 'twill', ipam: { type: 'twill', subnet: '10.206.0.0/24', dataDir: base } };
    try {
      const connectAsNobody = await new Promise<string>((resolve) => {
        const c = spawn(nobody[0] as string, [...nobody.slice(1), 'socat', '-t', '2', '-', `UNIX-CONNECT:${socket}`]);
        let err = '';
        c.stderr.on('data', (d: Buffer) => (err += d.toString()));
        c.on('close', () => resolve(err));
        c.stdin.end('TWILL-CNI 2\nVERSION\n\n\n\n\n\n\n{}');
      });
      assert.match(connectAsNobody, /Permission denied/, 'nobody connects to the socket');
      for (const command of ['ADD', 'VERSION']) {
        const r = await shimAsync(CNI_BIN, socket, { command, containerId: 'nb', netns: '/run/netns/none', ifName: 'eth0' }, conf, {}, nobody);
        assert.equal(r.status, 1, `${command}: ${r.stdout}`);
        const err = JSON.parse(r.stdout) as { code: number; cniVersion: string; msg: string };
        assert.equal(err.code, 110, `${command}: ${r.stdout}`);
        assert.equal(err.cniVersion, '0.4.0');
        assert.match(err.msg, /root only.*uid 65534/);
      }
      // Control: root through the same shim and socket is served.
      const ok = await shimAsync(CNI_BIN, socket, { command: 'VERSION' }, conf);
      assert.equal(ok.status, 0, ok.stdout);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
