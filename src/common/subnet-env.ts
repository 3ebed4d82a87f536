/**
 * The subnet file the node agent writes for the plugin (`/run/twill/subnet.env`), flannel's format
 * with Twill's key names. Pure parse/render. Values of Twill's keys that would reach the kernel are
 * checked here (code 7, naming the key); unknown keys and non-assignments are ignored.
 */
import { POD_MTU_MAX, POD_MTU_MIN } from './constants.js';
import { ErrorCode, TwillError } from './errors.js';

export interface SubnetEnv {
  /** Cluster pod network, e.g. 10.244.0.0/16. */
  network?: string;
  /** This node's subnet written as gateway/prefix, e.g. 10.244.1.1/24 (flannel's convention). */
  subnet?: string;
  mtu?: number;
  ipMasq?: boolean;
  /** Dual stack / IPv6: the cluster's IPv6 pod network, e.g. fd00:10:244::/56 (TWILL_IPV6_NETWORK). */
  ipv6Network?: string;
  /** This node's IPv6 subnet as gateway/prefix, e.g. fd00:10:244:1::1/64 (TWILL_IPV6_SUBNET). */
  ipv6Subnet?: string;
}

function invalid(key: string, value: string, expected: string): TwillError {
  return new TwillError(ErrorCode.InvalidConfig, `${key}=${JSON.stringify(value)}: expected ${expected}`);
}

function parseMtu(value: string): number {
  const n = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(n >= POD_MTU_MIN && n <= POD_MTU_MAX)) throw invalid('TWILL_MTU', value, `an integer from ${POD_MTU_MIN} to ${POD_MTU_MAX}`);
  return n;
}

function parseBool(key: string, value: string): boolean {
  if (value !== 'true' && value !== 'false') throw invalid(key, value, 'true or false');
  return value === 'true';
}

/** Throws TwillError code 7 for a bad TWILL_MTU or TWILL_IPMASQ. */
export function parseSubnetEnv(text: string): SubnetEnv {
  const out: SubnetEnv = {};
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    if (key === 'TWILL_NETWORK') out.network = value;
    else if (key === 'TWILL_SUBNET') out.subnet = value;
    else if (key === 'TWILL_MTU') out.mtu = parseMtu(value);
    else if (key === 'TWILL_IPMASQ') out.ipMasq = parseBool(key, value);
    else if (key === 'TWILL_IPV6_NETWORK') out.ipv6Network = value;
    else if (key === 'TWILL_IPV6_SUBNET') out.ipv6Subnet = value;
  }
  return out;
}

export function renderSubnetEnv(env: SubnetEnv): string {
  const lines: string[] = [];
  if (env.network !== undefined) lines.push(`TWILL_NETWORK=${env.network}`);
  if (env.subnet !== undefined) lines.push(`TWILL_SUBNET=${env.subnet}`);
  if (env.mtu !== undefined) lines.push(`TWILL_MTU=${env.mtu}`);
  if (env.ipMasq !== undefined) lines.push(`TWILL_IPMASQ=${env.ipMasq}`);
  if (env.ipv6Network !== undefined) lines.push(`TWILL_IPV6_NETWORK=${env.ipv6Network}`);
  if (env.ipv6Subnet !== undefined) lines.push(`TWILL_IPV6_SUBNET=${env.ipv6Subnet}`);
  return `${lines.join('\n')}\n`;
}
