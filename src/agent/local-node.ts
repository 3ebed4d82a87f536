/**
 * What the agent learns about its own node: underlay interface, address, subnet and MTU, and why
 * that address (flannel's --iface/--iface-regex/--iface-can-reach, Calico's cidr= autodetection).
 *
 * Precedence: --public-ip names the address and stands alone. Otherwise the methods given are tried
 * in this order and the first that finds an address wins: --public-iface, --iface-regex (each regex
 * in turn, interfaces in index order), --iface-cidr (each CIDR in turn), --iface-can-reach. With no
 * method at all: the interface of the IPv4 default route. `selectUnderlay` is pure (recorded `ip
 * -json` output in, choice and reason out); `detectUnderlay` reads the kernel. Dual stack: the
 * IPv6 underlay address is --public-ipv6 when given, else the first stable global IPv6 address on the
 * chosen interface (selectUnderlay6); a node without one is dual stack over an IPv4 underlay.
 */
import { DEFAULT_BRIDGE, VETH_PREFIX, VXLAN_DEVICE_PREFIX } from '../common/constants.js';
import { ipBatch, parseJsonLines, type CommandRunner } from '../dataplane/command.js';
import { contains, formatCidr, parseCidr, parseIPv4, type Cidr } from '../net/ipv4.js';
import { formatIp, formatPrefix, ipEquals, isLinkLocal, parseIpOf, prefixOf, type Ip, type IpPrefix } from '../net/ip.js';
import type { AgentOptions } from './options.js';

export interface Underlay {
  iface: string;
  ip: number;
  cidr: Cidr;
  mtu: number;
  /** How it was chosen, e.g. "--iface-can-reach 192.0.2.9: route via eth0 src 192.0.2.1". */
  reason: string;
  /** Dual stack: this node's IPv6 underlay address (LocalNode.publicIP6), when it has one. */
  ip6?: Ip;
  /** The IPv6 prefix ip6 lives in (LocalNode.underlayCidr6). */
  cidr6?: IpPrefix;
  /** How ip6 was chosen. */
  reason6?: string;
}

export interface IpAddrLink {
  ifname?: string;
  mtu?: number;
  flags?: string[];
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number; scope?: string; deprecated?: boolean; temporary?: boolean; tentative?: boolean; dadfailed?: boolean }>;
}

export interface IpRoute {
  dst?: string;
  dev?: string;
  gateway?: string;
  prefsrc?: string;
}

/** What selection reads: `ip -json addr show`, `ip -json route show default`, `ip -json route get <can-reach>`. */
export interface UnderlayFacts {
  links: IpAddrLink[];
  defaultRoutes: IpRoute[];
  reach?: IpRoute[];
}

export interface UnderlayWant {
  ip?: string;
  iface?: string;
  ifaceRegex?: string[];
  ifaceCidr?: string[];
  canReach?: string;
  /** --public-ipv6 (the model slice's flag): the IPv6 underlay address itself; it wins. */
  ip6?: string;
}

export class UnderlayError extends Error {
  readonly code = 'UnderlayUnknown';
}

export function underlayWant(o: Pick<AgentOptions, 'publicIp' | 'publicIpv6' | 'publicIface' | 'ifaceRegex' | 'ifaceCidr' | 'ifaceCanReach'>): UnderlayWant {
  const w: UnderlayWant = {};
  if (o.publicIp !== undefined) w.ip = o.publicIp;
  if (o.publicIpv6 !== undefined) w.ip6 = o.publicIpv6;
  if (o.publicIface !== undefined) w.iface = o.publicIface;
  if (o.ifaceRegex?.length) w.ifaceRegex = o.ifaceRegex;
  if (o.ifaceCidr?.length) w.ifaceCidr = o.ifaceCidr;
  if (o.ifaceCanReach !== undefined) w.canReach = o.ifaceCanReach;
  return w;
}

type Inet = { local: string; prefixlen: number; ip: number };

function inets(l: IpAddrLink): Inet[] {
  const out: Inet[] = [];
  for (const a of l.addr_info ?? []) {
    const ip = a.family === 'inet' ? parseIPv4(a.local ?? '') : undefined;
    if (ip !== undefined && a.prefixlen !== undefined) out.push({ local: a.local as string, prefixlen: a.prefixlen, ip });
  }
  return out;
}

/** Interfaces autodetection may pick: up, not loopback, not one of Twill's own devices. */
function candidate(l: IpAddrLink): boolean {
  const name = l.ifname ?? '';
  if (l.flags?.includes('LOOPBACK') || (l.flags !== undefined && !l.flags.includes('UP'))) return false;
  return !(name.startsWith(VXLAN_DEVICE_PREFIX) || name.startsWith(VETH_PREFIX) || name === DEFAULT_BRIDGE);
}

function result(l: IpAddrLink, a: Inet, reason: string): Underlay {
  const cidr = parseCidr(`${a.local}/${a.prefixlen}`) as NonNullable<ReturnType<typeof parseCidr>>;
  return { iface: l.ifname as string, ip: a.ip, cidr: { network: cidr.network, prefix: cidr.prefix }, mtu: l.mtu ?? 1500, reason };
}

const show = (a: Inet): string => `${a.local}/${a.prefixlen}`;

function byName(facts: UnderlayFacts, name: string, reason: string): Underlay | string {
  const link = facts.links.find((l) => l.ifname === name);
  if (!link) return `${reason}: interface ${name} not found`;
  const a = inets(link)[0];
  return a ? result(link, a, `${reason}: ${name} ${show(a)}`) : `${reason}: interface ${name} has no IPv4 address`;
}

function byRegex(facts: UnderlayFacts, source: string): Underlay | string {
  const re = new RegExp(source);
  for (const l of facts.links.filter(candidate)) {
    const all = inets(l);
    if (re.test(l.ifname ?? '') && all[0]) return result(l, all[0], `--iface-regex ${source}: ${l.ifname} ${show(all[0])} (name matches)`);
    const a = all.find((x) => re.test(x.local));
    if (a) return result(l, a, `--iface-regex ${source}: ${l.ifname} ${show(a)} (address matches)`);
  }
  return `--iface-regex ${source}: no interface with an IPv4 address matches`;
}

function byCidr(facts: UnderlayFacts, text: string): Underlay | string {
  const c = parseCidr(text, false);
  if (!c) return `--iface-cidr ${text}: not an IPv4 CIDR`;
  for (const l of facts.links.filter(candidate)) {
    const a = inets(l).find((x) => contains(c, x.ip));
    if (a) return result(l, a, `--iface-cidr ${formatCidr(c)}: ${l.ifname} holds ${show(a)}`);
  }
  return `--iface-cidr ${formatCidr(c)}: no interface holds an address inside it`;
}

function byReach(facts: UnderlayFacts, target: string): Underlay | string {
  const r = facts.reach?.[0];
  if (!r?.dev) return `--iface-can-reach ${target}: no route`;
  const src = r.prefsrc === undefined ? undefined : parseIPv4(r.prefsrc);
  // A local target routes via lo: the interface is the one holding the source address.
  const link = facts.links.find((l) => l.ifname === r.dev && !l.flags?.includes('LOOPBACK')) ?? facts.links.find((l) => inets(l).some((a) => a.ip === src));
  const a = link && (inets(link).find((x) => x.ip === src) ?? inets(link)[0]);
  if (!link || !a) return `--iface-can-reach ${target}: route via ${r.dev}, which has no IPv4 address`;
  return result(link, a, `--iface-can-reach ${target}: route via ${link.ifname}${r.gateway ? ` gateway ${r.gateway}` : ''} src ${a.local}`);
}

/**
 * The IPv6 underlay address: --public-ipv6 when given (held by any interface, else UnderlayError);
 * otherwise the first stable global address on the IPv4 underlay's interface (not link-local, not
 * temporary/deprecated/tentative/dadfailed); none when that interface has no such address.
 */
export function selectUnderlay6(facts: UnderlayFacts, iface: string, want6: string | undefined): Pick<Underlay, 'ip6' | 'cidr6' | 'reason6'> {
  const v6 = (l: IpAddrLink) =>
    (l.addr_info ?? []).flatMap((a) => {
      const ip6 = a.family === 'inet6' ? parseIpOf(6, a.local ?? '') : undefined;
      return ip6 !== undefined && a.prefixlen !== undefined ? [{ a, ip6, cidr6: prefixOf(ip6, a.prefixlen) }] : [];
    });
  if (want6 !== undefined) {
    const wanted = parseIpOf(6, want6);
    if (wanted === undefined) throw new UnderlayError(`--public-ipv6 ${JSON.stringify(want6)}: not an IPv6 address`);
    for (const l of facts.links) {
      const hit = v6(l).find((x) => ipEquals(x.ip6, wanted));
      if (hit) return { ip6: hit.ip6, cidr6: hit.cidr6, reason6: `--public-ipv6 ${formatIp(wanted)}: held by ${l.ifname} (${formatPrefix(hit.cidr6)})` };
    }
    throw new UnderlayError(`--public-ipv6 ${formatIp(wanted)}: no interface holds it`);
  }
  const link = facts.links.find((l) => l.ifname === iface);
  const usable = link && v6(link).find(({ a, ip6 }) => !isLinkLocal(ip6) && a.scope !== 'link' && !a.deprecated && !a.temporary && !a.tentative && !a.dadfailed);
  if (!usable) return {};
  return { ip6: usable.ip6, cidr6: usable.cidr6, reason6: `first global IPv6 address on ${iface}: ${formatIp(usable.ip6)}/${usable.cidr6.prefix}` };
}

/** Pure: the underlay for `want` on a node whose `ip -json` output is `facts`. Throws UnderlayError. */
export function selectUnderlay(facts: UnderlayFacts, want: UnderlayWant): Underlay {
  const u = selectUnderlay4(facts, want);
  return { ...u, ...selectUnderlay6(facts, u.iface, want.ip6) };
}

function selectUnderlay4(facts: UnderlayFacts, want: UnderlayWant): Underlay {
  if (want.ip !== undefined) {
    const ip = parseIPv4(want.ip);
    for (const l of facts.links) {
      const a = inets(l).find((x) => x.ip === ip);
      if (a) return result(l, a, `--public-ip ${want.ip}: held by ${l.ifname} (${show(a)})`);
    }
    throw new UnderlayError(`--public-ip ${want.ip}: no interface holds it`);
  }
  const tries: Array<() => Underlay | string> = [];
  if (want.iface !== undefined) tries.push(() => byName(facts, want.iface as string, `--public-iface ${want.iface}`));
  for (const re of want.ifaceRegex ?? []) tries.push(() => byRegex(facts, re));
  for (const c of want.ifaceCidr ?? []) tries.push(() => byCidr(facts, c));
  if (want.canReach !== undefined) tries.push(() => byReach(facts, want.canReach as string));
  if (tries.length === 0) {
    const r = facts.defaultRoutes[0];
    if (!r?.dev) throw new UnderlayError('no IPv4 default route: give --public-ip, --public-iface, --iface-regex, --iface-cidr or --iface-can-reach');
    const found = byName(facts, r.dev, `default route${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.dev}`);
    if (typeof found === 'string') throw new UnderlayError(found);
    return found;
  }
  const misses: string[] = [];
  for (const t of tries) {
    const found = t();
    if (typeof found !== 'string') return found;
    misses.push(found);
  }
  throw new UnderlayError(`no underlay address: ${misses.join('; ')}`);
}

/** Reads addresses and routes (and the route to --iface-can-reach) and selects. */
export function detectUnderlay(runner: CommandRunner, want: UnderlayWant): Underlay {
  const out = ipBatch(runner, ['route show default', 'addr show'], { json: true, what: 'reading routes and addresses' });
  const [routes, links] = parseJsonLines(out) as [IpRoute[] | undefined, IpAddrLink[] | undefined];
  const facts: UnderlayFacts = { links: links ?? [], defaultRoutes: routes ?? [] };
  if (want.canReach !== undefined && want.ip === undefined) {
    if (parseIPv4(want.canReach) === undefined) throw new UnderlayError(`--iface-can-reach ${JSON.stringify(want.canReach)}: not an IPv4 address`);
    try {
      facts.reach = parseJsonLines(ipBatch(runner, [`route get ${want.canReach}`], { json: true, what: `--iface-can-reach ${want.canReach}: route lookup` }))[0] as IpRoute[];
    } catch (e) {
      // Unreachable is a selection miss (the other methods may still match), not a crash.
      facts.reach = [];
      if (want.iface === undefined && !want.ifaceRegex?.length && !want.ifaceCidr?.length) throw new UnderlayError((e as Error).message);
    }
  }
  return selectUnderlay(facts, want);
}
