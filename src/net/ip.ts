/**
 * Addresses and prefixes of both families, one type: `{ family, value: bigint }`. Pure, no I/O.
 *
 * Why bigint and not a byte array or a library: IPv6 needs 128-bit arithmetic (containment, range
 * math, subnet iteration) and bigint gives it exactly, with ordinary comparison and the same code
 * for both families; a value is just a number plus its family. Node's own `net` module is the
 * reference the property tests check us against (`net.isIP`, `net.BlockList`): it validates and
 * matches but has no math, no canonical formatting and no iteration, so it cannot replace this.
 *
 * Formatting is canonical: IPv4 dotted quad, IPv6 as RFC 5952 (lower case, no leading zeros, the
 * longest run of two or more zero groups compressed, the first such run on a tie), IPv4-mapped
 * IPv6 (`::ffff:0:0/96`) in the mixed notation RFC 5952 §5 recommends (`::ffff:192.0.2.1`).
 * An IPv4-mapped IPv6 address is an IPv6 address here: it never compares equal to, nor is it
 * contained in, an IPv4 prefix; `unmapV4` converts explicitly where a caller wants that.
 *
 * Parsers return `undefined` on bad input; callers turn that into their own typed error. Zone
 * identifiers (`fe80::1%eth0`) are not addresses and are rejected.
 */

export type Family = 4 | 6;

export interface Ip {
  readonly family: Family;
  readonly value: bigint;
}

export interface IpPrefix {
  readonly family: Family;
  /** Network address (host bits zero). */
  readonly network: bigint;
  readonly prefix: number;
}

export const familyBits = (family: Family): number => (family === 4 ? 32 : 128);
const maxValue = (family: Family): bigint => (1n << BigInt(familyBits(family))) - 1n;

export function ip(family: Family, value: bigint): Ip {
  if (value < 0n || value > maxValue(family)) throw new RangeError(`${value} is not an IPv${family} address value`);
  return { family, value };
}

/** An IPv4 address from the unsigned 32-bit number the IPv4-only code uses. */
export function fromV4Number(n: number): Ip {
  return ip(4, BigInt(n >>> 0));
}

/** The unsigned 32-bit number of an IPv4 address. */
export function toV4Number(a: Ip): number {
  if (a.family !== 4) throw new RangeError('not an IPv4 address');
  return Number(a.value);
}

/**
 * The IPv4 grammar, on numbers (the fast path the IPv4-only code in ipv4.ts shares): exactly four
 * decimal octets 0-255 joined by dots, no leading zeros (inet_pton), nothing else. Unsigned result.
 */
export function parseIPv4Number(text: string): number | undefined {
  const n = text.length;
  if (n < 7 || n > 15) return undefined;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let k = 0; k < n; k++) {
    const c = text.charCodeAt(k);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return undefined;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) return undefined; // leading zero
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return undefined;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return value * 256 + octet;
}

/** Dotted quad of the low 32 bits of `n` (the fast path ipv4.ts shares). */
export function formatIPv4Number(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const HEXTET = /^[0-9a-fA-F]{1,4}$/;

function parseV4Value(text: string): bigint | undefined {
  const v = parseIPv4Number(text);
  return v === undefined ? undefined : BigInt(v);
}

function parseV6Value(text: string): bigint | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const dbl = text.indexOf('::');
  if (dbl >= 0 && text.indexOf('::', dbl + 1) >= 0) return undefined;
  const groupsOf = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (const [k, p] of parts.entries()) {
      if (k === parts.length - 1 && p.includes('.')) {
        const v4 = parseV4Value(p);
        if (v4 === undefined) return undefined;
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else if (HEXTET.test(p)) out.push(parseInt(p, 16));
      else return undefined;
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const head = groupsOf(text.slice(0, dbl));
    const tail = groupsOf(text.slice(dbl + 2));
    if (!head || !tail) return undefined;
    // An embedded IPv4 part may only end the address.
    if (text.slice(0, dbl).includes('.')) return undefined;
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    const all = groupsOf(text);
    if (!all || all.length !== 8) return undefined;
    groups = all;
  }
  return groups.reduce((v, g) => (v << 16n) | BigInt(g), 0n);
}

/** Parses an IPv4 dotted quad or any RFC 4291 text form of an IPv6 address. */
export function parseIp(text: string): Ip | undefined {
  if (text.includes(':')) {
    const v = parseV6Value(text);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  const v = parseV4Value(text);
  return v === undefined ? undefined : { family: 4, value: v };
}

/** Parses an address of one family only. */
export function parseIpOf(family: Family, text: string): Ip | undefined {
  const a = parseIp(text);
  return a?.family === family ? a : undefined;
}

function formatV4Value(v: bigint): string {
  return formatIPv4Number(Number(v));
}

/** Canonical text: dotted quad, or RFC 5952 (with `::ffff:a.b.c.d` for IPv4-mapped). */
export function formatIp(a: Ip): string {
  if (a.family === 4) return formatV4Value(a.value);
  if (a.value >> 32n === 0xffffn) return `::ffff:${formatV4Value(a.value & 0xffffffffn)}`;
  const groups: number[] = [];
  for (let k = 7; k >= 0; k--) groups.push(Number((a.value >> BigInt(k * 16)) & 0xffffn));
  // The longest run of two or more zero groups; the first one on a tie (RFC 5952 §4.2).
  let bestAt = -1;
  let bestLen = 1;
  for (let k = 0; k < 8; ) {
    if (groups[k] !== 0) {
      k++;
      continue;
    }
    let end = k;
    while (end < 8 && groups[end] === 0) end++;
    if (end - k > bestLen) [bestAt, bestLen] = [k, end - k];
    k = end;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestAt < 0) return hex(groups);
  return `${hex(groups.slice(0, bestAt))}::${hex(groups.slice(bestAt + bestLen))}`;
}

/** `host:port` for a URL or socket address: `192.0.2.1:80`, `[2001:db8::1]:80`. */
export function formatHostPort(a: Ip, port: number): string {
  return a.family === 6 ? `[${formatIp(a)}]:${port}` : `${formatIp(a)}:${port}`;
}

export function ipEquals(a: Ip, b: Ip): boolean {
  return a.family === b.family && a.value === b.value;
}

/** Orders IPv4 before IPv6, then by value. */
export function compareIp(a: Ip, b: Ip): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/** `a + n` within the family, or undefined past either end. */
export function addToIp(a: Ip, n: bigint): Ip | undefined {
  const v = a.value + n;
  return v < 0n || v > maxValue(a.family) ? undefined : { family: a.family, value: v };
}

/** True for `::ffff:a.b.c.d`. */
export function isV4Mapped(a: Ip): boolean {
  return a.family === 6 && a.value >> 32n === 0xffffn;
}

/** The IPv4 address inside an IPv4-mapped IPv6 address; any other address unchanged. */
export function unmapV4(a: Ip): Ip {
  return isV4Mapped(a) ? { family: 4, value: a.value & 0xffffffffn } : a;
}

/** IPv6 fe80::/10, IPv4 169.254.0.0/16. */
export function isLinkLocal(a: Ip): boolean {
  return a.family === 6 ? a.value >> 118n === 0x3fan : a.value >> 16n === 0xa9fen;
}

/** Loopback: IPv4 127.0.0.0/8, IPv6 ::1, and an IPv4-mapped 127.0.0.0/8 (a socket bound to it is local). */
export function isLoopback(a: Ip): boolean {
  if (a.family === 4) return a.value >> 24n === 127n;
  return a.value === 1n || (isV4Mapped(a) && (a.value >> 24n) & 0xffn) === 127n;
}

export function prefixMask(family: Family, prefix: number): bigint {
  const b = familyBits(family);
  return prefix === 0 ? 0n : (maxValue(family) >> BigInt(b - prefix)) << BigInt(b - prefix);
}

const PREFIX_LEN = /^(0|[1-9]\d{0,2})$/;

/** Parses `addr/len`. With `strict`, host bits must be zero. Returns the address too. */
export function parsePrefix(text: string, strict = false): (IpPrefix & { address: Ip }) | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = parseIp(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!address || !PREFIX_LEN.test(lenText)) return undefined;
  const prefix = Number(lenText);
  if (prefix > familyBits(address.family)) return undefined;
  const network = address.value & prefixMask(address.family, prefix);
  if (strict && network !== address.value) return undefined;
  return { family: address.family, network, prefix, address };
}

/** Parses a prefix of one family only. */
export function parsePrefixOf(family: Family, text: string, strict = false): (IpPrefix & { address: Ip }) | undefined {
  const p = parsePrefix(text, strict);
  return p?.family === family ? p : undefined;
}

/** The prefix `address/len` with the host bits cleared. */
export function prefixOf(address: Ip, prefix: number): IpPrefix {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > familyBits(address.family)) throw new RangeError(`bad prefix length ${prefix}`);
  return { family: address.family, network: address.value & prefixMask(address.family, prefix), prefix };
}

export function formatPrefix(p: IpPrefix): string {
  return `${formatIp({ family: p.family, value: p.network })}/${p.prefix}`;
}

export function networkOf(p: IpPrefix): Ip {
  return { family: p.family, value: p.network };
}

/** Number of addresses in the prefix. */
export function prefixSize(p: IpPrefix): bigint {
  return 1n << BigInt(familyBits(p.family) - p.prefix);
}

export function lastAddress(p: IpPrefix): Ip {
  return { family: p.family, value: p.network + prefixSize(p) - 1n };
}

export function prefixContains(p: IpPrefix, a: Ip): boolean {
  return p.family === a.family && (a.value & prefixMask(p.family, p.prefix)) === p.network;
}

/** True when `inner` lies entirely inside `outer`. */
export function prefixContainsPrefix(outer: IpPrefix, inner: IpPrefix): boolean {
  return outer.family === inner.family && inner.prefix >= outer.prefix && prefixContains(outer, networkOf(inner));
}

export function prefixesOverlap(a: IpPrefix, b: IpPrefix): boolean {
  return prefixContainsPrefix(a, b) || prefixContainsPrefix(b, a);
}

export function prefixEquals(a: IpPrefix, b: IpPrefix): boolean {
  return a.family === b.family && a.prefix === b.prefix && a.network === b.network;
}

/**
 * The addresses a host in the prefix may use. IPv4 skips the network and broadcast addresses
 * where they exist (/31 and /32 have none, RFC 3021). IPv6 has no broadcast; it skips the
 * Subnet-Router anycast address (the network address, RFC 4291 §2.6.1) except on /127 (RFC 6164)
 * and /128.
 */
export function usableRange(p: IpPrefix): { first: Ip; last: Ip } {
  const first = networkOf(p);
  const last = lastAddress(p);
  const bits = familyBits(p.family);
  if (p.family === 4) {
    if (p.prefix >= 31) return { first, last };
    return { first: { ...first, value: first.value + 1n }, last: { ...last, value: last.value - 1n } };
  }
  if (p.prefix >= bits - 1) return { first, last };
  return { first: { ...first, value: first.value + 1n }, last };
}

/** The `index`-th sub-prefix of length `len` inside `p` (0-based), or undefined out of range. */
export function nthSubprefix(p: IpPrefix, len: number, index: bigint): IpPrefix | undefined {
  if (len < p.prefix || len > familyBits(p.family)) return undefined;
  const count = 1n << BigInt(len - p.prefix);
  if (index < 0n || index >= count) return undefined;
  return { family: p.family, network: p.network + (index << BigInt(familyBits(p.family) - len)), prefix: len };
}

/** Number of sub-prefixes of length `len` in `p`. */
export function subprefixCount(p: IpPrefix, len: number): bigint {
  return len < p.prefix || len > familyBits(p.family) ? 0n : 1n << BigInt(len - p.prefix);
}

/** The sub-prefixes of length `len` inside `p`, in address order, from index `from` (negative: 0). */
export function* subprefixes(p: IpPrefix, len: number, from = 0n): Generator<IpPrefix> {
  const count = subprefixCount(p, len);
  for (let k = from < 0n ? 0n : from; k < count; k++) yield nthSubprefix(p, len, k) as IpPrefix;
}

/** Index of the sub-prefix of length `len` of `p` that holds `a` (undefined when outside). */
export function subprefixIndex(p: IpPrefix, len: number, a: Ip): bigint | undefined {
  if (!prefixContains(p, a) || len < p.prefix || len > familyBits(p.family)) return undefined;
  return (a.value - p.network) >> BigInt(familyBits(p.family) - len);
}
