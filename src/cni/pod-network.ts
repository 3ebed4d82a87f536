/**
 * Resolves what a pod on this node gets (subnet, range, gateway, routes, MTU, masquerade) from
 * the network config and, where the config leaves it out, the agent's subnet file. Pure.
 */
import { DEFAULT_BRIDGE, DEFAULT_IPAM_DIR, ROUTED_GATEWAY, VXLAN_OVERHEAD } from '../common/constants.js';
import { ErrorCode, TwillError } from '../common/errors.js';
import type { SubnetEnv } from '../common/subnet-env.js';
import { contains, formatCidr, hostRange, parseCidr, parseIPv4, type Cidr } from '../net/ipv4.js';
import type { NetConf } from './config.js';

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

export function resolvePodNetwork({ conf, subnetEnv, underlayMtu }: ResolveInput): PodNetwork {
  const ipam = conf.ipam;
  let subnet: Cidr;
  let gateway: number | undefined;
  if (ipam?.subnet !== undefined) {
    const c = parseCidr(ipam.subnet, true);
    if (!c) throw invalid(`ipam.subnet ${JSON.stringify(ipam.subnet)} is not a valid IPv4 subnet (a.b.c.d/n with host bits zero)`);
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
  if (ipam?.gateway !== undefined) gateway = ip(ipam.gateway, 'ipam.gateway');
  gateway ??= hosts.first;
  if (!contains(subnet, gateway) || gateway < hosts.first || gateway > hosts.last) {
    throw invalid(`gateway is not a host address of subnet ${formatCidr(subnet)}`);
  }
  let first = hosts.first;
  let last = hosts.last;
  if (ipam?.rangeStart !== undefined) first = ip(ipam.rangeStart, 'ipam.rangeStart');
  if (ipam?.rangeEnd !== undefined) last = ip(ipam.rangeEnd, 'ipam.rangeEnd');
  if (first < hosts.first || first > hosts.last) throw invalid(`ipam.rangeStart is outside the host range of ${formatCidr(subnet)}`);
  if (last < hosts.first || last > hosts.last) throw invalid(`ipam.rangeEnd is outside the host range of ${formatCidr(subnet)}`);
  if (first > last) throw invalid('ipam.rangeStart is after ipam.rangeEnd');

  const mode: Mode = conf.mode ?? 'bridge';
  const podGateway = mode === 'routed' ? (parseIPv4(ROUTED_GATEWAY) as number) : gateway;
  const routes: PodRoute[] = (ipam?.routes ?? [{ dst: '0.0.0.0/0' }]).map((r) => {
    const dst = parseCidr(r.dst, true);
    if (!dst) throw invalid(`route destination ${JSON.stringify(r.dst)} is not a valid IPv4 subnet`);
    return { dst, gw: r.gw === undefined || mode === 'routed' ? podGateway : ip(r.gw, 'route gw') };
  });
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
  return out;
}
