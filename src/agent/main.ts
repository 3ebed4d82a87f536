/**
 * `twilld` entry point: the only agent module that reads argv/env/files, installs signal handlers
 * and wires the concrete adapters (etcd, ip/bridge/nft, /proc/sys).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { EtcdTls } from '../datastore/etcd/etcd-store.js';
import type { startCniServer as StartCniServer } from '../cni/server.js';
import { parseAgentOptions } from './options.js';
import { twillVersion } from '../version.js';

// `twilld` in ps however it was started (bin/twilld, node main.js): the command line shows
// `twilld <flags>`, and the kernel's comm (ps -o comm, top, pgrep) is exactly `twilld`.
process.title = ['twilld', ...process.argv.slice(2)].join(' ');
try {
  writeFileSync('/proc/self/comm', 'twilld');
} catch {
  /* not Linux: the title is all there is */
}
const parsed = parseAgentOptions(process.argv.slice(2), process.env, twillVersion());
if (!parsed.ok && parsed.help !== undefined) {
  process.stdout.write(parsed.help);
  process.exit(0);
}
if (!parsed.ok) {
  process.stderr.write(`twilld: ${parsed.errors.join('\ntwilld: ')}\n`);
  process.exit(2);
}
const options = parsed.options;
// The rest (etcd client, prom-client, pino, the plugin's code) only once the options are good:
// --help, --version and a refused flag answer without loading it.
const [{ spawnAsyncRunner }, { spawnRunner }, { ensureSysctl }, { systemKernel }, { EtcdDatastore }, { startCniServer }, { Agent }, { AgentMetrics, startHealthServer }, { createAgentLogger }, { ensureRtProtos }] = await Promise.all([
  import('../dataplane/async-command.js'),
  import('../dataplane/command.js'),
  import('../dataplane/host-facts.js'),
  import('../dataplane/system-kernel.js'),
  import('../datastore/etcd/etcd-store.js'),
  import('../cni/server.js'),
  import('./agent.js'),
  import('./health.js'),
  import('./log.js'),
  import('../dataplane/rt-protos.js'),
]);
const log = createAgentLogger(options.logLevel, { node: options.nodeName });

let tls: EtcdTls | undefined;
if (options.etcdCa) {
  tls = { ca: readFileSync(options.etcdCa) };
  if (options.etcdCert) tls.cert = readFileSync(options.etcdCert);
  if (options.etcdKey) tls.key = readFileSync(options.etcdKey);
}
try {
  const rp = ensureRtProtos();
  if ('skipped' in rp) log.warn({ path: rp.path, reason: rp.skipped }, 'route protocol names not registered (ip route shows 84/85)');
  else if (rp.written) log.info({ path: rp.path }, 'registered route protocol names: 84 twill (agent), 85 twill-cni (plugin)');
} catch (e) {
  log.warn({ err: (e as Error).message }, 'cannot register route protocol names (ip route shows 84/85)');
}
const store = new EtcdDatastore({ endpoints: options.etcdEndpoints, ...(tls ? { tls } : {}) });
const metrics = new AgentMetrics();
const agent = new Agent({ options, store, kernel: systemKernel(), runner: spawnRunner, asyncRunner: spawnAsyncRunner, log, metrics, ensureSysctl });

const stop = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    log.info({ signal: sig }, 'stopping (the dataplane stays in place)');
    stop.abort();
  });
}

const server = await startHealthServer(options.healthListen, metrics, agent).catch((e: unknown) => {
  log.error({ err: (e as Error).message }, `cannot listen on ${options.healthListen}`);
  process.exit(1);
});
let cniServer: Awaited<ReturnType<typeof StartCniServer>> | undefined;
if (options.cniSocket !== '') {
  try {
    cniServer = await startCniServer({ socketPath: options.cniSocket, logSink: { write: (line) => process.stdout.write(line) } });
    log.info({ socket: options.cniSocket }, 'serving twill-cni calls');
  } catch (e) {
    // The plugin runs standalone without it: a degraded start, not a failed one.
    log.error({ err: (e as Error).message, socket: options.cniSocket }, 'cannot serve the CNI socket; twill-cni runs standalone');
  }
}
log.info({ version: twillVersion(), listen: options.healthListen, etcd: options.etcdEndpoints, ipMasq: options.ipMasq }, 'twilld starting');
await agent.run(stop.signal);
server.close();
cniServer?.close();
await store.close();
process.exit(0);
