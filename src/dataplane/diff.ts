/**
 * The pure heart of the reconciler: desired kernel objects vs what the kernel holds -> the batch
 * lines that make them equal. Creates and updates run links -> addresses -> neighbours/FDB ->
 * routes (the neighbour and FDB entry exist before the onlink route that needs them, or the kernel
 * ARPs for the gateway); removals run first, in the reverse order.
 *
 * Only objects Twill's agent owns are ever removed: links named `twill.*`, addresses/neighbours/FDB
 * entries on those links, and routes with the agent's protocol (84, `twill`). The CNI plugin's pod
 * routes have their own protocol (85, `twill-cni`) and are never read here. One guard remains for
 * upgrades: a plugin from before the split put its pod routes in protocol 84 (`dev twl*`, no
 * gateway); those are left alone too. When the kernel already matches, the result is empty.
 */
import { VETH_PREFIX } from '../common/constants.js';
import type { DesiredState, LinkSpec } from '../backends/types.js';
import { formatCidr, formatIPv4 } from '../net/ipv4.js';
import { formatIp, type Ip, type IpPrefix } from '../net/ip.js';
import {
  InvalidSpecError,
  ROUTE6_METRIC,
  renderAddr,
  renderAddr6,
  renderNeighDel6,
  renderNeighReplace6,
  renderRoute6,
  renderRouteDel6,
  renderFdb,
  renderLinkAdd,
  renderLinkDel,
  renderLinkSet,
  renderNeighDel,
  renderNeighReplace,
  renderRoute,
  renderRouteDel,
} from './render-ip.js';
import type { ActualState, KernelCommand, ObservedLink, ObservedRoute, ObservedRoute6 } from './state.js';

export interface DiffResult {
  /** In execution order. */
  readonly commands: readonly KernelCommand[];
  /** Desired objects (or observed ones to remove) that failed validation, with the reason. */
  readonly rejected: readonly string[];
}

/** Proto-84 routes the agent owns: all but pod routes of a pre-split plugin (gateway-less, to a pod veth). */
export function isOwnedRoute(r: ObservedRoute): boolean {
  return !(r.via === undefined && r.dev !== undefined && r.dev.startsWith(VETH_PREFIX));
}

/** True when the link can be kept (only MAC, MTU or up state differ); otherwise it is re-created. */
export function linkCompatible(d: LinkSpec, a: ObservedLink): boolean {
  const v = a.vxlan;
  return (
    a.kind === d.kind &&
    v !== undefined &&
    v.vni === d.vni &&
    v.port === d.port &&
    v.local === d.local &&
    v.dev === d.dev &&
    v.learning === d.learning &&
    v.udpCsum === d.udpCsum
  );
}

const addrKey = (a: { dev: string; address: number; prefix: number }) => `${a.dev} ${a.address}/${a.prefix}`;
const neighKey = (n: { dev: string; ip: number }) => `${n.dev} ${n.ip}`;
const fdbKey = (f: { dev: string; mac: string; dst: number }) => `${f.dev} ${f.mac} ${f.dst}`;
const routeKey = (r: { dst: { network: number; prefix: number } }, metric: number) => `${r.dst.network}/${r.dst.prefix} ${metric}`;

const addrKey6 = (a: { dev: string; address: Ip; prefix: number }) => `${a.dev} ${a.address.family}:${a.address.value}/${a.prefix}`;
const neighKey6 = (n: { dev: string; ip: Ip }) => `${n.dev} ${n.ip.family}:${n.ip.value}`;
const routeKey6 = (r: { dst: IpPrefix }, metric: number) => `${r.dst.family}:${r.dst.network}/${r.dst.prefix} ${metric}`;
const sameIp = (a: Ip, b: Ip) => a.family === b.family && a.value === b.value;
/** For messages only: never throws on a malformed value. */
const showIp = (a: Ip) => {
  try {
    return formatIp(a);
  } catch {
    return String(a.value);
  }
};
const showPrefix = (p: IpPrefix) => `${showIp({ family: p.family, value: p.network })}/${p.prefix}`;

export function isOwnedRoute6(r: ObservedRoute6): boolean {
  return !(r.via === undefined && r.dev !== undefined && r.dev.startsWith(VETH_PREFIX));
}

export function computeDiff(desired: DesiredState, actual: ActualState): DiffResult {
  const rejected: string[] = [];
  const removals: Record<'route' | 'fdb' | 'neigh' | 'addr' | 'link', KernelCommand[]> = { route: [], fdb: [], neigh: [], addr: [], link: [] };
  const creates: Record<'link' | 'addr' | 'neigh' | 'fdb' | 'route', KernelCommand[]> = { link: [], addr: [], neigh: [], fdb: [], route: [] };
  /** Renders, or records why not; returns false when rejected. */
  const emit = (into: KernelCommand[], what: string, render: () => KernelCommand): boolean => {
    try {
      into.push(render());
      return true;
    } catch (e) {
      if (!(e instanceof InvalidSpecError)) throw e;
      rejected.push(`${what}: ${e.message}`);
      return false;
    }
  };
  const seen = new Set<string>();
  const unique = (key: string, what: string): boolean => {
    if (seen.has(key)) {
      rejected.push(`${what}: duplicate of an earlier desired object`);
      return false;
    }
    seen.add(key);
    return true;
  };

  // Links. `gone`: links the kernel will not have (deleted or re-created) - objects on them vanish too.
  const actualLinks = new Map(actual.links.map((l) => [l.name, l]));
  const gone = new Set<string>();
  const desiredLinks = new Set<string>();
  for (const d of desired.links) {
    if (!unique(`link ${d.name}`, `link ${d.name}`)) continue;
    desiredLinks.add(d.name);
    const a = actualLinks.get(d.name);
    if (a === undefined) {
      emit(creates.link, `link ${d.name}`, () => renderLinkAdd(d));
    } else if (!linkCompatible(d, a)) {
      if (emit(creates.link, `link ${d.name}`, () => renderLinkAdd(d))) {
        emit(removals.link, `link ${d.name}`, () => renderLinkDel(d.name));
        gone.add(d.name);
      }
    } else if (a.mtu !== d.mtu || a.mac !== d.mac || !a.up) {
      emit(creates.link, `link ${d.name}`, () => renderLinkSet(d));
    }
  }
  for (const a of actual.links) {
    if (!desiredLinks.has(a.name) && emit(removals.link, `link ${a.name}`, () => renderLinkDel(a.name))) gone.add(a.name);
  }
  const alive = (dev: string | undefined) => dev === undefined || !gone.has(dev);

  // Addresses.
  const actualAddrs = new Set(actual.addresses.filter((a) => alive(a.dev)).map(addrKey));
  const desiredAddrs = new Set<string>();
  for (const d of desired.addresses) {
    const key = addrKey(d);
    const what = `address ${formatIPv4(d.address)}/${d.prefix} on ${d.dev}`;
    if (!unique(`addr ${key}`, what)) continue;
    desiredAddrs.add(key);
    if (!actualAddrs.has(key)) emit(creates.addr, what, () => renderAddr('replace', d));
  }
  for (const a of actual.addresses) {
    if (alive(a.dev) && !desiredAddrs.has(addrKey(a))) emit(removals.addr, `address on ${a.dev}`, () => renderAddr('del', a));
  }

  // Neighbours: only PERMANENT entries are ours; a kernel-made entry for a desired address is replaced.
  const actualNeigh = new Map(actual.neighbours.filter((n) => alive(n.dev)).map((n) => [neighKey(n), n]));
  const desiredNeigh = new Set<string>();
  for (const d of desired.neighbours) {
    const key = neighKey(d);
    const what = `neighbour ${formatIPv4(d.ip)} on ${d.dev}`;
    if (!unique(`neigh ${key}`, what)) continue;
    desiredNeigh.add(key);
    const a = actualNeigh.get(key);
    if (a === undefined || !a.permanent || a.mac !== d.mac) emit(creates.neigh, what, () => renderNeighReplace(d));
  }
  for (const a of actualNeigh.values()) {
    if (a.permanent && !desiredNeigh.has(neighKey(a))) emit(removals.neigh, `neighbour on ${a.dev}`, () => renderNeighDel(a));
  }

  // FDB: keyed by MAC and remote, since one MAC can have several remotes (`fdb append`).
  const actualFdb = new Set(actual.fdb.filter((f) => alive(f.dev)).map(fdbKey));
  const desiredFdb = new Set<string>();
  for (const d of desired.fdb) {
    const key = fdbKey(d);
    const what = `fdb ${d.mac} on ${d.dev}`;
    if (!unique(`fdb ${d.dev} ${d.mac}`, what)) continue;
    desiredFdb.add(key);
    if (!actualFdb.has(key)) emit(creates.fdb, what, () => renderFdb('replace', d));
  }
  for (const a of actual.fdb) {
    if (alive(a.dev) && !desiredFdb.has(fdbKey(a))) emit(removals.fdb, `fdb ${a.mac} on ${a.dev}`, () => renderFdb('del', a));
  }

  // Routes: main table, metric 0, keyed by destination.
  const owned = actual.routes.filter((r) => isOwnedRoute(r) && alive(r.dev));
  const actualRoutes = new Map(owned.map((r) => [routeKey(r, r.metric), r]));
  const desiredRoutes = new Set<string>();
  for (const d of desired.routes) {
    const key = routeKey(d, 0);
    const what = `route ${formatCidr(d.dst)}`;
    if (!unique(`route ${key}`, what)) continue;
    desiredRoutes.add(key);
    const a = actualRoutes.get(key);
    if (a === undefined) emit(creates.route, what, () => renderRoute('add', d));
    else if (a.type !== 'unicast' || a.via !== d.via || a.dev !== d.dev || a.onlink !== d.onlink) {
      emit(creates.route, what, () => renderRoute('replace', d));
    }
  }
  for (const a of owned) {
    if (!desiredRoutes.has(routeKey(a, a.metric))) emit(removals.route, `route ${formatCidr(a.dst)}`, () => renderRouteDel(a));
  }

  // IPv6: the same rules, own lists (v4 lines above are unchanged by dual stack). The kernel-made
  // link-local address is never read as ours; routes are keyed by destination and metric (1024).
  const actualAddrs6 = new Set(actual.addresses6.filter((a) => alive(a.dev)).map(addrKey6));
  const desiredAddrs6 = new Set<string>();
  for (const d of desired.addresses6) {
    const key = addrKey6(d);
    const what = `address ${showIp(d.address)}/${d.prefix} on ${d.dev}`;
    if (!unique(`addr6 ${key}`, what)) continue;
    desiredAddrs6.add(key);
    if (!actualAddrs6.has(key)) emit(creates.addr, what, () => renderAddr6('replace', d));
  }
  for (const a of actual.addresses6) {
    if (alive(a.dev) && !desiredAddrs6.has(addrKey6(a))) emit(removals.addr, `address on ${a.dev}`, () => renderAddr6('del', a));
  }
  const actualNeigh6 = new Map(actual.neighbours6.filter((n) => alive(n.dev)).map((n) => [neighKey6(n), n]));
  const desiredNeigh6 = new Set<string>();
  for (const d of desired.neighbours6) {
    const key = neighKey6(d);
    const what = `neighbour ${showIp(d.ip)} on ${d.dev}`;
    if (!unique(`neigh6 ${key}`, what)) continue;
    desiredNeigh6.add(key);
    const a = actualNeigh6.get(key);
    if (a === undefined || !a.permanent || a.mac !== d.mac) emit(creates.neigh, what, () => renderNeighReplace6(d));
  }
  for (const a of actualNeigh6.values()) {
    if (a.permanent && !desiredNeigh6.has(neighKey6(a))) emit(removals.neigh, `neighbour on ${a.dev}`, () => renderNeighDel6(a));
  }
  const owned6 = actual.routes6.filter((r) => isOwnedRoute6(r) && alive(r.dev));
  const actualRoutes6 = new Map(owned6.map((r) => [routeKey6(r, r.metric), r]));
  const desiredRoutes6 = new Set<string>();
  for (const d of desired.routes6) {
    const key = routeKey6(d, ROUTE6_METRIC);
    const what = `route ${showPrefix(d.dst)}`;
    if (!unique(`route6 ${key}`, what)) continue;
    desiredRoutes6.add(key);
    const a = actualRoutes6.get(key);
    if (a === undefined) emit(creates.route, what, () => renderRoute6('add', d));
    else if (a.type !== 'unicast' || a.via === undefined || !sameIp(a.via, d.via) || a.dev !== d.dev || a.onlink !== d.onlink) {
      emit(creates.route, what, () => renderRoute6('replace', d));
    }
  }
  for (const a of owned6) {
    if (!desiredRoutes6.has(routeKey6(a, a.metric))) emit(removals.route, `route ${showPrefix(a.dst)}`, () => renderRouteDel6(a));
  }

  const commands = [
    ...removals.route,
    ...removals.fdb,
    ...removals.neigh,
    ...removals.addr,
    ...removals.link,
    ...creates.link,
    ...creates.addr,
    ...creates.neigh,
    ...creates.fdb,
    ...creates.route,
  ];
  return { commands, rejected };
}
