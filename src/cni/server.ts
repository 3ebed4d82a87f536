/**
 * The agent fast path: a Unix socket on which the node agent runs CNI verbs for bin/twill-cni.
 * Same code as the standalone plugin (runSkel), minus a Node start per call. Calls are run one at a
 * time (runSkel is synchronous), which also orders them per node.
 *
 * Root's alone: the socket is born 0600 (umask around bind, no chmod window) in a directory no other
 * user can write, and each caller is identified by the kernel (SO_PEERCRED, peer.ts): a non-root
 * caller is refused, a caller in another network namespace (or one the agent cannot see) is sent to
 * run standalone. The request itself says nothing about the caller. See docs/design/cni.md.
 */
import * as fs from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import * as path from 'node:path';
import type { LogSink } from '../common/json-log.js';
import { decide, type CallerFacts } from './admission.js';
import { productionDeps } from './deps-factory.js';
import { netnsOf, peerCredentials } from './peer.js';
import { refuseCall, runSkel, type DepsFactory } from './skel.js';
import { WIRE_ACCEPTED, WIRE_REFUSED, WIRE_STANDALONE, renderResponse } from './wire.js';

const MAX_REQUEST = 1024 * 1024;

export interface CniServerOptions {
  socketPath: string;
  /** Where plugin log lines go when the network config names no logFile. */
  logSink: LogSink;
  /** Tests inject their own deps. */
  deps?: (env: Record<string, string>) => DepsFactory;
}

/** Refuses a socket directory another user could write: they could replace the socket with their own. */
function checkSocketDir(dir: string): void {
  const st = fs.statSync(dir);
  const me = process.geteuid?.() ?? 0;
  if (st.uid !== me && st.uid !== 0) throw new Error(`CNI socket directory ${dir} belongs to uid ${st.uid}, not to root`);
  if ((st.mode & 0o022) !== 0) throw new Error(`CNI socket directory ${dir} is writable by other users (mode ${(st.mode & 0o7777).toString(8)})`);
}

/** The whole request (the shim half-closes after it), or undefined when it is too big or the caller went away. */
function readRequest(conn: Socket): Promise<string | undefined> {
  return new Promise((resolve) => {
    if (conn.destroyed) {
      resolve(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    conn.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_REQUEST) {
        conn.destroy();
        resolve(undefined);
      } else chunks.push(d);
    });
    conn.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    conn.on('close', () => resolve(undefined));
    conn.resume(); // paused while the SO_PEERCRED helper held it
  });
}

async function callerFacts(conn: Socket): Promise<CallerFacts> {
  const peer = await peerCredentials(conn);
  return { peer, netns: peer === undefined ? undefined : netnsOf(peer.pid) };
}

async function serve(conn: Socket, o: CniServerOptions, ownNetns: string): Promise<void> {
  conn.on('error', () => undefined);
  // The kernel is asked first: the helper holds the connection paused, then reading resumes.
  const caller = await callerFacts(conn);
  const text = await readRequest(conn);
  if (text === undefined) return;
  const d = decide(text, caller, ownNetns);
  const depsFor = (env: Record<string, string>): DepsFactory => (o.deps ? o.deps(env) : productionDeps(env, o.logSink));
  if (d.kind === 'standalone') {
    conn.end(`${WIRE_STANDALONE}\n`);
    return;
  }
  if (d.kind === 'refuse') {
    const out = refuseCall(text, d.error, depsFor({}));
    conn.end(`${WIRE_REFUSED}\n${renderResponse(out.exitCode, out.stdout)}`);
    return;
  }
  // "accepted" reaches the caller's socket before the verb starts; a caller that has gone (EPIPE)
  // gets nothing run. From here on the shim never runs this call itself.
  const req = d.req;
  conn.write(`${WIRE_ACCEPTED}\n`, (err) => {
    if (err) return;
    try {
      const out = runSkel(req.env, req.stdin, depsFor(req.env));
      conn.end(renderResponse(out.exitCode, out.stdout));
    } catch {
      conn.destroy(); // the shim reports the lost answer (code 11); the agent keeps serving
    }
  });
}

export async function startCniServer(o: CniServerOptions): Promise<Server> {
  const dir = path.dirname(o.socketPath);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  checkSocketDir(dir);
  try {
    fs.unlinkSync(o.socketPath); // a stale socket of an earlier agent
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  // Verbs act on the namespace they run in: serve only callers from the agent's own.
  const ownNetns = fs.readlinkSync('/proc/self/ns/net');
  // allowHalfOpen: the shim's end of the request must not end the answer.
  const server = createServer({ allowHalfOpen: true }, (conn) => {
    serve(conn, o, ownNetns).catch(() => conn.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // bind(2) runs synchronously inside listen(): the socket file is created 0600, never wider.
    const umask = process.umask(0o177);
    try {
      server.listen(o.socketPath, () => resolve());
    } finally {
      process.umask(umask);
    }
  });
  const st = fs.lstatSync(o.socketPath);
  if (!st.isSocket() || (st.mode & 0o777) !== 0o600 || st.uid !== (process.geteuid?.() ?? 0)) {
    await new Promise((r) => server.close(r));
    throw new Error(`CNI socket ${o.socketPath} is not a 0600 socket of this user (mode ${(st.mode & 0o7777).toString(8)}, uid ${st.uid})`);
  }
  return server;
}
