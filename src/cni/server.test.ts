import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { nullLogger } from '../common/json-log.js';
import type { CniDeps } from './deps.js';
import { startCniServer, type CniServerOptions } from './server.js';
import { WIRE_VARS, renderRequest } from './wire.js';

const dir = mkdtempSync(path.join(tmpdir(), 'twill-cni-server-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const socketPath = (): string => path.join(dir, `cni${++n}.sock`);

function call(socket: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let out = '';
    c.on('data', (d: Buffer) => (out += d.toString()));
    c.on('end', () => resolve(out));
    c.on('error', reject);
    c.end(text);
  });
}

const env = (over: Record<string, string>): Record<string, string> => ({ ...Object.fromEntries(WIRE_VARS.map((v) => [v, ''])), ...over });
const addEnv = env({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0' });
const addConf = '{"cniVersion":"1.0.0","name":"n","type":"twill","ipam":{"type":"twill","subnet":"10.1.0.0/24"}}';

/** The calls below fail or finish before any kernel or disk port is used: a logger is all they need. */
const logOnly: CniServerOptions['deps'] = () => () => ({ log: nullLogger }) as unknown as CniDeps;

async function withServer(fn: (socket: string) => Promise<void>, deps = logOnly, socket = socketPath()): Promise<void> {
  const server: Server = await startCniServer({ socketPath: socket, logSink: { write: () => undefined }, deps });
  try {
    await fn(socket);
  } finally {
    await new Promise((r) => server.close(r));
  }
}

const isRoot = process.geteuid?.() === 0;
const has = (tool: string): boolean => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
/** Runs socat as another client process (async: the server answers from this process's event loop). */
function socatCall(prefix: readonly string[], socket: string, text: string): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(prefix[0] as string, [...prefix.slice(1), 'socat', '-t', '5', '-', `UNIX-CONNECT:${socket}`]);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ status: code ?? 1, stdout, stderr }));
    c.stdin.end(text);
  });
}
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

describe('CNI socket server', () => {
  it('answers VERSION after "accepted", refuses garbage with code 4, runs verbs with their own errors', async () => {
    await withServer(async (socket) => {
      const version = await call(socket, renderRequest({ env: env({ CNI_COMMAND: 'VERSION' }), stdin: '{"cniVersion":"1.0.0"}' }));
      assert.match(version, /^accepted\n0\n\{"cniVersion":"1.0.0","supportedVersions":\[/);
      const garbage = await call(socket, 'GET / HTTP/1.1\r\n\r\n');
      const [tag, status, json] = garbage.split('\n');
      assert.deepEqual([tag, status], ['refused', '1']);
      assert.equal((JSON.parse(json ?? '') as { code: number }).code, 4);
      const bad = await call(socket, renderRequest({ env: env({ CNI_COMMAND: 'ADD' }), stdin: '{}' }));
      assert.match(bad, /^accepted\n1\n/, 'errors keep exit status 1');
      assert.equal((JSON.parse(bad.split('\n')[2] ?? '') as { code: number }).code, 4, 'CNI_CONTAINERID missing');
    });
  });

  it('declines a shim of protocol version 1 (it ran standalone on its own netns claim)', async () => {
    await withServer(async (socket) => {
      const v1 = `TWILL-CNI 1\nVERSION\n\n\n\n\n\nnet:[1]\n\n{}`;
      assert.equal(await call(socket, v1), 'standalone\n');
    });
  });

  it('creates the socket 0600 at bind time (no chmod window), whatever the umask', async () => {
    // With chmod disabled and umask 0, only the bind itself can give the socket its mode.
    const fsCjs = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');
    const saved = { chmodSync: fsCjs.chmodSync, chmod: fsCjs.chmod };
    const umask = process.umask(0);
    fsCjs.chmodSync = () => undefined;
    fsCjs.chmod = ((...a: unknown[]) => (a[a.length - 1] as () => void)()) as typeof fsCjs.chmod;
    syncBuiltinESMExports();
    try {
      await withServer(async (socket) => {
        assert.equal(statSync(socket).mode & 0o777, 0o600);
      });
    } finally {
      Object.assign(fsCjs, saved);
      syncBuiltinESMExports();
      process.umask(umask);
    }
  });

  it('refuses a socket directory other users can write', async () => {
    const open = path.join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    await assert.rejects(startCniServer({ socketPath: path.join(open, 'cni.sock'), logSink: { write: () => undefined } }), /writable by other users/);
  });

  it('runs nothing for a caller that hung up before the "accepted" line', async () => {
    let verbs = 0;
    // Counts verb runs (a factory call with a config); the verb then fails on the missing ports.
    const counting: CniServerOptions['deps'] = () => (conf) => {
      if (conf !== undefined) verbs += 1;
      return { log: nullLogger } as unknown as CniDeps;
    };
    await withServer(async (socket) => {
      await new Promise<void>((resolve, reject) => {
        const c = connect(socket);
        c.on('error', reject);
        c.end(renderRequest({ env: addEnv, stdin: addConf }), () => {
          c.destroy();
          resolve();
        });
      });
      // The server needs a helper spawn and a read to reach its decision; give it ample time.
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(verbs, 0, 'a verb ran for a caller that was gone');
      // Control: the same request from a caller that waits is run.
      await call(socket, renderRequest({ env: addEnv, stdin: addConf }));
      assert.equal(verbs, 1, 'control: the verb runs for a waiting caller');
    }, counting);
  });

  it('survives a verb whose deps throw: that caller loses its answer, the next one is served', async () => {
    const throwing: CniServerOptions['deps'] = () => () => {
      throw new Error('broken deps');
    };
    await withServer(async (socket) => {
      assert.equal(await call(socket, renderRequest({ env: addEnv, stdin: addConf })), 'accepted\n');
      assert.match(await call(socket, renderRequest({ env: env({ CNI_COMMAND: 'VERSION' }), stdin: '{}' })), /^accepted\n0\n/);
    }, throwing);
  });

  it('refuses a non-root caller with code 110 from its kernel credentials, even on a socket opened to all', { skip: !isRoot || !has('setpriv') || !has('socat') ? 'needs root, setpriv and socat' : false }, async () => {
    // nobody must be able to reach the socket's directory for the kernel's socket-file check to be the one that bites.
    const pub = path.join(dir, 'pub');
    mkdirSync(pub, { mode: 0o755 });
    chmodSync(dir, 0o711);
    await withServer(async (socket) => {
      const req = renderRequest({ env: env({ CNI_COMMAND: 'VERSION' }), stdin: '{"cniVersion":"0.4.0"}' });
      const denied = await socatCall(NOBODY, socket, req);
      assert.equal(denied.stdout, '', 'nobody cannot connect to the 0600 socket');
      assert.match(denied.stderr, /Permission denied/);
      chmodSync(socket, 0o666); // an operator's mistake: the kernel check must still hold
      const refused = await socatCall(NOBODY, socket, req);
      const [tag, status, json] = refused.stdout.split('\n');
      assert.deepEqual([tag, status], ['refused', '1'], refused.stdout);
      const err = JSON.parse(json ?? '') as { code: number; msg: string; cniVersion: string };
      assert.equal(err.code, 110);
      assert.match(err.msg, /uid 65534/);
      assert.equal(err.cniVersion, '0.4.0');
      // Control: root through the same path is served.
      assert.match((await socatCall(['env'], socket, req)).stdout, /^accepted\n0\n/);
    }, logOnly, path.join(pub, 'cni.sock'));
  });

  it('sends a caller in another network namespace to run standalone, from the kernel, not from its request', { skip: !isRoot || !has('unshare') || !has('socat') ? 'needs root, unshare and socat' : false }, async () => {
    await withServer(async (socket) => {
      const req = renderRequest({ env: env({ CNI_COMMAND: 'VERSION' }), stdin: '{}' });
      assert.equal((await socatCall(['unshare', '--net'], socket, req)).stdout, 'standalone\n');
      assert.match((await socatCall(['env'], socket, req)).stdout, /^accepted\n0\n/, 'control: same namespace is served');
    });
  });
});
