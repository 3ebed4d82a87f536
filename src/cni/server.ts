/**
 * The agent fast path: a Unix socket (mode 0600, root only) on which the node agent runs CNI verbs
 * for bin/twill-cni. Same code as the standalone plugin (runSkel), minus a Node start per call.
 * Calls are run one at a time (runSkel is synchronous), which also orders them per node.
 */
import * as fs from 'node:fs';
import { createServer, type Server } from 'node:net';
import * as path from 'node:path';
import type { LogSink } from '../common/json-log.js';
import { productionDeps } from './deps-factory.js';
import { runSkel, type DepsFactory } from './skel.js';
import { WIRE_STANDALONE, parseRequest, renderResponse } from './wire.js';

const MAX_REQUEST = 1024 * 1024;

export interface CniServerOptions {
  socketPath: string;
  /** Where plugin log lines go when the network config names no logFile. */
  logSink: LogSink;
  /** Tests inject their own deps. */
  deps?: (env: Record<string, string>) => DepsFactory;
}

export async function startCniServer(o: CniServerOptions): Promise<Server> {
  fs.mkdirSync(path.dirname(o.socketPath), { recursive: true, mode: 0o755 });
  try {
    fs.unlinkSync(o.socketPath); // a stale socket of an earlier agent
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  // Verbs act on the namespace they run in: serve only callers from the agent's own.
  const ownNetns = fs.readlinkSync('/proc/self/ns/net');
  const server = createServer((conn) => {
    const chunks: Buffer[] = [];
    let size = 0;
    conn.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_REQUEST) conn.destroy();
      else chunks.push(d);
    });
    conn.on('error', () => undefined);
    conn.on('end', () => {
      const req = parseRequest(Buffer.concat(chunks).toString('utf8'));
      if (!req) {
        conn.end(renderResponse(1, `${JSON.stringify({ cniVersion: '1.1.0', code: 4, msg: 'malformed request on the CNI socket' })}\n`));
        return;
      }
      if (req.env.TWILL_CALLER_NETNS !== ownNetns) {
        conn.end(`${WIRE_STANDALONE}\n`);
        return;
      }
      const deps = o.deps ? o.deps(req.env) : productionDeps(req.env, o.logSink);
      const out = runSkel(req.env, req.stdin, deps);
      conn.end(renderResponse(out.exitCode, out.stdout));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.socketPath, () => resolve());
  });
  fs.chmodSync(o.socketPath, 0o600);
  return server;
}
