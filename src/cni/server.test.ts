import assert from 'node:assert/strict';
import { mkdtempSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { nullLogger } from '../common/json-log.js';
import type { CniDeps } from './deps.js';
import { startCniServer } from './server.js';
import { WIRE_VARS, renderRequest } from './wire.js';

const dir = mkdtempSync(path.join(tmpdir(), 'twill-cni-server-'));
after(() => rmSync(dir, { recursive: true, force: true }));

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

describe('CNI socket server', () => {
  it('is root-only, answers VERSION, rejects garbage with code 4, and declines callers of another netns', async () => {
    const socket = path.join(dir, 'cni.sock');
    // The calls below fail or finish before any kernel or disk port is used: a logger is all they need.
    const server = await startCniServer({ socketPath: socket, logSink: { write: () => undefined }, deps: () => () => ({ log: nullLogger }) as unknown as CniDeps });
    try {
      assert.equal(statSync(socket).mode & 0o777, 0o600);
      const own = readlinkSync('/proc/self/ns/net');
      const version = await call(socket, renderRequest({ env: env({ CNI_COMMAND: 'VERSION', TWILL_CALLER_NETNS: own }), stdin: '{"cniVersion":"1.0.0"}' }));
      assert.match(version, /^0\n\{"cniVersion":"1.0.0","supportedVersions":\[/);
      const garbage = await call(socket, 'GET / HTTP/1.1\r\n\r\n');
      assert.equal(garbage.split('\n')[0], '1');
      assert.equal((JSON.parse(garbage.slice(2)) as { code: number }).code, 4);
      const bad = await call(socket, renderRequest({ env: env({ CNI_COMMAND: 'ADD', TWILL_CALLER_NETNS: own }), stdin: '{}' }));
      assert.equal(bad.split('\n')[0], '1', 'errors keep exit status 1');
      assert.equal((JSON.parse(bad.slice(2)) as { code: number }).code, 4, 'CNI_CONTAINERID missing');
      const elsewhere = await call(socket, renderRequest({ env: env({ CNI_COMMAND: 'VERSION', TWILL_CALLER_NETNS: 'net:[1]' }), stdin: '{}' }));
      assert.equal(elsewhere, 'standalone\n');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
