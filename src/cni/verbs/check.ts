/**
 * CHECK: compares the kernel with `prevResult` and the IPAM records, and reports every difference
 * (interface, MAC, MTU, state, address, routes, host side, reservation) in one error.
 */
import { CNI_ROUTE_PROTO } from '../../common/constants.js';
import { ErrorCode, TwillError } from '../../common/errors.js';
import { inNetns, parseJsonLines } from '../../dataplane/command.js';
import { holds } from '../../ipam/allocator.js';
import { FsIpamStore } from '../../ipam/fs-store.js';
import { formatCidr, parseCidr, parseIPv4 } from '../../net/ipv4.js';
import type { NetConf } from '../config.js';
import type { CniDeps } from '../deps.js';
import type { CniEnv } from '../env.js';
import { hostVethName, renderVethAlias } from '../naming.js';
import { ipamDataDir } from '../pod-network.js';
import { fromWire, type CniResult, type ResultRoute } from '../result.js';
import { resolveNetwork } from './context.js';

interface IpLink {
  ifname?: string;
  address?: string;
  mtu?: number;
  flags?: string[];
  ifalias?: string;
  master?: string;
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }>;
}
interface IpRoute {
  dst?: string;
  gateway?: string;
}

export function cmdCheck(env: CniEnv, conf: NetConf, deps: CniDeps): void {
  const prev = fromWire(conf.prevResult);
  if (!prev) throw new TwillError(ErrorCode.InvalidConfig, 'CHECK needs a prevResult in the network configuration');
  if (!deps.host.exists(env.netns)) throw new TwillError(ErrorCode.UnknownContainer, `CHECK: netns ${env.netns} does not exist`);
  const net = resolveNetwork(conf, deps);
  const owner = { containerId: env.containerId, ifName: env.ifName };
  const diffs: string[] = [];

  const podIdx = prev.interfaces?.findIndex((i) => i.name === env.ifName && i.sandbox !== undefined) ?? -1;
  const podIf = podIdx >= 0 ? prev.interfaces?.[podIdx] : undefined;
  if (!podIf) diffs.push(`prevResult has no interface ${env.ifName} in a sandbox`);
  const ips = (prev.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === podIdx);

  const pod = readPod(deps, env);
  if (!pod.link) {
    diffs.push(`interface ${env.ifName} is missing in netns ${env.netns}`);
  } else {
    if (podIf && podIf.mac !== '' && pod.link.address?.toLowerCase() !== podIf.mac.toLowerCase()) diffs.push(`MAC is ${pod.link.address}, expected ${podIf.mac}`);
    if (pod.link.mtu !== net.mtu) diffs.push(`MTU is ${pod.link.mtu}, expected ${net.mtu}`);
    if (!pod.link.flags?.includes('UP')) diffs.push(`interface ${env.ifName} is down`);
    const have = new Set((pod.link.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`));
    for (const ip of ips) if (!have.has(ip.address)) diffs.push(`address ${ip.address} is missing (has ${[...have].join(', ') || 'none'})`);
    for (const r of prev.routes ?? []) if (!routePresent(pod.routes, r)) diffs.push(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} is missing`);
  }

  checkHost(deps, conf, owner, net.mode === 'bridge' ? net.bridge : undefined, diffs);
  if (net.mode === 'routed') checkHostRoutes(deps, hostVethName(owner), ips.map((i) => i.address), diffs);
  const store = FsIpamStore.openExisting(ipamDataDir(conf), conf.name);
  for (const ip of ips) {
    const addr = parseCidr(ip.address);
    if (addr && !(store && holds(store, addr.address, owner))) diffs.push(`address ${ip.address} is not reserved for ${owner.containerId}/${owner.ifName}`);
  }
  if (diffs.length > 0) throw new TwillError(ErrorCode.CheckFailed, `CHECK failed: ${diffs.join('; ')}`);
}

function readPod(deps: CniDeps, env: CniEnv): { link?: IpLink; routes: IpRoute[] } {
  const argv = inNetns(env.netns, ['ip', '-json', '-details', '-batch', '-']);
  const r = deps.runner.run(argv, `addr show dev ${env.ifName}\nroute show dev ${env.ifName}\n`);
  if (r.status !== 0) return { routes: [] };
  const [links, routes] = parseJsonLines(r.stdout) as [IpLink[] | undefined, IpRoute[] | undefined];
  return { link: links?.[0], routes: routes ?? [] };
}

function routePresent(routes: IpRoute[], want: ResultRoute): boolean {
  const dst = parseCidr(want.dst, false);
  const key = dst && dst.prefix === 0 ? 'default' : dst ? (dst.prefix === 32 ? formatCidr(dst).replace(/\/32$/, '') : formatCidr(dst)) : want.dst;
  return routes.some((r) => r.dst === key && (want.gw === undefined || parseIPv4(want.gw) === parseIPv4(r.gateway ?? '')));
}

function checkHost(deps: CniDeps, conf: NetConf, owner: { containerId: string; ifName: string }, bridge: string | undefined, diffs: string[]): void {
  const name = hostVethName(owner);
  const r = deps.runner.run(['ip', '-json', '-details', 'link', 'show', 'dev', name]);
  const link = r.status === 0 ? (parseJsonLines(r.stdout).flat()[0] as IpLink | undefined) : undefined;
  if (!link) {
    diffs.push(`host-side veth ${name} is missing`);
    return;
  }
  if (link.ifalias !== renderVethAlias(conf.name, owner)) diffs.push(`host-side veth ${name} does not belong to ${owner.containerId}/${owner.ifName}`);
  if (!link.flags?.includes('UP')) diffs.push(`host-side veth ${name} is down`);
  if (bridge !== undefined && link.master !== bridge) diffs.push(`host-side veth ${name} is not attached to bridge ${bridge}`);
}

/** Routed mode: each pod address has its /32 route (the plugin's protocol, 85) to the host-side veth. */
function checkHostRoutes(deps: CniDeps, veth: string, addresses: string[], diffs: string[]): void {
  const r = deps.runner.run(['ip', '-json', 'route', 'show', 'proto', String(CNI_ROUTE_PROTO), 'dev', veth]);
  const routes = r.status === 0 ? (parseJsonLines(r.stdout).flat() as IpRoute[]) : [];
  for (const a of addresses) {
    const ip = a.split('/')[0];
    if (!routes.some((x) => x.dst === ip)) diffs.push(`host route ${ip}/32 dev ${veth} is missing`);
  }
}

export type { CniResult };
