/**
 * CNI results: one internal shape, converted to the wire format of the requested version.
 * 0.3.x/0.4.0 carry `ips[].version` ("4" or "6", from the address); 1.0.0 drops it; 1.1.0 adds
 * `interfaces[].mtu`. A dual-stack result is two `ips[]` entries (IPv4 first) and both default routes.
 */
import type { CniVersion } from '../common/constants.js';

export interface ResultInterface {
  name: string;
  mac: string;
  sandbox?: string;
  mtu?: number;
}
export interface ResultIp {
  /** CIDR notation: pod address with its prefix. */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}
export interface ResultRoute {
  dst: string;
  gw?: string;
}
export interface ResultDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}
export interface CniResult {
  cniVersion: string;
  interfaces?: ResultInterface[];
  ips?: ResultIp[];
  routes?: ResultRoute[];
  dns?: ResultDns;
}

export function versionAtLeast(version: string, min: string): boolean {
  const a = version.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}

/** Renders `result` as the JSON object of `version`. */
export function toWire(result: CniResult, version: CniVersion): Record<string, unknown> {
  const legacy = !versionAtLeast(version, '1.0.0');
  const withMtu = versionAtLeast(version, '1.1.0');
  const out: Record<string, unknown> = { cniVersion: version };
  if (result.interfaces) {
    out.interfaces = result.interfaces.map((i) => {
      const o: Record<string, unknown> = { name: i.name, mac: i.mac };
      if (i.sandbox !== undefined) o.sandbox = i.sandbox;
      if (withMtu && i.mtu !== undefined) o.mtu = i.mtu;
      return o;
    });
  }
  if (result.ips) {
    out.ips = result.ips.map((ip) => {
      const o: Record<string, unknown> = {};
      if (legacy) o.version = ip.address.includes(':') ? '6' : '4';
      o.address = ip.address;
      if (ip.gateway !== undefined) o.gateway = ip.gateway;
      if (ip.interface !== undefined) o.interface = ip.interface;
      return o;
    });
  }
  if (result.routes) out.routes = result.routes.map((r) => (r.gw === undefined ? { dst: r.dst } : { dst: r.dst, gw: r.gw }));
  out.dns = result.dns ?? {};
  return out;
}

/** Reads a result of any supported version (e.g. a `prevResult`) into the internal shape. */
export function fromWire(value: unknown): CniResult | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const result: CniResult = { cniVersion: typeof v.cniVersion === 'string' ? v.cniVersion : '' };
  if (Array.isArray(v.interfaces)) {
    result.interfaces = [];
    for (const raw of v.interfaces as unknown[]) {
      if (typeof raw !== 'object' || raw === null) return undefined;
      const i = raw as Record<string, unknown>;
      if (typeof i.name !== 'string') return undefined;
      const item: ResultInterface = { name: i.name, mac: typeof i.mac === 'string' ? i.mac : '' };
      if (typeof i.sandbox === 'string') item.sandbox = i.sandbox;
      if (typeof i.mtu === 'number') item.mtu = i.mtu;
      result.interfaces.push(item);
    }
  }
  if (Array.isArray(v.ips)) {
    result.ips = [];
    for (const raw of v.ips as unknown[]) {
      if (typeof raw !== 'object' || raw === null) return undefined;
      const i = raw as Record<string, unknown>;
      if (typeof i.address !== 'string') return undefined;
      const item: ResultIp = { address: i.address };
      if (typeof i.gateway === 'string') item.gateway = i.gateway;
      if (typeof i.interface === 'number') item.interface = i.interface;
      result.ips.push(item);
    }
  }
  if (Array.isArray(v.routes)) {
    result.routes = [];
    for (const raw of v.routes as unknown[]) {
      if (typeof raw !== 'object' || raw === null) return undefined;
      const r = raw as Record<string, unknown>;
      if (typeof r.dst !== 'string') return undefined;
      result.routes.push(typeof r.gw === 'string' ? { dst: r.dst, gw: r.gw } : { dst: r.dst });
    }
  }
  if (typeof v.dns === 'object' && v.dns !== null) result.dns = v.dns as ResultDns;
  return result;
}
