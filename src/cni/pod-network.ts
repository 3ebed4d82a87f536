/**
 * Resolves what a pod on this node gets (subnet, range, gateway, routes, MTU, masquerade) from
 * the network config and, where the config leaves it out, the agent's subnet file. Pure.
 */
import { DEFAULT_BRIDGE, DEFAULT_IPAM_DIR, ROUTED_GATEWAY, VXLAN_OVERHEAD } from '../common/constants.js';
import { ErrorCode, TwillError } from '../common/errors.js';
import type { SubnetEnv } from '../common/subnet-env.js';
import { formatIp, formatPrefix, isLinkLocal, isV4Mapped, parseIpOf, parsePrefix, parsePrefixOf, prefixContains, usableRange, type IpPrefix } from '../net/ip.js';
import { contains, formatCidr, hostRange, parseCidr, parseIPv4, type Cidr } from '../net/ipv4.js';
import type { NetConf, RangeConf } from './config.js';

/**
 * The pod's IPv6 next hop in `routed` mode: a fixed link-local address the plugin puts on every
 * host-side veth (as Calico puts fe80::ecee:eeff:feee:eeee there). Link-local addresses are scoped
 * to their link, so the same address on every veth is fine, and the pod only ever resolves this one
 * neighbour on its own link: no proxy NDP is needed (see docs/design/ipv6-pods.md).
 */
export const ROUTED_GATEWAY6 = 'fe80::1';
/** Smallest and largest IPv6 pod subnets accepted: a node gets at most a /64, at least a /126. */
export const V6_PREFIX_MIN = 64;
export const V6_PREFIX_MAX = 126;

export interface PodRoute6 {
  dst: IpPrefix;
  gw: bigint;
}

/** The IPv6 half of a dual-stack pod network (values are `Ip` values of family 6). */
export interface PodNetwork6 {
  subnet: IpPrefix;
  first: bigint;
  last: bigint;
  /** Held by the bridge in `bridge` mode (default subnet::1), kept free in `routed` mode. */
  gateway: bigint;
  /** The bridge gateway, or fe80::1 (the host veth's link-local) in `routed` mode. */
  podGateway: bigint;
  routes: PodRoute6[];
  clusterNetwork?: IpPrefix;
}

export type Mode = 'bridge' | 'routed';

export interface PodRoute {
  dst: Cidr;
  /** Next hop; the mode's gateway when the config gives none. */
  gw: number;
}

export interface PodNetwork {
  mode: Mode;
  bridge: string;
  subnet: Cidr;
  /** Allocation range, inclusive; never contains network, broadcast or gateway (the allocator skips it). */
  first: number;
  last: number;
  /** The subnet's gateway: held by the bridge in `bridge` mode, kept free in `routed` mode. */
  gateway: number;
  /** Next hop the pod uses: the bridge gateway, or 169.254.1.1 in `routed` mode. */
  podGateway: number;
  routes: PodRoute[];
  mtu: number;
  ipMasq: boolean;
  /** Cluster network, when known: masquerade skips traffic that stays inside it. */
  clusterNetwork?: Cidr;
  hairpin: boolean;
  /** Dual stack: the IPv6 range set (from `ipam.ranges` or TWILL_IPV6_SUBNET). */
  v6?: PodNetwork6;
}

function invalid(msg: string): TwillError {
  return new TwillError(ErrorCode.InvalidConfig, msg);
}

function ip(text: string, what: string): number {
  const v = parseIPv4(text);
  if (v === undefined) throw invalid(`${what} ${JSON.stringify(text)} is not an IPv4 address`);
  return v;
}

/** Where the IPAM keeps its records for this network. */
export function ipamDataDir(conf: NetConf): string {
  return conf.ipam?.dataDir ?? DEFAULT_IPAM_DIR;
}

export function subnetFileOf(conf: NetConf, fallback: string): string {
  return conf.ipam?.subnetFile ?? fallback;
}

export interface ResolveInput {
  conf: NetConf;
  /** Parsed subnet file, or undefined when the file does not exist. */
  subnetEnv: SubnetEnv | undefined;
  /** MTU of the underlay (default-route) interface, used when neither config nor subnet file sets one. */
  underlayMtu: number;
}

/** One family's range as the config or the subnet file gives it; `path` names it in errors. */
interface RangeSpec {
  /** IPv4 only: missing means TWILL_SUBNET (the overrides below still apply). */
  subnet?: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
  /** Field path prefix in errors, e.g. `ipam.` or `ipam.ranges.1.0.`. */
  path: string;
  /** From the subnet file: gateway/prefix, host bits set (the address is the gateway). */
  fromEnv?: string;
}

function rangeSpec(r: Partial<RangeConf>, path: string): RangeSpec {
  const spec: RangeSpec = { path };
  if (r.subnet !== undefined) spec.subnet = r.subnet;
  if (r.rangeStart !== undefined) spec.rangeStart = r.rangeStart;
  if (r.rangeEnd !== undefined) spec.rangeEnd = r.rangeEnd;
  if (r.gateway !== undefined) spec.gateway = r.gateway;
  return spec;
}

/** The IPv4 and IPv6 ranges of `ipam.ranges`: one set per family, one range per set. */
function rangeSets(sets: RangeConf[][]): { v4?: RangeSpec; v6?: RangeSpec } {
  const out: { v4?: RangeSpec; v6?: RangeSpec } = {};
  sets.forEach((set, i) => {
    if (set.length === 0) throw invalid(`ipam.ranges.${i}: a range set needs at least one range`);
    let family: 4 | 6 | undefined;
    set.forEach((r, j) => {
      const p = parsePrefix(r.subnet, true);
      if (!p) throw invalid(`ipam.ranges.${i}.${j}.subnet ${JSON.stringify(r.subnet)} is not a valid subnet (address/len with host bits zero)`);
      if (family !== undefined && p.family !== family) throw invalid(`ipam.ranges.${i}: a range set holds one address family, ${r.subnet} is IPv${p.family} after IPv${family}`);
      family = p.family;
    });
    if (set.length > 1) throw invalid(`ipam.ranges.${i}: several ranges in one set are not supported yet: one range per set`);
    const key = family === 6 ? 'v6' : 'v4';
    if (out[key]) throw invalid(`ipam.ranges.${i}: a second IPv${family} range set (one set per family)`);
    out[key] = rangeSpec(set[0] as RangeConf, `ipam.ranges.${i}.0.`);
  });
  return out;
}

function resolveV4(spec: RangeSpec | undefined, subnetEnv: SubnetEnv | undefined): { subnet: Cidr; first: number; last: number; gateway: number } {
  let subnet: Cidr;
  let gateway: number | undefined;
  if (spec?.subnet !== undefined) {
    const c = parseCidr(spec.subnet, true);
    if (!c) throw invalid(`${spec.path}subnet ${JSON.stringify(spec.subnet)} is not a valid IPv4 subnet (a.b.c.d/n with host bits zero)`);
    subnet = c;
  } else if (subnetEnv?.subnet !== undefined) {
    const c = parseCidr(subnetEnv.subnet);
    if (!c) throw invalid(`TWILL_SUBNET ${JSON.stringify(subnetEnv.subnet)} in the subnet file is not a valid IPv4 CIDR`);
    subnet = { network: c.network, prefix: c.prefix };
    if (c.address !== c.network) gateway = c.address;
  } else {
    throw new TwillError(ErrorCode.NoSubnet, 'no pod subnet: the network config has no ipam.subnet and the node agent has not written its subnet file yet');
  }
  if (subnet.prefix > 30) throw invalid(`subnet ${formatCidr(subnet)} is too small: at most /30`);
  const hosts = hostRange(subnet);
  const path = spec?.path ?? 'ipam.';
  if (spec?.gateway !== undefined) gateway = ip(spec.gateway, `${path}gateway`);
  gateway ??= hosts.first;
  if (!contains(subnet, gateway) || gateway < hosts.first || gateway > hosts.last) {
    throw invalid(`gateway is not a host address of subnet ${formatCidr(subnet)}`);
  }
  let first = hosts.first;
  let last = hosts.last;
  if (spec?.rangeStart !== undefined) first = ip(spec.rangeStart, `${path}rangeStart`);
  if (spec?.rangeEnd !== undefined) last = ip(spec.rangeEnd, `${path}rangeEnd`);
  if (first < hosts.first || first > hosts.last) throw invalid(`${path}rangeStart is outside the host range of ${formatCidr(subnet)}`);
  if (last < hosts.first || last > hosts.last) throw invalid(`${path}rangeEnd is outside the host range of ${formatCidr(subnet)}`);
  if (first > last) throw invalid(`${path}rangeStart is after ${path}rangeEnd`);
  return { subnet, first, last, gateway };
}

function ip6(text: string, what: string): bigint {
  const v = parseIpOf(6, text);
  if (v === undefined) throw invalid(`${what} ${JSON.stringify(text)} is not an IPv6 address`);
  return v.value;
}

function resolveV6(spec: RangeSpec, mode: Mode): Omit<PodNetwork6, 'routes'> {
  const what = spec.fromEnv ?? `${spec.path}subnet`;
  const text = spec.subnet ?? '';
  const p = parsePrefixOf(6, text, spec.fromEnv === undefined);
  if (!p) throw invalid(`${what} ${JSON.stringify(text)} is not a valid IPv6 subnet${spec.fromEnv === undefined ? ' (address/len with host bits zero)' : ''}`);
  const subnet: IpPrefix = { family: 6, network: p.network, prefix: p.prefix };
  const shown = formatPrefix(subnet);
  if (p.prefix < V6_PREFIX_MIN || p.prefix > V6_PREFIX_MAX) throw invalid(`${what} ${shown}: an IPv6 pod subnet is /${V6_PREFIX_MIN} to /${V6_PREFIX_MAX}`);
  if (isLinkLocal(p.address) || isV4Mapped(p.address) || p.network >> 120n === 0xffn) throw invalid(`${what} ${shown}: not a unicast subnet a pod can use (link-local, IPv4-mapped or multicast)`);
  const hosts = usableRange(subnet);
  let gateway = spec.fromEnv !== undefined && p.address.value !== p.network ? p.address.value : hosts.first.value;
  if (spec.gateway !== undefined) gateway = ip6(spec.gateway, `${spec.path}gateway`);
  const inHosts = (v: bigint): boolean => v >= hosts.first.value && v <= hosts.last.value;
  if (!inHosts(gateway)) throw invalid(`gateway ${formatIp({ family: 6, value: gateway })} is not a host address of subnet ${shown}`);
  let first = hosts.first.value;
  let last = hosts.last.value;
  if (spec.rangeStart !== undefined) first = ip6(spec.rangeStart, `${spec.path}rangeStart`);
  if (spec.rangeEnd !== undefined) last = ip6(spec.rangeEnd, `${spec.path}rangeEnd`);
  if (!inHosts(first)) throw invalid(`${spec.path}rangeStart is outside the host range of ${shown}`);
  if (!inHosts(last)) throw invalid(`${spec.path}rangeEnd is outside the host range of ${shown}`);
  if (first > last) throw invalid(`${spec.path}rangeStart is after ${spec.path}rangeEnd`);
  if (first === last && first === gateway) throw invalid(`${spec.path}: the range holds only the gateway`);
  const podGateway = mode === 'routed' ? (parseIpOf(6, ROUTED_GATEWAY6)?.value as bigint) : gateway;
  return { subnet, first, last, gateway, podGateway };
}

export function resolvePodNetwork({ conf, subnetEnv, underlayMtu }: ResolveInput): PodNetwork {
  const ipam = conf.ipam;
  const mode: Mode = conf.mode ?? 'bridge';
  let spec4: RangeSpec | undefined;
  let spec6: RangeSpec | undefined;
  if (ipam?.ranges !== undefined) {
    for (const k of ['subnet', 'rangeStart', 'rangeEnd', 'gateway'] as const) {
      if (ipam[k] !== undefined) throw invalid(`ipam.${k} and ipam.ranges exclude each other: put the range in ipam.ranges`);
    }
    const sets = rangeSets(ipam.ranges);
    if (!sets.v4) throw invalid('ipam.ranges has no IPv4 range set: IPv6-only pod networks are not supported yet (dual stack is)');
    spec4 = sets.v4;
    spec6 = sets.v6;
  } else {
    if (ipam) spec4 = rangeSpec(ipam, 'ipam.');
    if (subnetEnv?.ipv6Subnet !== undefined) spec6 = { subnet: subnetEnv.ipv6Subnet, path: 'TWILL_IPV6_SUBNET ', fromEnv: 'TWILL_IPV6_SUBNET in the subnet file' };
  }
  const { subnet, first, last, gateway } = resolveV4(spec4, subnetEnv);
  const v6 = spec6 ? resolveV6(spec6, mode) : undefined;

  const podGateway = mode === 'routed' ? (parseIPv4(ROUTED_GATEWAY) as number) : gateway;
  const routes: PodRoute[] = [];
  const routes6: PodRoute6[] = [];
  const confRoutes = ipam?.routes ?? [{ dst: '0.0.0.0/0' }, ...(v6 ? [{ dst: '::/0' }] : [])];
  for (const r of confRoutes) {
    const dst6 = r.dst.includes(':') ? parsePrefixOf(6, r.dst, true) : undefined;
    if (dst6) {
      if (!v6) throw invalid(`route ${r.dst} is IPv6 but the network has no IPv6 range`);
      routes6.push({ dst: { family: 6, network: dst6.network, prefix: dst6.prefix }, gw: r.gw === undefined || mode === 'routed' ? v6.podGateway : ip6(r.gw, 'route gw') });
      continue;
    }
    const dst = parseCidr(r.dst, true);
    if (!dst) throw invalid(`route destination ${JSON.stringify(r.dst)} is not a valid IPv4 or IPv6 subnet`);
    routes.push({ dst, gw: r.gw === undefined || mode === 'routed' ? podGateway : ip(r.gw, 'route gw') });
  }
  let clusterNetwork: Cidr | undefined;
  if (subnetEnv?.network !== undefined) {
    const c = parseCidr(subnetEnv.network, true);
    if (!c) throw invalid(`TWILL_NETWORK ${JSON.stringify(subnetEnv.network)} in the subnet file is not a valid IPv4 subnet`);
    clusterNetwork = c;
  }
  const mtu = conf.mtu ?? subnetEnv?.mtu ?? underlayMtu - VXLAN_OVERHEAD;
  const out: PodNetwork = {
    mode,
    bridge: conf.bridge ?? DEFAULT_BRIDGE,
    subnet,
    first,
    last,
    gateway,
    podGateway,
    routes,
    mtu,
    // TWILL_IPMASQ=true says the agent masquerades for the node (flannel's FLANNEL_IPMASQ): the plugin
    // adds its own rules only when its config asks (no second table, no nft run per ADD).
    ipMasq: conf.ipMasq ?? false,
    hairpin: conf.hairpinMode ?? false,
  };
  if (clusterNetwork) out.clusterNetwork = clusterNetwork;
  if (v6) {
    out.v6 = { ...v6, routes: routes6 };
    if (subnetEnv?.ipv6Network !== undefined) {
      const c = parsePrefixOf(6, subnetEnv.ipv6Network, true);
      if (!c) throw invalid(`TWILL_IPV6_NETWORK ${JSON.stringify(subnetEnv.ipv6Network)} in the subnet file is not a valid IPv6 subnet`);
      if (!prefixContains(c, { family: 6, value: v6.subnet.network })) throw invalid(`TWILL_IPV6_NETWORK ${formatPrefix(c)} does not contain the IPv6 pod subnet ${formatPrefix(v6.subnet)}`);
      out.v6.clusterNetwork = { family: 6, network: c.network, prefix: c.prefix };
    }
  }
  return out;
}
