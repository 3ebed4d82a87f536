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
 * must not silently become a default); `EnableIPv4: true` and `EnableIPv6: false` are accepted for
 * flannel compatibility and dropped.
 */
import * as z from 'zod';
import { DEFAULT_VXLAN_PORT, DEFAULT_VXLAN_VNI } from '../common/constants.js';
import { contains, formatCidr, formatIPv4, maskOf, parseCidr, parseIPv4, size, type Cidr } from '../net/ipv4.js';
import { formatIssues } from './zod-issues.js';

export const BACKEND_TYPES = ['vxlan', 'host-gw'] as const;
export type BackendType = (typeof BACKEND_TYPES)[number];

export const VNI_MAX = 16777215;
export const MTU_MIN = 576;
export const MTU_MAX = 65535;
/** Largest subnet prefix a node may get: a /30 still holds a gateway and one pod. */
export const SUBNET_LEN_MAX = 30;

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
  readonly backend: BackendConfig;
}

export type ClusterConfigResult = { ok: true; config: ClusterConfig } | { ok: false; errors: string[] };

const intIn = (min: number, max: number) => {
  const error = (iss: { input?: unknown }): string => `${String(iss.input)} must be between ${min} and ${max}`;
  return z.int().min(min, { error }).max(max, { error });
};

const RawConfig = z.strictObject({
  Network: z.string(),
  SubnetLen: z.int().optional(),
  SubnetMin: z.string().optional(),
  SubnetMax: z.string().optional(),
  EnableIPv4: z.boolean().optional(),
  EnableIPv6: z.boolean().optional(),
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
  if (r.EnableIPv4 === false) errors.push('EnableIPv4: false is not supported (Twill is IPv4 only)');
  if (r.EnableIPv6 === true) errors.push('EnableIPv6: true is not supported (Twill is IPv4 only)');
  const layout = parseLayout(r);
  errors.push(...layout.errors);
  if (errors.length > 0 || layout.value === undefined || backend.value === undefined) return { ok: false, errors };
  return { ok: true, config: { ...layout.value, backend: backend.value } };
}

/** Canonical JSON for the datastore; SubnetMin/SubnetMax only when they differ from the defaults. */
export function renderClusterConfig(config: ClusterConfig, indent?: number): string {
  const defaults = defaultSubnetRange(config.network, config.subnetLen);
  const out: Record<string, unknown> = { Network: formatCidr(config.network), SubnetLen: config.subnetLen };
  if (config.subnetMin !== defaults.min) out['SubnetMin'] = formatIPv4(config.subnetMin);
  if (config.subnetMax !== defaults.max) out['SubnetMax'] = formatIPv4(config.subnetMax);
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

interface Parsed<T> {
  value?: T;
  errors: string[];
}

type Layout = Omit<ClusterConfig, 'backend'>;

function parseLayout(r: z.infer<typeof RawConfig>): Parsed<Layout> {
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
