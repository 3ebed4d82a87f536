/**
 * Pure rendering of kernel object specs into `ip -batch` / `bridge -batch` lines. Every name,
 * address and number is validated first: a batch line is a command language, and a device name
 * or MAC from a peer's lease must never be able to add words or lines to it.
 */
import { ROUTE_PROTO } from '../common/constants.js';
import type { AddrSpec, AddrSpec6, FdbSpec, LinkSpec, NeighSpec6, NeighSpec, RouteSpec, RouteSpec6 } from '../backends/types.js';
import { formatCidr, formatIPv4, isMac, maskOf, type Cidr } from '../net/ipv4.js';
import { formatIp, formatPrefix, prefixMask, type Ip, type IpPrefix } from '../net/ip.js';
import type { KernelCommand, ObservedRoute, ObservedRoute6 } from './state.js';

export class InvalidSpecError extends Error {
  readonly code = 'invalid-spec';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidSpecError';
  }
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export function checkIfName(name: string): string {
  if (!IFNAME.test(name) || name === '.' || name === '..') throw new InvalidSpecError(`invalid interface name ${JSON.stringify(name)}`);
  return name;
}

export function checkIPv4(value: number, what = 'address'): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new InvalidSpecError(`invalid ${what} ${String(value)}`);
  return formatIPv4(value);
}

function checkMac(mac: string): string {
  if (!isMac(mac)) throw new InvalidSpecError(`invalid MAC ${JSON.stringify(mac)}`);
  return mac;
}

function checkInt(value: number, min: number, max: number, what: string): string {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidSpecError(`${what} ${String(value)} must be an integer between ${min} and ${max}`);
  }
  return String(value);
}

function checkCidr(c: Cidr): string {
  checkIPv4(c.network, 'network');
  checkInt(c.prefix, 0, 32, 'prefix');
  if (((c.network & maskOf(c.prefix)) >>> 0) !== c.network) throw new InvalidSpecError(`${formatCidr(c)} has host bits set`);
  return formatCidr(c);
}

const ip = (kind: KernelCommand['kind'], words: string[]): KernelCommand => ({ program: 'ip', kind, line: words.join(' ') });

/** Creates the link, already up. */
export function renderLinkAdd(l: LinkSpec): KernelCommand {
  return ip('link', [
    'link', 'add', checkIfName(l.name),
    'address', checkMac(l.mac),
    'mtu', checkInt(l.mtu, 68, 65535, 'mtu'),
    'up',
    'type', 'vxlan',
    'id', checkInt(l.vni, 1, 16777215, 'vni'),
    'local', checkIPv4(l.local, 'local address'),
    'dev', checkIfName(l.dev),
    'dstport', checkInt(l.port, 1, 65535, 'port'),
    l.learning ? 'learning' : 'nolearning',
    l.udpCsum ? 'udpcsum' : 'noudpcsum',
  ]);
}

/** Sets the mutable attributes (MAC, MTU, up) of an existing link. */
export function renderLinkSet(l: LinkSpec): KernelCommand {
  return ip('link', ['link', 'set', 'dev', checkIfName(l.name), 'address', checkMac(l.mac), 'mtu', checkInt(l.mtu, 68, 65535, 'mtu'), 'up']);
}

export function renderLinkDel(name: string): KernelCommand {
  return ip('link', ['link', 'del', 'dev', checkIfName(name)]);
}

export function renderAddr(op: 'replace' | 'del', a: AddrSpec): KernelCommand {
  const addr = `${checkIPv4(a.address)}/${checkInt(a.prefix, 0, 32, 'prefix')}`;
  return ip('addr', ['address', op, addr, 'dev', checkIfName(a.dev)]);
}

export function renderNeighReplace(n: NeighSpec): KernelCommand {
  return ip('neigh', ['neigh', 'replace', checkIPv4(n.ip), 'lladdr', checkMac(n.mac), 'dev', checkIfName(n.dev), 'nud', 'permanent']);
}

export function renderNeighDel(n: Pick<NeighSpec, 'ip' | 'dev'>): KernelCommand {
  return ip('neigh', ['neigh', 'del', checkIPv4(n.ip), 'dev', checkIfName(n.dev)]);
}

/** A `bridge -batch` line. */
export function renderFdb(op: 'replace' | 'del', f: FdbSpec): KernelCommand {
  const words = ['fdb', op, checkMac(f.mac), 'dev', checkIfName(f.dev), 'dst', checkIPv4(f.dst, 'remote'), 'self'];
  if (op === 'replace') words.push('permanent');
  return { program: 'bridge', kind: 'fdb', line: words.join(' ') };
}

export function renderRoute(op: 'add' | 'replace', r: RouteSpec): KernelCommand {
  const words = ['route', op, checkCidr(r.dst), 'via', checkIPv4(r.via, 'gateway'), 'dev', checkIfName(r.dev)];
  if (r.onlink) words.push('onlink');
  words.push('proto', String(ROUTE_PROTO));
  return ip('route', words);
}

/** Deletes exactly the observed route: same destination, type, metric and protocol 84. */
export function renderRouteDel(r: ObservedRoute): KernelCommand {
  const words = ['route', 'del'];
  if (r.type !== 'unicast') words.push(checkRouteType(r.type));
  words.push(checkCidr(r.dst), 'proto', String(ROUTE_PROTO));
  if (r.metric !== 0) words.push('metric', checkInt(r.metric, 0, 0xffffffff, 'metric'));
  return ip('route', words);
}

const ROUTE_TYPES = new Set(['unicast', 'local', 'broadcast', 'multicast', 'throw', 'unreachable', 'prohibit', 'blackhole', 'nat']);
function checkRouteType(t: string): string {
  if (!ROUTE_TYPES.has(t)) throw new InvalidSpecError(`invalid route type ${JSON.stringify(t)}`);
  return t;
}

/*
 * IPv6 lines. `ip -batch` takes no per-line `-6`; the family comes from the addresses in the line.
 * The kernel gives an IPv6 route without a metric the metric 1024, which is the one desired.
 */
export const ROUTE6_METRIC = 1024;
const MAX_V6 = (1n << 128n) - 1n;

export function checkIPv6(a: Ip, what = 'address'): string {
  if (a.family !== 6 || typeof a.value !== 'bigint' || a.value < 0n || a.value > MAX_V6) throw new InvalidSpecError(`invalid IPv6 ${what}`);
  return formatIp(a);
}

function checkPrefix6(p: IpPrefix): string {
  checkIPv6({ family: p.family, value: p.network }, 'network');
  checkInt(p.prefix, 0, 128, 'prefix');
  if ((p.network & prefixMask(6, p.prefix)) !== p.network) throw new InvalidSpecError(`${formatPrefix(p)} has host bits set`);
  return formatPrefix(p);
}

/** `nodad`: duplicate address detection would hold the address tentative (unusable) for a second. */
export function renderAddr6(op: 'replace' | 'del', a: AddrSpec6): KernelCommand {
  const words = ['address', op, `${checkIPv6(a.address)}/${checkInt(a.prefix, 0, 128, 'prefix')}`, 'dev', checkIfName(a.dev)];
  if (op === 'replace') words.push('nodad');
  return ip('addr', words);
}

export function renderNeighReplace6(n: NeighSpec6): KernelCommand {
  return ip('neigh', ['neigh', 'replace', checkIPv6(n.ip), 'lladdr', checkMac(n.mac), 'dev', checkIfName(n.dev), 'nud', 'permanent']);
}

export function renderNeighDel6(n: Pick<NeighSpec6, 'ip' | 'dev'>): KernelCommand {
  return ip('neigh', ['neigh', 'del', checkIPv6(n.ip), 'dev', checkIfName(n.dev)]);
}

export function renderRoute6(op: 'add' | 'replace', r: RouteSpec6): KernelCommand {
  const words = ['route', op, checkPrefix6(r.dst), 'via', checkIPv6(r.via, 'gateway'), 'dev', checkIfName(r.dev)];
  if (r.onlink) words.push('onlink');
  words.push('proto', String(ROUTE_PROTO));
  return ip('route', words);
}

/** Deletes exactly the observed IPv6 route: destination, type, metric and protocol 84. */
export function renderRouteDel6(r: ObservedRoute6): KernelCommand {
  const words = ['route', 'del'];
  if (r.type !== 'unicast') words.push(checkRouteType(r.type));
  words.push(checkPrefix6(r.dst), 'proto', String(ROUTE_PROTO), 'metric', checkInt(r.metric, 0, 0xffffffff, 'metric'));
  return ip('route', words);
}
