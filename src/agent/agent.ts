/**
 * twilld's main loop. Order of a start (flannel's, with Calico's rule that nothing is written to
 * the kernel before the datastore is in sync):
 *   underlay -> valid cluster config -> subnet lease -> subnet file -> lease list (in sync)
 *   -> reconcile (routes/FDB/neighbours/devices + nftables) -> watch + periodic full resync + renew.
 * It never removes the dataplane on exit: a restarted agent re-acquires the same lease, computes the
 * same desired state and finds the kernel already matching (zero writes, zero packet loss).
 */
import type { Logger } from 'pino';
import type { BoundBackend } from '../backends/registry.js';
import { perPeerDesiredState } from '../backends/per-peer.js';
import { bindBackend } from '../backends/registry.js';
import type { LocalNode, Peer as BackendPeer } from '../backends/types.js';
import { vtepMacFor } from '../backends/vxlan.js';
import { CONFIG_KEY, DEFAULT_VXLAN_PORT, DEFAULT_VXLAN_VNI, SUBNETS_PREFIX } from '../common/constants.js';
import type { AsyncCommandRunner } from '../dataplane/async-command.js';
import type { CommandRunner } from '../dataplane/command.js';
import { IP_FORWARD, IPV6_FORWARD } from '../dataplane/host-facts.js';
import type { ApplyReport } from '../dataplane/reconciler.js';
import { Reconciler } from '../dataplane/reconciler.js';
import type { KernelPort } from '../dataplane/state.js';
import { Backoff, abortableSleep as sleep, type BackoffPolicy } from '../common/backoff.js';
import { listWatch, type ListWatchRetry, type ListWatchUpdate } from '../datastore/list-watch.js';
import type { Datastore } from '../datastore/types.js';
import { isDatastoreError } from '../datastore/types.js';
import { parseClusterConfig, renderClusterConfig, type ClusterConfig, type VxlanBackendConfig } from '../model/cluster-config.js';
import type { Lease, LeaseAttributes } from '../model/lease.js';
import { LeaseManager, isLeaseError } from '../model/lease-manager.js';
import { describePeerDiff, diffPeers, peersFromLeases, type Peer } from '../model/peers.js';
import { formatCidr, formatIPv4, parseIPv4 } from '../net/ipv4.js';
import { formatIp, formatPrefix, parseIpOf, type IpPrefix } from '../net/ip.js';
import type { AgentMetrics, HealthState } from './health.js';
import { hostIdFile, loadHostId } from './host-id.js';
import { detectUnderlay, underlayWant, type Underlay } from './local-node.js';
import { ensureAgentTable } from './nft-table.js';
import { recordObjectFailures } from './object-failures.js';
import { ip6MasqOn, ipMasqOn, type AgentOptions } from './options.js';
import { LeaseSet } from './lease-set.js';
import { writeSubnetFile } from './subnet-file.js';
import type { SubnetEnv } from '../common/subnet-env.js';

export interface AgentParts {
  options: AgentOptions;
  store: Datastore;
  kernel: KernelPort;
  runner: CommandRunner;
  asyncRunner: AsyncCommandRunner;
  log: Logger;
  metrics: AgentMetrics;
  ensureSysctl: (path: string, value: string) => boolean;
  now?: () => number;
}

export interface AgentStatus {
  node: string;
  phase: string;
  subnet?: string;
  /** Dual stack: this node's IPv6 pod subnet. */
  subnet6?: string;
  publicIP?: string;
  /** The IPv6 underlay address announced in the lease (--public-ipv6). */
  publicIPv6?: string;
  /** The underlay interface and address, and why they were chosen. */
  underlay?: { iface: string; ip: string; reason: string };
  backend?: string;
  /** This host's identity in the lease (src/agent/host-id.ts). */
  hostId?: string;
  leaseExpiresAt?: string;
  /** `error`/`errorCode`: why this peer cannot be programmed (errorCode is a backend PeerError code, e.g. not-on-underlay). */
  peers: Array<{ node: string; subnet: string; subnet6?: string; publicIP: string; publicIPv6?: string; backend: string; error?: string; errorCode?: string }>;
  lastReconcile?: { at: string; changes: number; converged: boolean; errors: string[] };
  configError?: string;
}

/**
 * Retry cap for the datastore watches: a reconnect attempt is cheap, and a short cap means the agent
 * catches up within ~2 s of etcd coming back, however long the outage was.
 */
const STORE_MAX_BACKOFF_MS = 2000;
/** Start-up steps (underlay, lease): retried with the project's jittered backoff, 0.5 s up to 10 s. */
const STEP_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 10_000 };

/** The datastore watches the agent keeps; /readyz fails while one of them is not established. */
type WatchName = 'config' | 'leases';

export class Agent implements HealthState {
  private readonly now: () => number;
  private readonly reconciler: Reconciler;
  private config: ClusterConfig | undefined;
  private configText = '';
  private configError: string | undefined;
  private backend: BoundBackend | undefined;
  /** vxlan parameters for peers still on vxlan while this node runs host-gw: the last vxlan config seen. */
  private fallbackVxlan: VxlanBackendConfig = { type: 'vxlan', vni: DEFAULT_VXLAN_VNI, port: DEFAULT_VXLAN_PORT, directRouting: false };
  private underlay: Underlay | undefined;
  private local: LocalNode | undefined;
  private lease: Lease | undefined;
  private hostId: string | undefined;
  /** Why the lease request was refused (another host holds this node name), until a lease is held. */
  private refused: string | undefined;
  private leaseManager: LeaseManager | undefined;
  private readonly leases = new LeaseSet();
  /** Wakes run() as soon as the first valid config arrives (instead of its next poll). */
  private wakeOnConfig: (() => void) | undefined;
  private synced = false;
  private peers: Peer[] = [];
  private lastReport: { at: number; report: ApplyReport } | undefined;
  private lastLoop = 0;
  private phase = 'starting';
  private reconcileTimer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> = Promise.resolve();
  /** Watches started and whether each is established now (with the last failure while it is not). */
  private readonly watches = new Map<WatchName, { live: boolean; error?: string }>();

  constructor(private readonly p: AgentParts) {
    this.now = p.now ?? Date.now;
    this.reconciler = new Reconciler(p.kernel);
  }

  alive(): boolean {
    // The resync loop ticks every interval; three missed ticks mean the agent is stuck.
    return this.lastLoop === 0 || this.now() - this.lastLoop < 3 * this.p.options.resyncIntervalSeconds * 1000 + 5000;
  }

  ready(): { ok: boolean; reason: string } {
    if (this.configError && !this.config) return { ok: false, reason: `invalid cluster config: ${this.configError}` };
    if (!this.lease) return { ok: false, reason: this.refused ?? this.phase };
    for (const [watch, w] of this.watches) {
      if (!w.live) return { ok: false, reason: `no live ${watch} watch (retrying${w.error ? `: ${w.error}` : ''}); the dataplane keeps its last state` };
    }
    if (!this.lastReport) return { ok: false, reason: 'waiting for the first reconcile' };
    return { ok: true, reason: 'ok' };
  }

  status(): AgentStatus {
    const s: AgentStatus = { node: this.p.options.nodeName, phase: this.phase, peers: [] };
    if (this.lease) {
      s.subnet = formatCidr(this.lease.subnet);
      if (this.lease.ipv6Subnet) s.subnet6 = formatPrefix(this.lease.ipv6Subnet);
      if (this.lease.publicIPv6) s.publicIPv6 = this.lease.publicIPv6;
      s.leaseExpiresAt = new Date(this.lease.expiresAt).toISOString();
    }
    if (this.underlay) {
      s.publicIP = formatIPv4(this.underlay.ip);
      s.underlay = { iface: this.underlay.iface, ip: `${formatIPv4(this.underlay.ip)}/${this.underlay.cidr.prefix}`, reason: this.underlay.reason };
    }
    if (this.backend) s.backend = this.backend.name;
    if (this.hostId) s.hostId = this.hostId;
    const errors = new Map((this.lastDesiredErrors ?? []).map((e) => [e.peer, e]));
    s.peers = this.peers.map((p) => {
      const row: AgentStatus['peers'][number] = { node: p.nodeName, subnet: formatCidr(p.subnet), publicIP: p.publicIP, backend: p.backendType };
      if (p.subnet6) row.subnet6 = formatPrefix(p.subnet6);
      if (p.publicIPv6) row.publicIPv6 = p.publicIPv6;
      const err = errors.get(p.nodeName);
      if (err) {
        row.error = err.message;
        row.errorCode = err.code;
      }
      return row;
    });
    if (this.lastReport) {
      s.lastReconcile = {
        at: new Date(this.lastReport.at).toISOString(),
        changes: this.lastReport.report.changes,
        converged: this.lastReport.report.converged,
        errors: this.lastReport.report.errors.map((e) => e.message),
      };
    }
    if (this.configError) s.configError = this.configError;
    return s;
  }

  private lastDesiredErrors: Array<{ peer: string; code: string; message: string }> | undefined;

  /** Runs until `signal` aborts. Leaves the dataplane in place. */
  async run(signal: AbortSignal): Promise<void> {
    const { log, options } = this.p;
    this.phase = 'detecting the underlay';
    this.underlay = await this.retry('underlay detection', signal, () =>
      detectUnderlay(this.p.runner, underlayWant(options)),
    );
    if (!this.underlay) return;
    log.info({ iface: this.underlay.iface, ip: formatIPv4(this.underlay.ip), mtu: this.underlay.mtu, reason: this.underlay.reason }, 'underlay');

    const configWatch = this.followConfig(signal);
    this.phase = 'waiting for a valid cluster config';
    while (!this.config && !signal.aborted) {
      await new Promise<void>((resolve) => {
        this.wakeOnConfig = resolve;
        void sleep(200, signal).then(resolve);
      });
    }
    this.wakeOnConfig = undefined;
    if (signal.aborted) return;

    this.hostId = loadHostId(hostIdFile(options.subnetFile));
    this.phase = 'acquiring a subnet lease';
    await this.retry('lease acquisition', signal, () => this.acquire());
    if (signal.aborted) return;
    const leaseWatch = this.followLeases(signal);
    const resync = this.resyncLoop(signal);
    const renew = this.renewLoop(signal);
    this.phase = 'running';
    await Promise.all([configWatch, leaseWatch, resync, renew]);
    if (this.reconcileTimer) clearTimeout(this.reconcileTimer);
    await this.reconciling;
    log.info('stopped; dataplane left in place');
  }

  /** Retries `fn` with backoff until it succeeds or the agent stops; logs each failure once per attempt. */
  private async retry<T>(what: string, signal: AbortSignal, fn: () => T | Promise<T>): Promise<T | undefined> {
    const backoff = new Backoff(STEP_BACKOFF);
    while (!signal.aborted) {
      try {
        return await fn();
      } catch (e) {
        const delay = backoff.next();
        this.p.log.error({ err: (e as Error).message, retryInMs: delay }, `${what} failed`);
        await sleep(delay, signal);
      }
    }
    return undefined;
  }

  private localNode(subnet: Lease['subnet'] | undefined, subnet6?: Lease['ipv6Subnet']): LocalNode {
    const u = this.underlay as Underlay;
    // The IPv6 underlay: --public-ipv6 (checked against the interfaces) or the interface's stable global address (local-node.ts).
    const publicIP6 = u.ip6;
    return {
      ...(subnet6 === undefined ? {} : { subnet6 }),
      ...(publicIP6 === undefined ? {} : { publicIP6 }),
      ...(u.cidr6 === undefined ? {} : { underlayCidr6: u.cidr6 }),
      name: this.p.options.nodeName,
      publicIP: u.ip,
      subnet: subnet ?? { network: 0, prefix: 32 },
      underlayMtu: u.mtu,
      underlayIface: u.iface,
      underlayCidr: u.cidr,
      vtepMac: vtepMacFor(u.ip),
    };
  }

  private async acquire(): Promise<void> {
    const config = this.config as ClusterConfig;
    const backend = this.backend as BoundBackend;
    this.leaseManager = new LeaseManager({
      store: this.p.store,
      config,
      now: this.now,
      onInvalid: (bad) => this.p.log.warn({ key: bad.key, err: bad.error }, 'ignoring an invalid lease record'),
    });
    const provisional = this.localNode(undefined);
    let lease: Lease;
    try {
      lease = await this.leaseManager.acquire({
        name: this.p.options.nodeName,
        ...(this.hostId === undefined ? {} : { hostId: this.hostId }),
        publicIP: formatIPv4(provisional.publicIP),
        ...(provisional.publicIP6 ? { publicIPv6: formatIp(provisional.publicIP6) } : {}),
        backendType: backend.name,
        backendData: backend.leaseAttributes(provisional),
      });
    } catch (e) {
      if (isLeaseError(e, 'NodeNameConflict')) {
        this.refused = `refused: ${e.message}`;
        this.p.metrics.nodeNameConflicts.inc();
      }
      throw e;
    }
    this.refused = undefined;
    this.setLease(lease);
  }

  private setLease(lease: Lease): void {
    const backend = this.backend as BoundBackend;
    const v6 = (l: Lease | undefined): string => (l?.ipv6Subnet ? formatPrefix(l.ipv6Subnet) : '');
    const changed = !this.lease || formatCidr(this.lease.subnet) !== formatCidr(lease.subnet) || v6(this.lease) !== v6(lease);
    this.lease = lease;
    this.local = this.localNode(lease.subnet, lease.ipv6Subnet);
    this.p.metrics.leaseExpiry.set(lease.expiresAt / 1000);
    const config = this.config as ClusterConfig;
    const wrote = writeSubnetFile(this.p.options.subnetFile, subnetFileEnv(config, lease, backend.podMtu(this.local), ipMasqOn(this.p.options)));
    if (changed) this.p.log.info({ subnet: formatCidr(lease.subnet), ...(lease.ipv6Subnet ? { subnet6: v6(lease) } : {}), expiresAt: new Date(lease.expiresAt).toISOString(), subnetFile: wrote ? 'written' : 'unchanged' }, 'subnet lease held');
  }

  /** Follows the cluster config key; an invalid config is reported and the last good one kept. */
  private followConfig(signal: AbortSignal): Promise<void> {
    return this.follow('config', CONFIG_KEY, signal, (u) => {
      if (u.kind === 'snapshot') this.onConfig(u.items.find((kv) => kv.key === CONFIG_KEY)?.value);
      else if (u.event.type === 'put' && u.event.kv.key === CONFIG_KEY) this.onConfig(u.event.kv.value);
      else if (u.event.type === 'delete' && u.event.key === CONFIG_KEY) this.onConfig(undefined);
    });
  }

  /**
   * Runs one list-watch until the agent stops. listWatch itself retries every store failure; should
   * the agent's own handling of an update throw, the watch is started again (a fresh snapshot) after a
   * backoff instead of ending for good.
   */
  private async follow(watch: WatchName, prefix: string, signal: AbortSignal, apply: (u: ListWatchUpdate) => void): Promise<void> {
    const { log } = this.p;
    const restart = new Backoff({ initialMs: 200, maxMs: STORE_MAX_BACKOFF_MS });
    this.setWatchLive(watch, false);
    while (!signal.aborted) {
      try {
        for await (const u of listWatch(this.p.store, prefix, signal, {
          maxBackoffMs: STORE_MAX_BACKOFF_MS,
          onRetry: (r) => this.onStoreRetry(watch, r),
          onResync: (r) => log.info({ watch, ...r }, `${watch} watch re-listed`),
          onLive: (up, err) => this.setWatchLive(watch, up, err?.message),
        })) {
          apply(u);
          restart.reset();
        }
      } catch (e) {
        const delay = restart.next();
        this.setWatchLive(watch, false, (e as Error).message);
        log.error({ watch, err: (e as Error).message, retryInMs: delay }, `${watch} watch failed; starting it again from a fresh list`);
        await sleep(delay, signal);
      }
    }
    this.setWatchLive(watch, false);
  }

  private setWatchLive(watch: WatchName, live: boolean, error?: string): void {
    this.watches.set(watch, error === undefined ? { live } : { live, error });
    this.p.metrics.watchUp.set({ watch }, live ? 1 : 0);
    if (live) this.p.metrics.datastoreUp.set(1);
  }

  private onConfig(text: string | undefined): void {
    const { log, metrics } = this.p;
    if (text === undefined) {
      this.configError = `no cluster config at ${CONFIG_KEY} (twill config set)`;
      log.error(this.configError + (this.config ? '; keeping the last valid one' : ''));
      return;
    }
    const parsed = parseClusterConfig(text);
    if (!parsed.ok) {
      this.configError = parsed.errors.join('; ');
      metrics.configErrors.inc();
      log.error({ errors: parsed.errors }, this.config ? 'invalid cluster config; keeping the last valid one and the dataplane as it is' : 'invalid cluster config; waiting for a valid one');
      return;
    }
    const rendered = renderClusterConfig(parsed.config);
    this.configError = undefined;
    if (rendered === this.configText) return;
    if (this.config && (formatCidr(this.config.network) !== formatCidr(parsed.config.network) || this.config.subnetLen !== parsed.config.subnetLen || ipv6LayoutText(this.config) !== ipv6LayoutText(parsed.config))) {
      this.configError = 'Network/SubnetLen/IPv6 layout changed: a running agent keeps its lease; restart the agents to re-lease (a restarted agent keeps its IPv4 subnet and adds an IPv6 one)';
      log.error({ network: formatCidr(parsed.config.network) }, this.configError);
      return;
    }
    const first = !this.config;
    this.config = parsed.config;
    this.configText = rendered;
    this.backend = bindBackend(parsed.config.backend);
    if (parsed.config.backend.type === 'vxlan') this.fallbackVxlan = parsed.config.backend;
    this.wakeOnConfig?.();
    log.info({ config: JSON.parse(rendered) as unknown }, first ? 'cluster config' : 'cluster config changed');
    if (!first) this.scheduleReconcile('config changed');
  }

  /** Logs the first failure of an outage and then every tenth retry (a retry every 2 s at most). */
  private onStoreRetry(watch: WatchName, r: ListWatchRetry): void {
    this.p.metrics.datastoreUp.set(0);
    if (r.attempt === 1 || r.attempt % 10 === 0) {
      this.p.log.warn({ watch, phase: r.phase, err: r.error.message, attempt: r.attempt, retryInMs: r.delayMs }, 'datastore unavailable; keeping the dataplane, retrying');
    }
  }

  private followLeases(signal: AbortSignal): Promise<void> {
    return this.follow('leases', SUBNETS_PREFIX, signal, (u) => {
      if (u.kind === 'snapshot') {
        this.leases.reset(u.items);
        this.synced = true;
      } else if (u.event.type === 'put') this.leases.put(u.event.kv);
      else this.leases.delete(u.event.key);
      // A snapshot holds everything: no need to wait for more events to coalesce.
      if (u.kind === 'snapshot') this.scheduleReconcile('initial sync', 0);
      else this.scheduleReconcile('lease change');
    });
  }

  private async resyncLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.lastLoop = this.now();
      await sleep(this.p.options.resyncIntervalSeconds * 1000, signal);
      if (!signal.aborted) this.scheduleReconcile('periodic resync', 0);
    }
  }

  private async renewLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const lease = this.lease as Lease;
      const manager = this.leaseManager as LeaseManager;
      const wait = Math.max(1000, Math.min(manager.renewDueAt(lease) - this.now(), 2 ** 31 - 1));
      await sleep(wait, signal);
      if (signal.aborted) return;
      try {
        this.setLease(await manager.renew(this.lease as Lease));
        this.p.log.info({ expiresAt: new Date((this.lease as Lease).expiresAt).toISOString() }, 'lease renewed');
      } catch (e) {
        if (isLeaseError(e, 'LeaseLost')) {
          this.p.log.error('lease lost to another node; acquiring a new one');
          await this.retry('lease re-acquisition', signal, () => this.acquire());
        } else {
          this.p.log.warn({ err: (e as Error).message, retryInS: 30 }, isDatastoreError(e) ? 'lease renewal failed (datastore)' : 'lease renewal failed');
          await sleep(30_000, signal);
        }
      }
    }
  }

  /**
   * After a config change: republishes the lease attributes (backend type and data) when they differ
   * from what the lease announces, and rewrites the subnet file (TWILL_MTU follows the backend and MTU).
   * A failure is logged and retried by the next pass (the attributes still differ then).
   */
  private async publishAttributes(): Promise<void> {
    const lease = this.lease;
    const manager = this.leaseManager;
    const backend = this.backend;
    if (!lease || !manager || !backend || !this.local) return;
    const want: LeaseAttributes = {
      publicIP: formatIPv4(this.local.publicIP),
      ...(this.local.publicIP6 ? { publicIPv6: formatIp(this.local.publicIP6) } : {}),
      backendType: backend.name,
      backendData: backend.leaseAttributes(this.local),
    };
    if (!sameAttributes(lease, want)) {
      try {
        const next = await manager.renew(lease, want);
        this.p.log.info({ from: lease.backendType, to: next.backendType, backendData: next.backendData }, 'lease attributes republished');
        this.setLease(next);
      } catch (e) {
        this.p.log.warn({ err: (e as Error).message }, 'republishing the lease attributes failed; retrying on the next pass');
      }
    } else this.setLease(lease);
  }

  /** Coalesces bursts of changes into one reconcile. */
  private scheduleReconcile(reason: string, delayMs = 50): void {
    if (this.reconcileTimer) return;
    this.reconcileTimer = setTimeout(() => {
      this.reconcileTimer = undefined;
      this.reconciling = this.reconciling.then(() => this.reconcile(reason)).catch((e: unknown) => {
        this.p.metrics.reconcileErrors.inc();
        this.p.log.error({ err: (e as Error).message }, 'reconcile failed');
      });
    }, delayMs);
  }

  /** One full pass: desired state from the lease snapshot, applied against a fresh kernel read. */
  private async reconcile(reason: string): Promise<void> {
    if (!this.synced || !this.local || !this.backend || !this.config) return;
    const { log, metrics } = this.p;
    const leases = this.leases.valid();
    const peers = peersFromLeases(leases, this.local.name, this.now());
    const diff = diffPeers(this.peers, peers);
    for (const line of describePeerDiff(diff)) log.info(`peer ${line}`);
    this.peers = peers;
    // Per peer, the path that peer can receive: a backend switch is live, peers may briefly differ.
    const desired = perPeerDesiredState({
      local: this.local,
      peers: peers.map(toBackendPeer).filter((p): p is BackendPeer => p !== undefined),
      config: this.config.backend,
      fallbackVxlan: this.fallbackVxlan,
      ...(this.lease ? { announced: this.lease.backendType } : {}),
    });
    // Peer errors are logged when they appear (not on every periodic resync: that would repeat them forever).
    const known = new Set((this.lastDesiredErrors ?? []).map((e) => `${e.peer}|${e.code}|${e.message}`));
    for (const e of desired.errors) if (!known.has(`${e.peer}|${e.code}|${e.message}`)) log.warn({ peer: e.peer, code: e.code }, e.message);
    this.lastDesiredErrors = desired.errors.map((e) => ({ peer: e.peer, code: e.code, message: e.message }));
    const t0 = process.hrtime.bigint();
    const report = await this.reconciler.apply(desired);
    recordObjectFailures(report, metrics, log);
    this.p.ensureSysctl(IP_FORWARD, '1');
    // Dual stack: the IPv6 network comes with the model slice's cluster config (EnableIPv6).
    const network6: IpPrefix | undefined = this.config.ipv6?.network;
    if (this.local.subnet6 !== undefined) this.p.ensureSysctl(IPV6_FORWARD, '1');
    const nft = await ensureAgentTable(this.p.asyncRunner, {
      clusterNetwork: this.config.network,
      nodeSubnet: this.local.subnet,
      ipMasq: ipMasqOn(this.p.options),
      tunnels: desired.links.map((l) => ({ local: l.local, port: l.port })),
      ...(network6 !== undefined && this.local.subnet6 !== undefined
        ? { clusterNetwork6: network6, nodeSubnet6: this.local.subnet6, ip6Masq: ip6MasqOn(this.p.options) }
        : {}),
    });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    // The new backend's receiving side is in place now: tell the peers (and the plugin: TWILL_MTU).
    if (report.converged) await this.publishAttributes();
    metrics.reconcileDuration.observe(seconds);
    metrics.reconcileChanges.inc(report.changes + (nft.changed ? 1 : 0));
    metrics.peers.set(peers.length);
    metrics.peerErrors.set(desired.errors.length);
    if (!report.converged || report.errors.length > 0 || nft.error) metrics.reconcileErrors.inc();
    this.lastReport = { at: this.now(), report };
    const summary = { reason, peers: peers.length, changes: report.changes, nftChanged: nft.changed, ms: Math.round(seconds * 1000), converged: report.converged };
    if (report.errors.length > 0 || nft.error) log.error({ ...summary, errors: report.errors.map((e) => e.message), nftError: nft.error }, 'reconcile left errors');
    else if (report.changes > 0 || nft.changed) log.info({ ...summary, commands: report.commands.length <= 20 ? report.commands : report.commands.length }, 'reconciled');
    // The first pass after a start is always logged: it shows whether a restarted agent adopted the kernel as it was.
    else if (reason === 'initial sync') log.info(summary, 'kernel in sync');
    else log.debug(summary, 'kernel in sync');
  }
}

function sameAttributes(a: LeaseAttributes, b: LeaseAttributes): boolean {
  const ka = Object.keys(a.backendData);
  return a.publicIP === b.publicIP && a.publicIPv6 === b.publicIPv6 && a.backendType === b.backendType && ka.length === Object.keys(b.backendData).length && ka.every((k) => a.backendData[k] === b.backendData[k]);
}

function toBackendPeer(p: Peer): BackendPeer | undefined {
  const ip = parseIPv4(p.publicIP);
  if (ip === undefined) return undefined;
  const publicIP6 = p.publicIPv6 === undefined ? undefined : parseIpOf(6, p.publicIPv6);
  return {
    name: p.nodeName,
    publicIP: ip,
    subnet: p.subnet,
    backendType: p.backendType,
    backendData: p.backendData,
    ...(p.subnet6 ? { subnet6: p.subnet6 } : {}),
    ...(publicIP6 ? { publicIP6 } : {}),
  };
}

/** The IPv6 half of the config as text ('' without IPv6), to see whether it changed. */
function ipv6LayoutText(c: ClusterConfig): string {
  const v6 = c.ipv6;
  return v6 ? `${formatPrefix(v6.network)} ${v6.subnetLen} ${v6.subnetMin} ${v6.subnetMax}` : '';
}

/** What the plugin reads: both families' network and gateway/prefix when the lease has an IPv6 subnet (flannel's names, TWILL_). */
export function subnetFileEnv(config: ClusterConfig, lease: Pick<Lease, 'subnet' | 'ipv6Subnet'>, mtu: number, ipMasq: boolean): SubnetEnv {
  const env: SubnetEnv = {
    network: formatCidr(config.network),
    subnet: `${formatIPv4(lease.subnet.network + 1)}/${lease.subnet.prefix}`,
    mtu,
    ipMasq,
  };
  if (config.ipv6 && lease.ipv6Subnet) {
    env.ipv6Network = formatPrefix(config.ipv6.network);
    env.ipv6Subnet = `${formatIp({ family: 6, value: lease.ipv6Subnet.network + 1n })}/${lease.ipv6Subnet.prefix}`;
  }
  return env;
}
