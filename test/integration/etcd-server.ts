/**
 * A real, single-member etcd for integration tests: loopback only, free ports, a private data dir.
 * `stop()` kills it (SIGKILL, by PID) keeping the data, `start()` brings it back on the same ports
 * with the same data (an outage), `dispose()` kills it and removes the data dir. The process is also
 * killed if the test process exits without disposing it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export const ETCD_BIN = process.env.TWILL_ETCD_BIN ?? '/usr/bin/etcd';
/** setpriv(1) gives etcd a parent-death signal: it dies with the test process even on SIGKILL. */
const SETPRIV = '/usr/bin/setpriv';

/** A loopback TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
});

/** PEM files for a TLS etcd (client URLs become https and client certificates are required). */
export interface EtcdTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export class EtcdServer {
  private child: ChildProcess | undefined;

  private constructor(
    readonly dir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    /** Plain-HTTP /health and /metrics, also when the client port speaks TLS. */
    readonly metricsPort: number,
    readonly tls: EtcdTlsFiles | undefined,
  ) {}

  /** Starts a fresh etcd and waits until it serves requests. */
  static async start(label = 'etcd', opts: { tls?: EtcdTlsFiles } = {}): Promise<EtcdServer> {
    const dir = mkdtempSync(path.join(tmpdir(), `twill-${label}-`));
    const server = new EtcdServer(dir, await freePort(), await freePort(), await freePort(), opts.tls);
    try {
      await server.start();
    } catch (e) {
      await server.dispose();
      throw e;
    }
    return server;
  }

  get clientUrl(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.clientPort}`;
  }

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  get logFile(): string {
    return path.join(this.dir, 'etcd.log');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts etcd (again) on the same ports and data dir; resolves once /health says so. */
  async start(timeoutMs = 20_000): Promise<void> {
    if (this.child) throw new Error('etcd already running');
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const log = openSync(this.logFile, 'a');
    const argv = [
      ETCD_BIN,
      '--name=twt',
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.clientUrl}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=twt=${peer}`,
      '--initial-cluster-state=new',
      '--initial-cluster-token=twill-test',
      // A fast election: a lone member becomes leader in a few hundred ms after each start.
      '--heartbeat-interval=50',
      '--election-timeout=300',
      '--logger=zap',
      '--log-outputs=stderr',
      `--listen-metrics-urls=http://127.0.0.1:${this.metricsPort}`,
    ];
    if (this.tls) {
      argv.push(
        `--cert-file=${this.tls.certFile}`,
        `--key-file=${this.tls.keyFile}`,
        `--trusted-ca-file=${this.tls.caFile}`,
        '--client-cert-auth',
      );
    }
    // setpriv execs etcd in place, so the PID we kill is etcd's own.
    if (existsSync(SETPRIV)) argv.unshift(SETPRIV, '--pdeathsig', 'KILL', '--');
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', log, log] });
    closeSync(log);
    this.child = child;
    live.add(child);
    child.once('exit', () => live.delete(child));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        this.child = undefined;
        throw new Error(`etcd exited (${child.exitCode ?? child.signalCode}) during start:\n${this.tail()}`);
      }
      if (await this.healthy()) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`etcd not healthy within ${timeoutMs} ms:\n${this.tail()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Kills etcd (SIGKILL, by PID) and waits for it to exit; the data dir stays. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.pid === undefined) return;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      return;
    }
    await exited;
  }

  /** stop(), wait `downMs`, start(): an outage with the data kept. */
  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.start();
  }

  /** Kills etcd and removes its directory. Safe to call more than once. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The end of etcd's log (for failure messages). */
  tail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  private async healthy(): Promise<boolean> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.metricsPort}/health`, { signal: AbortSignal.timeout(1000) });
      const body = (await res.json()) as { health?: unknown };
      return res.ok && body.health === 'true';
    } catch {
      return false;
    }
  }
}

/**
 * A throwaway CA with a server certificate for 127.0.0.1 and a client certificate, written to `dir`
 * with openssl(1) (EC P-256, valid one day).
 */
export function makeTestPki(dir: string): EtcdTlsFiles & { clientCertFile: string; clientKeyFile: string } {
  const f = (name: string): string => path.join(dir, name);
  const openssl = (...args: string[]): void => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  };
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...key, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=twill-test-ca');
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const who of ['server', 'client']) {
    openssl('req', ...key, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=twill-test-${who}`);
    openssl(
      'x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
      '-out', f(`${who}.crt`), '-days', '1', ...(who === 'server' ? ['-extfile', f('server.ext')] : []),
    );
  }
  return {
    caFile: f('ca.crt'),
    certFile: f('server.crt'),
    keyFile: f('server.key'),
    clientCertFile: f('client.crt'),
    clientKeyFile: f('client.key'),
  };
}
