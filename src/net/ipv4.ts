/**
 * The IPv4 view of src/net/ip.ts: IPv4 addresses as unsigned 32-bit numbers, CIDRs as
 * `{ network, prefix }`, for the IPv4-only code that predates dual stack. No I/O.
 *
 * Text goes through ip.ts (one grammar, one formatter: `parseIPv4Number`, `formatIPv4Number`,
 * `parsePrefixOf`). The arithmetic below (mask, size, containment, overlap, host range) stays on
 * numbers because it sits in hot loops (lease subnet search, IPAM candidates) where a bigint round
 * trip costs 10-20x; ipv4-view.test.ts proves each one equal to its ip.ts counterpart.
 * Parsers return `undefined` on bad input; callers turn that into their own typed error.
 */
import { formatIPv4Number, nthSubprefix, parseIPv4Number, parsePrefixOf, type Ip } from './ip.js';

export interface Cidr {
  /** Network address (host bits zero). */
  readonly network: number;
  readonly prefix: number;
}

export function parseIPv4(text: string): number | undefined {
  return parseIPv4Number(text);
}

export function formatIPv4(value: number): string {
  return formatIPv4Number(value);
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses `a.b.c.d/n`. With `strict`, host bits must be zero. Returns the address too. */
export function parseCidr(text: string, strict = false): (Cidr & { address: number }) | undefined {
  const p = parsePrefixOf(4, text, strict);
  return p === undefined ? undefined : { network: Number(p.network), prefix: p.prefix, address: Number(p.address.value) };
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.network)}/${c.prefix}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function broadcast(c: Cidr): number {
  return (c.network + size(c) - 1) >>> 0;
}

export function contains(c: Cidr, ip: number): boolean {
  return ((ip & maskOf(c.prefix)) >>> 0) === c.network;
}

/** True when `inner` lies entirely inside `outer`. */
export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && contains(outer, inner.network);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a, b.network) || contains(b, a.network);
}

/** True when `ip` has no host bits under a /`prefix` (it is the network address of its /prefix). */
export function isNetworkAddress(ip: number, prefix: number): boolean {
  return ((ip & maskOf(prefix)) >>> 0) === ip >>> 0;
}

/** The `index`-th /`len` inside `c` (0-based), or undefined when out of range. */
export function nthSubnet(c: Cidr, len: number, index: number): Cidr | undefined {
  if (!Number.isInteger(index) || !Number.isInteger(len)) return undefined;
  const s = nthSubprefix({ family: 4, network: BigInt(c.network), prefix: c.prefix }, len, BigInt(index));
  return s === undefined ? undefined : { network: Number(s.network), prefix: s.prefix };
}

/**
 * The usable host range of a subnet: skips the network and broadcast addresses where they exist
 * (/31 and /32 have none, RFC 3021).
 */
export function hostRange(c: Cidr): { first: number; last: number } {
  if (c.prefix >= 31) return { first: c.network, last: broadcast(c) };
  return { first: c.network + 1, last: broadcast(c) - 1 };
}

/** Kubernetes-style MAC for a pod address: 0a:58 followed by the four octets. */
export function macForIPv4(ip: number, firstOctet = 0x0a): string {
  const bytes = [firstOctet, 0x58, (ip >>> 24) & 255, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/**
 * Pod MAC for an address of either family: IPv4 exactly as macForIPv4 (running pods keep theirs);
 * IPv6 (a v6-only pod) `firstOctet:58` + the low 32 bits of the address, unique among the pods of one
 * node subnet (a /64 hands out far fewer than 2^32 addresses), so unique on the node's bridge.
 */
export function macForIp(a: Ip, firstOctet = 0x0a): string {
  return macForIPv4(Number(a.value & 0xffffffffn), firstOctet);
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
export function isMac(text: string): boolean {
  return MAC.test(text);
}
