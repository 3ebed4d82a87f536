import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { netnsOf, parsePeerCred, peerCredentials } from './peer.js';

describe('SO_PEERCRED', () => {
  it('parses the helper output and nothing else', () => {
    assert.deepEqual(parsePeerCred('123 0 0\n'), { pid: 123, uid: 0, gid: 0 });
    assert.deepEqual(parsePeerCred('0 65534 65534'), { pid: 0, uid: 65534, gid: 65534 });
    for (const bad of ['', '1 2', '1 2 3 4', '-1 0 0', 'a b c', '1 0 0\n\n']) assert.equal(parsePeerCred(bad), undefined, bad);
  });

  it('reads the pid and uid of the connecting process from the kernel; unknown architectures get none', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'twill-peer-'));
    const sock = path.join(dir, 's.sock');
    const conns: Socket[] = [];
    const server = createServer((c) => conns.push(c));
    await new Promise<void>((r) => server.listen(sock, r));
    const client = connect(sock);
    try {
      await new Promise((r) => client.once('connect', r));
      while (conns.length === 0) await new Promise((r) => setTimeout(r, 5));
      const conn = conns[0] as Socket;
      const cred = await peerCredentials(conn);
      assert.deepEqual(cred, { pid: process.pid, uid: process.geteuid?.(), gid: process.getegid?.() });
      assert.equal(await peerCredentials(conn, 'sparc'), undefined);
      assert.equal(netnsOf(process.pid), readlinkSync('/proc/self/ns/net'));
      assert.equal(netnsOf(0), undefined);
    } finally {
      client.destroy();
      for (const c of conns) c.destroy();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
