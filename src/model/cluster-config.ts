/**
 * The cluster network configuration, stored as JSON at CONFIG_KEY in flannel's format
 * (`net-conf.json`), so an existing flannel config works unchanged:
 *
 *   {"Network": "10.244.0.0/16", "SubnetLen": 24, "SubnetMin"?: "10.244.1.0", "SubnetMax"?: "10.244.255.0",
 *    "Backend": {"Type": "vxlan", "VNI": 1, "Port": 8472, "DirectRouting": false, "MTU"?: 1450}}
 *   ... "Backend": {"Type": "host-gw"}
 *
 * Defaults follow flannel: SubnetLen 24 when Network is /22 or larger, else Network prefix + 2
 * (four subnets); SubnetMin skips the first subnet (its network address would equal the cluster
 * Network's, which confuses routing and tools); SubnetMax is the last subnet; Backend defaults to
 * vxlan (flannel defaults to udp, which Twill does not implement). Unknown fields are errors (a typo
 * must not silently become a default).
 *
 * Dual stack (flannel's keys): `EnableIPv6: true` with `IPv6Network` (e.g. fd00:10:244::/56),
 * `IPv6SubnetLen` (default 64, at most 126), `IPv6SubnetMin`/`IPv6SubnetMax` (defaults as for IPv4:
 * all subnets but the first). `EnableIPv4` defaults to true; `EnableIPv4: false` is an IPv6-only
 * cluster (then `Network` is not required): it is validated in full, then refused with a "not yet"
 * error, because the node agent and the backends still need an IPv4 subnet (ClusterConfig's IPv4
 * fields are required). Rendered back canonically: the IPv6 keys only when IPv6 is enabled, the
 * bounds only when they differ from the defaults.
 */
import * as z from 'zod';
import { DEFAULT_VXLAN_PORT, DEFAULT_VXLAN_VNI } from '../common/constants.js';
import { formatIp, formatPrefix, isV4Mapped, networkOf, parseIp, parsePrefix, prefixContains, prefixMask, prefixSize, prefixesOverlap, type IpPrefix } from '../net/ip.js';
import { contains, formatCidr, formatIPv4, maskOf, parseCidr, parseIPv4, size, type Cidr } from '../net/ipv4.js';
import { formatIssues } from './zod-issues.js';

export const BACKEND_TYPES = ['vxlan', 'host-gw'] as const;
export type BackendType = (typeof BACKEND_TYPES)[number];

export const VNI_MAX = 16777215;
export const MTU_MIN = 576;
export const MTU_MAX = 65535;
/** Largest subnet prefix a node may get: a /30 still holds a gateway and one pod. */
export const SUBNET_LEN_MAX = 30;
/** Largest IPv6 subnet prefix a node may get (a /126 holds a gateway and a few pods). */
export const IPV6_SUBNET_LEN_MAX = 126;
export const DEFAULT_IPV6_SUBNET_LEN = 64;

/** The IPv6 half of a dual-stack config. */
export interface Ipv6Layout {
  /** The cluster IPv6 pod network, host bits zero. */
  readonly network: IpPrefix;
  readonly subnetLen: number;
  /** Network address of the lowest / highest IPv6 subnet handed out (aligned to subnetLen). */
  readonly subnetMin: bigint;
  readonly subnetMax: bigint;
}

export interface VxlanBackendConfig {
  readonly type: 'vxlan';
  readonly vni: number;
  readonly port: number;
  /** flannel's DirectRouting: peers on the same L2 segment get plain routes, others vxlan. */
  readonly directRouting: boolean;
  /** Explicit MTU of the vxlan device; absent = underlay MTU - VXLAN_OVERHEAD. */
  readonly mtu?: number;
}

export interface HostGwBackendConfig {
  readonly type: 'host-gw';
}

export type BackendConfig = VxlanBackendConfig | HostGwBackendConfig;

export interface ClusterConfig {
  /** The cluster pod network, host bits zero. */
  readonly network: Cidr;
  /** Prefix length of each node's subnet. */
  readonly subnetLen: number;
  /** Network address of the lowest subnet handed out (aligned to subnetLen). */
  readonly subnetMin: number;
  /** Network address of the highest subnet handed out (aligned to subnetLen). */
  readonly subnetMax: number;
  /** Present when EnableIPv6: each node also leases one IPv6 subnet. */
  readonly ipv6?: Ipv6Layout;
  readonly backend: BackendConfig;
}

export type ClusterConfigResult = { ok: true; config: ClusterConfig } | { ok: false; errors: string[] };

const intIn = (min: number, max: number) => {
  const error = (iss: { input?: unknown }): string => `${String(iss.input)} must be between ${min} and ${max}`;
  return z.int().min(min, { error }).max(max, { error });
};

const RawConfig = z.strictObject({
  Network: z.string().optional(),
  SubnetLen: z.int().optional(),
  SubnetMin: z.string().optional(),
  SubnetMax: z.string().optional(),
  EnableIPv4: z.boolean().optional(),
  EnableIPv6: z.boolean().optional(),
  IPv6Network: z.string().optional(),
  IPv6SubnetLen: z.int().optional(),
  IPv6SubnetMin: z.string().optional(),
  IPv6SubnetMax: z.string().optional(),
  Backend: z.unknown().optional(),
});

const VxlanRaw = z.strictObject({
  Type: z.literal('vxlan'),
  VNI: intIn(1, VNI_MAX).optional(),
  Port: intIn(1, 65535).optional(),
  DirectRouting: z.boolean().optional(),
  MTU: intIn(MTU_MIN, MTU_MAX).optional(),
});

const HostGwRaw = z.strictObject({ Type: z.literal('host-gw') });

/** Parses JSON text (the value at CONFIG_KEY, or a file given to `twill config set`). */
export function parseClusterConfig(text: string): ClusterConfigResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, errors: [`config is not valid JSON: ${(e as Error).message}`] };
  }
  return validateClusterConfig(value);
}

/** Validates an already decoded JSON value; every problem is reported, each naming its field. */
export function validateClusterConfig(value: unknown): ClusterConfigResult {
  const raw = RawConfig.safeParse(value, { reportInput: true });
  const backend = parseBackend(isObject(value) ? value['Backend'] : undefined);
  if (!raw.success) return { ok: false, errors: [...formatIssues(raw.error.issues), ...backend.errors] };
  const errors = [...backend.errors];
  const r = raw.data;
  const v4 = r.EnableIPv4 !== false;
  const v6 = r.EnableIPv6 === true;
  if (!v4 && !v6) errors.push('EnableIPv4: false needs EnableIPv6: true (no address family enabled)');
  let layout: Parsed<Layout> = { errors: [] };
  if (v4) {
    if (r.Network === undefined) errors.push('Network: is required (or EnableIPv4: false for an IPv6-only cluster)');
    else layout = parseLayout({ ...r, Network: r.Network });
  } else {
    for (const k of ['Network', 'SubnetLen', 'SubnetMin', 'SubnetMax'] as const) if (r[k] !== undefined) errors.push(`${k}: set while EnableIPv4 is false`);
  }
  errors.push(...layout.errors);
  let ipv6: Parsed<Ipv6Layout> = { errors: [] };
  if (v6) ipv6 = parseIpv6Layout(r);
  else for (const k of ['IPv6Network', 'IPv6SubnetLen', 'IPv6SubnetMin', 'IPv6SubnetMax'] as const) if (r[k] !== undefined) errors.push(`${k}: set without EnableIPv6: true`);
  errors.push(...ipv6.errors);
  if (errors.length === 0 && !v4) errors.push('EnableIPv4: false (an IPv6-only cluster) is not supported yet: the agent needs an IPv4 subnet; use dual stack (EnableIPv6: true with Network)');
  if (errors.length > 0 || layout.value === undefined || backend.value === undefined) return { ok: false, errors };
  return { ok: true, config: { ...layout.value, ...(ipv6.value ? { ipv6: ipv6.value } : {}), backend: backend.value } };
}

/** Canonical JSON for the datastore; SubnetMin/SubnetMax only when they differ from the defaults. */
export function renderClusterConfig(config: ClusterConfig, indent?: number): string {
  const defaults = defaultSubnetRange(config.network, config.subnetLen);
  const out: Record<string, unknown> = { Network: formatCidr(config.network), SubnetLen: config.subnetLen };
  if (config.subnetMin !== defaults.min) out['SubnetMin'] = formatIPv4(config.subnetMin);
  if (config.subnetMax !== defaults.max) out['SubnetMax'] = formatIPv4(config.subnetMax);
  const v6 = config.ipv6;
  if (v6) {
    const d6 = defaultIpv6SubnetRange(v6.network, v6.subnetLen);
    out['EnableIPv6'] = true;
    out['IPv6Network'] = formatPrefix(v6.network);
    out['IPv6SubnetLen'] = v6.subnetLen;
    if (v6.subnetMin !== d6.min) out['IPv6SubnetMin'] = formatIp({ family: 6, value: v6.subnetMin });
    if (v6.subnetMax !== d6.max) out['IPv6SubnetMax'] = formatIp({ family: 6, value: v6.subnetMax });
  }
  const b = config.backend;
  out['Backend'] =
    b.type === 'host-gw'
      ? { Type: 'host-gw' }
      : {
          Type: 'vxlan',
          VNI: b.vni,
          Port: b.port,
          DirectRouting: b.directRouting,
          ...(b.mtu === undefined ? {} : { MTU: b.mtu }),
        };
  return JSON.stringify(out, null, indent);
}

/** flannel's default SubnetLen for a network prefix: /24, or four subnets when the network is smaller than /22. */
export function defaultSubnetLen(networkPrefix: number): number {
  return networkPrefix <= 22 ? 24 : networkPrefix + 2;
}

/** Default [SubnetMin, SubnetMax]: all subnets but the first (flannel). */
export function defaultSubnetRange(network: Cidr, subnetLen: number): { min: number; max: number } {
  const step = 2 ** (32 - subnetLen);
  return { min: network.network + step, max: network.network + size(network) - step };
}

/** How many subnets [subnetMin, subnetMax] holds. */
export function subnetCount(config: ClusterConfig): number {
  return (config.subnetMax - config.subnetMin) / 2 ** (32 - config.subnetLen) + 1;
}

/** Default IPv6 [SubnetMin, SubnetMax]: all subnets but the first (as flannel). */
export function defaultIpv6SubnetRange(network: IpPrefix, subnetLen: number): { min: bigint; max: bigint } {
  const step = 1n << BigInt(128 - subnetLen);
  return { min: network.network + step, max: network.network + prefixSize(network) - step };
}

/** How many IPv6 subnets [IPv6SubnetMin, IPv6SubnetMax] holds. */
export function ipv6SubnetCount(v6: Ipv6Layout): bigint {
  return (v6.subnetMax - v6.subnetMin) / (1n << BigInt(128 - v6.subnetLen)) + 1n;
}

function parseIpv6Layout(r: z.infer<typeof RawConfig>): Parsed<Ipv6Layout> {
  if (r.IPv6Network === undefined) return { errors: ['IPv6Network: is required with EnableIPv6: true (e.g. fd00:10:244::/56)'] };
  const p = parsePrefix(r.IPv6Network);
  if (p === undefined || p.family !== 6) return { errors: [`IPv6Network: '${r.IPv6Network}' is not an IPv6 CIDR (e.g. fd00:10:244::/56)`] };
  const network: IpPrefix = { family: 6, network: p.network, prefix: p.prefix };
  if (p.network !== p.address.value) return { errors: [`IPv6Network: ${r.IPv6Network} has host bits set (did you mean ${formatPrefix(network)}?)`] };
  if (isV4Mapped(networkOf(network)) || prefixesOverlap(network, { family: 6, network: 0xffffn << 32n, prefix: 96 })) {
    return { errors: [`IPv6Network: ${r.IPv6Network} overlaps the IPv4-mapped range ::ffff:0:0/96 (use a ULA such as fd00:10:244::/56)`] };
  }
  const subnetLen = r.IPv6SubnetLen ?? DEFAULT_IPV6_SUBNET_LEN;
  if (subnetLen <= network.prefix || subnetLen > IPV6_SUBNET_LEN_MAX) {
    const why =
      r.IPv6SubnetLen === undefined
        ? `IPv6Network: /${network.prefix} is too small for the default IPv6SubnetLen (${subnetLen}); use /63 or larger or set IPv6SubnetLen`
        : `IPv6SubnetLen: ${subnetLen} must be between IPv6Network prefix+1 (${network.prefix + 1}) and ${IPV6_SUBNET_LEN_MAX}`;
    return { errors: [why] };
  }
  const defaults = defaultIpv6SubnetRange(network, subnetLen);
  const errors: string[] = [];
  const bound = (field: 'IPv6SubnetMin' | 'IPv6SubnetMax', text: string | undefined, fallback: bigint): bigint | undefined => {
    if (text === undefined) return fallback;
    const a = parseIp(text);
    if (a === undefined || a.family !== 6) errors.push(`${field}: '${text}' is not an IPv6 address`);
    else if (!prefixContains(network, a)) errors.push(`${field}: ${text} is not inside IPv6Network ${formatPrefix(network)}`);
    else if ((a.value & prefixMask(6, subnetLen)) !== a.value) errors.push(`${field}: ${text} is not on a /${subnetLen} boundary (IPv6SubnetLen)`);
    else return a.value;
    return undefined;
  };
  const subnetMin = bound('IPv6SubnetMin', r.IPv6SubnetMin, defaults.min);
  const subnetMax = bound('IPv6SubnetMax', r.IPv6SubnetMax, defaults.max);
  if (subnetMin === undefined || subnetMax === undefined) return { errors };
  if (subnetMin > subnetMax) {
    return { errors: [`IPv6SubnetMin: ${formatIp({ family: 6, value: subnetMin })} is above IPv6SubnetMax ${formatIp({ family: 6, value: subnetMax })}`] };
  }
  return { value: { network, subnetLen, subnetMin, subnetMax }, errors };
}

interface Parsed<T> {
  value?: T;
  errors: string[];
}

type Layout = Omit<ClusterConfig, 'backend' | 'ipv6'>;

function parseLayout(r: z.infer<typeof RawConfig> & { Network: string }): Parsed<Layout> {
  const cidr = parseCidr(r.Network);
  if (cidr === undefined) return { errors: [`Network: '${r.Network}' is not an IPv4 CIDR (a.b.c.d/n)`] };
  if (cidr.network !== cidr.address) {
    return { errors: [`Network: ${r.Network} has host bits set (did you mean ${formatCidr(cidr)}?)`] };
  }
  const network: Cidr = { network: cidr.network, prefix: cidr.prefix };
  const subnetLen = r.SubnetLen ?? defaultSubnetLen(network.prefix);
  if (subnetLen <= network.prefix || subnetLen > SUBNET_LEN_MAX) {
    const why =
      r.SubnetLen === undefined
        ? `Network: /${network.prefix} is too small for the default SubnetLen (${subnetLen}); use /28 or larger or set SubnetLen`
        : `SubnetLen: ${subnetLen} must be between Network prefix+1 (${network.prefix + 1}) and ${SUBNET_LEN_MAX}`;
    return { errors: [why] };
  }
  const defaults = defaultSubnetRange(network, subnetLen);
  const errors: string[] = [];
  const bound = (field: 'SubnetMin' | 'SubnetMax', text: string | undefined, fallback: number): number | undefined => {
    if (text === undefined) return fallback;
    const ip = parseIPv4(text);
    if (ip === undefined) errors.push(`${field}: '${text}' is not an IPv4 address`);
    else if (!contains(network, ip)) errors.push(`${field}: ${text} is not inside Network ${formatCidr(network)}`);
    else if (((ip & maskOf(subnetLen)) >>> 0) !== ip) {
      errors.push(`${field}: ${text} is not on a /${subnetLen} boundary (SubnetLen)`);
    } else return ip;
    return undefined;
  };
  const subnetMin = bound('SubnetMin', r.SubnetMin, defaults.min);
  const subnetMax = bound('SubnetMax', r.SubnetMax, defaults.max);
  if (subnetMin === undefined || subnetMax === undefined) return { errors };
  if (subnetMin > subnetMax) {
    return { errors: [`SubnetMin: ${formatIPv4(subnetMin)} is above SubnetMax ${formatIPv4(subnetMax)}`] };
  }
  return { value: { network, subnetLen, subnetMin, subnetMax }, errors };
}

function parseBackend(value: unknown): Parsed<BackendConfig> {
  if (value === undefined) {
    return { value: { type: 'vxlan', vni: DEFAULT_VXLAN_VNI, port: DEFAULT_VXLAN_PORT, directRouting: false }, errors: [] };
  }
  if (!isObject(value)) return { errors: ['Backend: must be an object like {"Type": "vxlan"}'] };
  const type = value['Type'];
  if (type === undefined) return { errors: [`Backend.Type: is required (${BACKEND_TYPES.join(', ')})`] };
  if (type === 'host-gw') {
    const r = HostGwRaw.safeParse(value, { reportInput: true });
    return r.success ? { value: { type: 'host-gw' }, errors: [] } : { errors: formatIssues(r.error.issues, ['Backend']) };
  }
  if (type === 'vxlan') {
    const r = VxlanRaw.safeParse(value, { reportInput: true });
    if (!r.success) return { errors: formatIssues(r.error.issues, ['Backend']) };
    const d = r.data;
    const vxlan: VxlanBackendConfig = {
      type: 'vxlan',
      vni: d.VNI ?? DEFAULT_VXLAN_VNI,
      port: d.Port ?? DEFAULT_VXLAN_PORT,
      directRouting: d.DirectRouting ?? false,
      ...(d.MTU === undefined ? {} : { mtu: d.MTU }),
    };
    return { value: vxlan, errors: [] };
  }
  const shown = typeof type === 'string' ? `'${type}'` : JSON.stringify(type);
  return { errors: [`Backend.Type: unknown backend ${shown} (${BACKEND_TYPES.join(', ')})`] };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
