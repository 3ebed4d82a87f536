/**
 * ADD: reserve an address, create the veth pair straight into the pod netns, configure both ends.
 * Two `ip` processes in all (host batch, pod batch). Every step pushes its undo; a failure undoes
 * everything in reverse, so a failed ADD leaves neither a link nor a reservation, and deletes only
 * the link it created itself (by its temporary name until the rename succeeded).
 */
import { ErrorCode, TwillError } from '../../common/errors.js';
import { ipBatch, parseJsonLines } from '../../dataplane/command.js';
import { IP_FORWARD, proxyArpPath } from '../../dataplane/host-facts.js';
import { allocate, release } from '../../ipam/allocator.js';
import { FsIpamStore, V6_CODEC } from '../../ipam/fs-store.js';
import type { Attachment } from '../../ipam/types.js';
import { formatIp } from '../../net/ip.js';
import { formatIPv4 } from '../../net/ipv4.js';
import { addResult, hostMac, renameLine, renderHostAdd, renderMasquerade, renderPodAdd, type AddPlan } from '../add-plan.js';
import type { NetConf } from '../config.js';
import type { CniDeps } from '../deps.js';
import type { CniEnv } from '../env.js';
import { bridgeAlias, bridgeHasOtherRoutes, isTwillBridge, parseProcRoutes, staleBridgeAddresses, type BridgeFacts } from '../bridge-gateway.js';
import { hostVethName, isStaleOwnVeth, renderVethAlias, tmpVethName, type LinkFacts } from '../naming.js';
import { ipamDataDir, type PodNetwork } from '../pod-network.js';
import type { CniResult } from '../result.js';
import { rangeOf, rangeOf6, resolveNetwork } from './context.js';

/** IPv6 forwarding for the whole host netns (all interfaces), the IPv6 twin of ip_forward. */
export const IP6_FORWARD = '/proc/sys/net/ipv6/conf/all/forwarding';

export function cmdAdd(env: CniEnv, conf: NetConf, deps: CniDeps): CniResult {
  if (!deps.host.exists(env.netns)) {
    throw new TwillError(ErrorCode.InvalidEnv, `CNI_NETNS ${env.netns} does not exist`);
  }
  const net = resolveNetwork(conf, deps);
  const owner: Attachment = { containerId: env.containerId, ifName: env.ifName };
  const undo: Array<() => void> = [];
  try {
    const store = FsIpamStore.open(ipamDataDir(conf), conf.name);
    const { ip, existing } = allocate(store, rangeOf(net), owner);
    if (!existing) undo.push(() => release(store, owner));
    deps.log.debug('address reserved', { ip: formatIPv4(ip), existing });
    // The second family after the first: a failure here unwinds the first family's reservation too.
    let ip6: bigint | undefined;
    if (net.v6) {
      const store6 = FsIpamStore.open(ipamDataDir(conf), conf.name, V6_CODEC);
      const got6 = allocate(store6, rangeOf6(net.v6), owner);
      if (!got6.existing) undo.push(() => release(store6, owner));
      ip6 = got6.ip;
      deps.log.debug('IPv6 address reserved', { ip: formatIp({ family: 6, value: ip6 }), existing: got6.existing });
    }

    const links = deps.host.listLinks();
    const hostVeth = hostVethName(owner);
    const alias = renderVethAlias(conf.name, owner);
    const plan: AddPlan = {
      net,
      network: conf.name,
      netns: env.netns,
      ifName: env.ifName,
      hostVeth,
      tmpVeth: tmpVethName(),
      alias,
      ip,
      replaceExisting: links.has(hostVeth) && replaceableHostLink(deps, hostVeth, alias),
    };
    if (ip6 !== undefined) plan.ip6 = ip6;
    if (net.mode === 'bridge' && !links.has(net.bridge)) ensureBridge(deps, net.bridge, hostMac(net.gateway), conf.name);
    else if (net.mode === 'bridge' && bridgeHasOtherRoutes(parseProcRoutes(deps.host.procRoutes()), net.bridge, net.subnet)) {
      plan.staleBridgeAddrs = staleGateways(deps, net, conf.name);
    }
    const hostLines = renderHostAdd(plan);
    // Until the rename the veth carries a name only this ADD uses; after it, the final name is ours.
    let renamed = false;
    undo.push(() => removeLink(deps, renamed ? hostVeth : plan.tmpVeth));
    try {
      ipBatch(deps.runner, hostLines, { what: 'configuring the host side' });
    } catch (e) {
      const failed = failedBatchLine(e);
      renamed = failed !== undefined && failed - 1 > hostLines.indexOf(renameLine(plan));
      throw e;
    }
    renamed = true;
    if (net.mode === 'routed') deps.host.ensureSysctl(proxyArpPath(hostVeth), '1');
    ipBatch(deps.runner, renderPodAdd(plan), { netns: env.netns, what: 'configuring the pod side' });
    if (deps.host.ensureSysctl(IP_FORWARD, '1')) deps.log.info('enabled IPv4 forwarding');
    if (net.v6 && deps.host.ensureSysctl(IP6_FORWARD, '1')) deps.log.info('enabled IPv6 forwarding');
    if (net.ipMasq) nft(deps, renderMasquerade(net));
    const result = addResult(plan, conf.cniVersion);
    if (net.mode === 'bridge' && result.interfaces?.[0]) result.interfaces[0].mac = hostMac(net.gateway);
    deps.log.info('pod attached', { ip: formatIPv4(ip), ...(ip6 !== undefined ? { ip6: formatIp({ family: 6, value: ip6 }) } : {}), hostVeth, mode: net.mode });
    return result;
  } catch (e) {
    for (const step of undo.reverse()) {
      try {
        step();
      } catch (u) {
        deps.log.warn('rollback step failed', { err: (u as Error).message });
      }
    }
    throw e;
  }
}

/**
 * An existing link with this attachment's veth name: replaced only when it is ours and stale (a veth
 * whose alias names this very attachment: a retried ADD). Anything else is refused, untouched.
 */
function replaceableHostLink(deps: CniDeps, name: string, alias: string): boolean {
  const r = deps.runner.run(['ip', '-json', '-details', 'link', 'show', 'dev', name]);
  if (r.status !== 0) return false; // gone meanwhile
  const link = parseJsonLines(r.stdout).flat()[0] as LinkFacts | undefined;
  if (link === undefined) return false;
  if (!isStaleOwnVeth(link, alias)) {
    throw new TwillError(
      ErrorCode.KernelFailure,
      `host link ${name} exists and is not this attachment's veth (kind ${link.linkinfo?.info_kind ?? 'unknown'}, alias ${JSON.stringify(link.ifalias ?? '')}, expected ${JSON.stringify(alias)}): not replaced`,
    );
  }
  return true;
}

/** 1-based number of the line an `ip -batch` stopped at ("Command failed -:N"), when it says. */
export function failedBatchLine(e: unknown): number | undefined {
  const m = /Command failed -:(\d+)/.exec((e as Error | undefined)?.message ?? '');
  return m ? Number(m[1]) : undefined;
}

/** The bridge's addresses other than the current gateway, when the bridge is Twill's (see bridge-gateway.ts). */
function staleGateways(deps: CniDeps, net: PodNetwork, network: string): string[] {
  const out = ipBatch(deps.runner, [`addr show dev ${net.bridge}`], { json: true, what: `reading bridge ${net.bridge}` });
  const link = parseJsonLines(out).flat()[0] as BridgeFacts | undefined;
  if (!link) return [];
  const stale = staleBridgeAddresses(link, network, net.gateway, net.subnet.prefix);
  if (stale.length > 0) deps.log.info('removing stale gateway addresses from the bridge', { bridge: net.bridge, addresses: stale });
  else if (!isTwillBridge(link, network)) deps.log.debug('bridge is not Twill`s: its other addresses are left alone', { bridge: net.bridge });
  return stale;
}

/**
 * Creates the bridge if it is missing, marked as Twill's by its alias (set in the same batch, so only
 * by the process that created it); a concurrent ADD creating it first is fine.
 */
function ensureBridge(deps: CniDeps, bridge: string, mac: string, network: string): void {
  const r = deps.runner.run(['ip', '-batch', '-'], `link add name ${bridge} address ${mac} type bridge\nlink set dev ${bridge} alias ${bridgeAlias(network)}\n`);
  if (r.status !== 0 && !r.stderr.includes('File exists')) {
    throw new TwillError(ErrorCode.KernelFailure, `creating bridge ${bridge} failed: ${r.stderr.trim()}`);
  }
}

export function removeLink(deps: CniDeps, name: string): boolean {
  const r = deps.runner.run(['ip', 'link', 'del', name]);
  if (r.status === 0) return true;
  if (/Cannot find device|does not exist/.test(r.stderr)) return false;
  throw new TwillError(ErrorCode.KernelFailure, `deleting ${name} failed: ${r.stderr.trim()}`);
}

function nft(deps: CniDeps, text: string): void {
  const r = deps.runner.run(['nft', '-f', '-'], text);
  if (r.status !== 0) throw new TwillError(ErrorCode.KernelFailure, `nftables update failed: ${r.stderr.trim()}`);
}
