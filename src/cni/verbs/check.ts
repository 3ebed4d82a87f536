/**
 * CHECK: compares the kernel with `prevResult` and the IPAM records, and reports every difference
 * (interface, MAC, MTU, state, address, routes, host side, reservation) in one error.
 */
import { CNI_ROUTE_PROTO } from '../../common/constants.js';
import { ErrorCode, TwillError } from '../../common/errors.js';
import { inNetns, parseJsonLines } from '../../dataplane/command.js';
import { holds } from '../../ipam/allocator.js';
import { FsIpamStore, V6_CODEC } from '../../ipam/fs-store.js';
import { formatIp, ipEquals, parseIp, parsePrefix } from '../../net/ip.js';
import type { NetConf } from '../config.js';
import type { CniDeps } from '../deps.js';
import type { CniEnv } from '../env.js';
import { hostVethName, renderVethAlias } from '../naming.js';
import { ipamDataDir, ROUTED_GATEWAY6 } from '../pod-network.js';
import { fromWire, type CniResult, type ResultRoute } from '../result.js';
import { resolveNetwork } from './context.js';

interface IpLink {
  ifname?: string;
  address?: string;
  mtu?: number;
  flags?: string[];
  ifalias?: string;
  master?: string;
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number; scope?: string }>;
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

  const wants6 = ips.some((ip) => ip.address.includes(':')) || (prev.routes ?? []).some((r) => r.dst.includes(':'));
  const pod = readPod(deps, env, wants6);
  if (!pod.link) {
    diffs.push(`interface ${env.ifName} is missing in netns ${env.netns}`);
  } else {
    if (podIf && podIf.mac !== '' && pod.link.address?.toLowerCase() !== podIf.mac.toLowerCase()) diffs.push(`MAC is ${pod.link.address}, expected ${podIf.mac}`);
    if (pod.link.mtu !== net.mtu) diffs.push(`MTU is ${pod.link.mtu}, expected ${net.mtu}`);
    if (!pod.link.flags?.includes('UP')) diffs.push(`interface ${env.ifName} is down`);
    const have = new Set(
      (pod.link.addr_info ?? [])
        .filter((a) => a.family === 'inet' || (a.family === 'inet6' && a.scope !== 'link'))
        .map((a) => `${canonical(a.local ?? '')}/${a.prefixlen}`),
    );
    for (const ip of ips) if (!have.has(canonicalCidr(ip.address))) diffs.push(`address ${ip.address} is missing (has ${[...have].join(', ') || 'none'})`);
    for (const r of prev.routes ?? []) if (!routePresent(pod.routes, r)) diffs.push(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} is missing`);
  }

  checkHost(deps, conf, owner, net.mode === 'bridge' ? net.bridge : undefined, diffs);
  if (net.mode === 'routed') checkHostRoutes(deps, hostVethName(owner), ips.map((i) => i.address), diffs);
  const store = FsIpamStore.openExisting(ipamDataDir(conf), conf.name);
  const store6 = store ? FsIpamStore.openExisting(ipamDataDir(conf), conf.name, V6_CODEC) : undefined;
  for (const ip of ips) {
    const addr = parsePrefix(ip.address)?.address;
    if (!addr) continue;
    const held = addr.family === 4 ? store !== undefined && holds(store, Number(addr.value), owner) : store6 !== undefined && holds(store6, addr.value, owner);
    if (!held) diffs.push(`address ${ip.address} is not reserved for ${owner.containerId}/${owner.ifName}`);
  }
  if (diffs.length > 0) throw new TwillError(ErrorCode.CheckFailed, `CHECK failed: ${diffs.join('; ')}`);
}

/** RFC 5952 text of an address (ip prints canonical text already; this makes the comparison sure). */
function canonical(text: string): string {
  const a = parseIp(text);
  return a ? formatIp(a) : text;
}

function canonicalCidr(text: string): string {
  const slash = text.indexOf('/');
  return slash < 0 ? text : `${canonical(text.slice(0, slash))}${text.slice(slash)}`;
}

/** The pod interface with its addresses, and its routes of both families (IPv6 only when expected: one more `ip`). */
function readPod(deps: CniDeps, env: CniEnv, with6: boolean): { link?: IpLink; routes: IpRoute[] } {
  const argv = inNetns(env.netns, ['ip', '-json', '-details', '-batch', '-']);
  const r = deps.runner.run(argv, `addr show dev ${env.ifName}\nroute show dev ${env.ifName}\n`);
  if (r.status !== 0) return { routes: [] };
  const [links, routes] = parseJsonLines(r.stdout) as [IpLink[] | undefined, IpRoute[] | undefined];
  const all = routes ?? [];
  if (with6) {
    // `ip -batch` takes no per-line family switch: IPv6 routes need their own `ip -6`.
    const r6 = deps.runner.run(inNetns(env.netns, ['ip', '-json', '-6', 'route', 'show', 'dev', env.ifName]));
    if (r6.status === 0) all.push(...(parseJsonLines(r6.stdout).flat() as IpRoute[]));
  }
  return { link: links?.[0], routes: all };
}

function routePresent(routes: IpRoute[], want: ResultRoute): boolean {
  const dst = parsePrefix(want.dst, false);
  const full = dst ? (dst.family === 4 ? 32 : 128) : -1;
  const key = dst && dst.prefix === 0 ? 'default' : dst ? (dst.prefix === full ? formatIp(dst.address) : `${formatIp(dst.address)}/${dst.prefix}`) : want.dst;
  const gw = want.gw === undefined ? undefined : parseIp(want.gw);
  return routes.some((r) => {
    if (r.dst !== key) return false;
    if (want.gw === undefined) return true;
    const have = parseIp(r.gateway ?? '');
    // Same destination text for both families only for `default`: the gateway's family tells them apart.
    return gw !== undefined && have !== undefined && ipEquals(gw, have);
  });
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

/** Routed mode: each pod address has its /32 (IPv6: /128) route (the plugin's protocol, 85) to the host-side veth. */
function checkHostRoutes(deps: CniDeps, veth: string, addresses: string[], diffs: string[]): void {
  const read = (family: string[]): IpRoute[] => {
    const r = deps.runner.run(['ip', '-json', ...family, 'route', 'show', 'proto', String(CNI_ROUTE_PROTO), 'dev', veth]);
    return r.status === 0 ? (parseJsonLines(r.stdout).flat() as IpRoute[]) : [];
  };
  const routes = read([]);
  const six = addresses.some((a) => a.includes(':'));
  if (six) routes.push(...read(['-6']));
  for (const a of addresses) {
    const ip = canonical(a.split('/')[0] ?? '');
    if (!routes.some((x) => x.dst === ip)) diffs.push(`host route ${ip}/${ip.includes(':') ? 128 : 32} dev ${veth} is missing`);
  }
  if (six) {
    // The pods' IPv6 next hop: fe80::1 on this veth.
    const r = deps.runner.run(['ip', '-json', '-6', 'addr', 'show', 'dev', veth, 'scope', 'link']);
    const link = r.status === 0 ? (parseJsonLines(r.stdout).flat()[0] as IpLink | undefined) : undefined;
    if (!(link?.addr_info ?? []).some((x) => x.local === ROUTED_GATEWAY6)) diffs.push(`host-side veth ${veth} lacks the pods' IPv6 next hop ${ROUTED_GATEWAY6}`);
  }
}

export type { CniResult };
