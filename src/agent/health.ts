/**
 * /healthz, /readyz and /metrics (Prometheus, prom-client) on a localhost port.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { parseListen } from './listen.js';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly peers = new Gauge({ name: 'twill_peers', help: 'Peers (other nodes) this agent programs', registers: [this.registry] });
  readonly peerErrors = new Gauge({ name: 'twill_peer_errors', help: 'Peers that cannot be programmed (e.g. host-gw without L2 adjacency)', registers: [this.registry] });
  readonly reconcileDuration = new Histogram({
    name: 'twill_reconcile_duration_seconds',
    help: 'Time of one kernel reconcile pass',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly reconcileChanges = new Counter({ name: 'twill_reconcile_changes_total', help: 'Kernel objects written by reconcile', registers: [this.registry] });
  readonly objectsFailing = new Gauge({
    name: 'twill_kernel_objects_failing',
    help: 'Kernel objects (by kind: link, addr, neigh, fdb, route) the last reconcile could not apply',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly objectFailures = new Counter({ name: 'twill_kernel_object_failures_total', help: 'Failed kernel object writes, by kind', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly reconcileErrors = new Counter({ name: 'twill_reconcile_errors_total', help: 'Reconcile passes that failed or left differences', registers: [this.registry] });
  readonly leaseExpiry = new Gauge({ name: 'twill_lease_expiry_timestamp_seconds', help: 'When this node\'s subnet lease expires', registers: [this.registry] });
  readonly datastoreUp = new Gauge({ name: 'twill_datastore_up', help: '1 when the datastore watch is connected', registers: [this.registry] });
  readonly configErrors = new Counter({ name: 'twill_config_errors_total', help: 'Invalid cluster network configs seen', registers: [this.registry] });
  readonly nodeNameConflicts = new Counter({
    name: 'twill_node_name_conflicts_total',
    help: 'Lease requests refused because another host holds this node name',
    registers: [this.registry],
  });
  readonly watchUp = new Gauge({
    name: 'twill_watch_up',
    help: '1 while the datastore watch (config, leases) is established; 0 while it is being retried (/readyz fails then)',
    labelNames: ['watch'],
    registers: [this.registry],
  });
  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'twilld_' });
  }
}

export interface HealthState {
  /** Liveness: the loops run. */
  alive(): boolean;
  /** Readiness: lease held, first reconcile done. */
  ready(): { ok: boolean; reason: string };
  status(): unknown;
}

export function startHealthServer(listen: string, metrics: AgentMetrics, health: HealthState): Promise<Server> {
  const { host, port } = parseListen(listen) ?? { host: listen, port: Number.NaN };
  const server = createServer((req, res) => {
    const send = (code: number, body: string, type = 'text/plain'): void => {
      res.writeHead(code, { 'content-type': type });
      res.end(body);
    };
    if (req.url === '/healthz') send(health.alive() ? 200 : 503, health.alive() ? 'ok\n' : 'stalled\n');
    else if (req.url === '/readyz') {
      const r = health.ready();
      send(r.ok ? 200 : 503, `${r.reason}\n`);
    } else if (req.url === '/status') send(200, `${JSON.stringify(health.status(), null, 2)}\n`, 'application/json');
    else if (req.url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => send(200, text, metrics.registry.contentType),
        (e: unknown) => send(500, String(e)),
      );
    } else send(404, 'not found\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
