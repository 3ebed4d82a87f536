/**
 * Reads Twill's kernel objects into ActualState with up to three spawns: one `ip -json -details -batch -`
 * (addresses of both families with link details, IPv4 proto-84 routes, neighbours of both families),
 * one `ip -6 -json route show proto 84` (in parallel) and, when our links exist, one
 * `bridge -json -batch -` with an `fdb show dev` per link (FDB entries need the bridge tool).
 * Parsing is pure and exported for fixture tests.
 */
import { ROUTE_PROTO, VXLAN_DEVICE_PREFIX } from '../common/constants.js';
import type { AddrSpec, AddrSpec6, FdbSpec } from '../backends/types.js';
import { isMac, parseCidr, parseIPv4, type Cidr } from '../net/ipv4.js';
import { isLinkLocal, parseIpOf, parsePrefixOf, type IpPrefix } from '../net/ip.js';
import type { AsyncCommandRunner } from './async-command.js';
import { inNetns, parseJsonLines } from './command.js';
import { DataplaneError } from './errors.js';
import { checkIfName } from './render-ip.js';
import type { ActualState, ObservedLink, ObservedNeigh, ObservedNeigh6, ObservedRoute, ObservedRoute6 } from './state.js';

export const IP_READ_LINES = ['address show', `route show proto ${ROUTE_PROTO}`, 'neigh show'] as const;

export interface ReadOptions {
  /** Network namespace path (`/run/netns/x`, `/proc/<pid>/ns/net`); the current one when absent. */
  readonly netns?: string;
}

/** IPv6 routes need their own spawn: `ip -batch` has no per-line `-6`, and an unspecified family lists IPv4 only. */
export const IP6_ROUTE_ARGV = ['ip', '-6', '-json', 'route', 'show', 'proto', String(ROUTE_PROTO)] as const;

export async function readKernelState(runner: AsyncCommandRunner, opts: ReadOptions = {}): Promise<ActualState> {
  const [ipOut, routes6] = await Promise.all([
    run(runner, inNetns(opts.netns, ['ip', '-json', '-details', '-batch', '-']), IP_READ_LINES),
    readRoutes6(runner, opts),
  ]);
  const state = { ...parseIpState(ipOut), routes6 };
  if (state.links.length === 0) return { ...state, fdb: [] };
  const devs = state.links.map((l) => checkIfName(l.name));
  const bridgeOut = await run(runner, inNetns(opts.netns, ['bridge', '-json', '-batch', '-']), devs.map((d) => `fdb show dev ${d}`));
  return { ...state, fdb: parseFdb(devs, bridgeOut) };
}

/** A kernel without IPv6 has no IPv6 routes to read (and none to own). */
async function readRoutes6(runner: AsyncCommandRunner, opts: ReadOptions): Promise<ObservedRoute6[]> {
  const argv = inNetns(opts.netns, [...IP6_ROUTE_ARGV]);
  const r = await runner.run(argv, '');
  if (r.status !== 0) {
    if (/address family not supported/i.test(r.stderr)) return [];
    throw new DataplaneError('read-failed', `${argv.join(' ')} failed: ${r.stderr.trim() || `exit status ${r.status}`}`);
  }
  return parseRoutes6(r.stdout);
}

/** Parses `ip -6 -json route show proto 84`. */
export function parseRoutes6(stdout: string): ObservedRoute6[] {
  const docs = stdout.trim() === '' ? [[]] : parseJsonLines(stdout);
  if (docs.length !== 1) throw new DataplaneError('read-failed', `ip -6 route printed ${docs.length} JSON documents, expected 1`);
  return (docs[0] as unknown[]).filter(isObj).flatMap((r) => parseRoute6(r) ?? []);
}

export function parseRoute6(r: Json): ObservedRoute6 | undefined {
  const dstText = str(r['dst']);
  let dst: IpPrefix | undefined;
  if (dstText === 'default') dst = { family: 6, network: 0n, prefix: 0 };
  else if (dstText !== undefined) {
    const p = parsePrefixOf(6, dstText.includes('/') ? dstText : `${dstText}/128`);
    dst = p && { family: 6, network: p.network, prefix: p.prefix };
  }
  if (dst === undefined) return undefined;
  const gw = str(r['gateway']);
  return {
    dst,
    type: str(r['type']) ?? 'unicast',
    via: gw === undefined ? undefined : parseIpOf(6, gw),
    dev: str(r['dev']),
    onlink: strings(r['flags']).includes('onlink'),
    metric: num(r['metric']) ?? 0,
  };
}

async function run(runner: AsyncCommandRunner, argv: string[], lines: readonly string[]): Promise<string> {
  const r = await runner.run(argv, `${lines.join('\n')}\n`);
  if (r.status !== 0) {
    throw new DataplaneError('read-failed', `${argv.join(' ')} failed: ${r.stderr.trim() || `exit status ${r.status}`}`);
  }
  return r.stdout;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** Parses the three JSON documents of IP_READ_LINES. */
export function parseIpState(stdout: string): Omit<ActualState, 'fdb' | 'routes6'> {
  const docs = parseJsonLines(stdout);
  if (docs.length !== IP_READ_LINES.length) {
    throw new DataplaneError('read-failed', `ip printed ${docs.length} JSON documents, expected ${IP_READ_LINES.length}`);
  }
  const [addrDoc, routeDoc, neighDoc] = docs as [unknown[], unknown[], unknown[]];
  const links: ObservedLink[] = [];
  const addresses: AddrSpec[] = [];
  const addresses6: AddrSpec6[] = [];
  for (const l of addrDoc.filter(isObj)) {
    const name = str(l['ifname']);
    if (name === undefined || !name.startsWith(VXLAN_DEVICE_PREFIX)) continue;
    links.push(parseLink(name, l));
    for (const a of (Array.isArray(l['addr_info']) ? l['addr_info'] : []).filter(isObj)) {
      const address = a['family'] === 'inet' ? parseIPv4(str(a['local']) ?? '') : undefined;
      const prefix = num(a['prefixlen']);
      if (address !== undefined && prefix !== undefined) addresses.push({ dev: name, address, prefix });
      const address6 = a['family'] === 'inet6' ? parseIpOf(6, str(a['local']) ?? '') : undefined;
      // The kernel's own link-local address is not ours to own (nor to delete).
      if (address6 !== undefined && prefix !== undefined && !isLinkLocal(address6)) addresses6.push({ dev: name, address: address6, prefix });
    }
  }
  const ours = new Set(links.map((l) => l.name));
  const routes = routeDoc.filter(isObj).flatMap((r) => parseRoute(r) ?? []);
  const neighbours: ObservedNeigh[] = [];
  const neighbours6: ObservedNeigh6[] = [];
  for (const n of neighDoc.filter(isObj)) {
    const dev = str(n['dev']);
    if (dev === undefined || !ours.has(dev)) continue;
    const dst = str(n['dst']) ?? '';
    const ip = parseIPv4(dst);
    const ip6 = ip === undefined ? parseIpOf(6, dst) : undefined;
    const rest = { dev, mac: str(n['lladdr']) ?? '', permanent: strings(n['state']).includes('PERMANENT') };
    if (ip !== undefined) neighbours.push({ ...rest, ip });
    else if (ip6 !== undefined) neighbours6.push({ ...rest, ip: ip6 });
  }
  return { links, addresses, neighbours, routes, addresses6, neighbours6 };
}

function parseLink(name: string, l: Json): ObservedLink {
  const info = isObj(l['linkinfo']) ? l['linkinfo'] : {};
  const kind = str(info['info_kind']) ?? '';
  const base = {
    name,
    kind,
    up: strings(l['flags']).includes('UP'),
    mtu: num(l['mtu']) ?? 0,
    mac: str(l['address']) ?? '',
  };
  const d = info['info_data'];
  if (kind !== 'vxlan' || !isObj(d)) return base;
  return {
    ...base,
    vxlan: {
      vni: num(d['id']) ?? -1,
      port: num(d['port']) ?? -1,
      local: parseIPv4(str(d['local']) ?? ''),
      dev: str(d['link']),
      learning: d['learning'] === true,
      udpCsum: d['udp_csum'] === true,
    },
  };
}

export function parseRoute(r: Json): ObservedRoute | undefined {
  const dstText = str(r['dst']);
  let dst: Cidr | undefined;
  if (dstText === 'default') dst = { network: 0, prefix: 0 };
  else if (dstText !== undefined) {
    const c = parseCidr(dstText.includes('/') ? dstText : `${dstText}/32`);
    dst = c && { network: c.network, prefix: c.prefix };
  }
  if (dst === undefined) return undefined;
  const gw = str(r['gateway']);
  return {
    dst,
    type: str(r['type']) ?? 'unicast',
    via: gw === undefined ? undefined : parseIPv4(gw),
    dev: str(r['dev']),
    onlink: strings(r['flags']).includes('onlink'),
    metric: num(r['metric']) ?? 0,
  };
}

/** Parses `bridge -json -batch` output of one `fdb show dev` per device; keeps entries with an IPv4 remote. */
export function parseFdb(devs: readonly string[], stdout: string): FdbSpec[] {
  const docs = parseJsonLines(stdout);
  if (docs.length !== devs.length) {
    throw new DataplaneError('read-failed', `bridge printed ${docs.length} JSON documents for ${devs.length} devices (a link vanished?)`);
  }
  const out: FdbSpec[] = [];
  docs.forEach((entries, i) => {
    const dev = devs[i] as string;
    for (const e of entries.filter(isObj)) {
      const mac = str(e['mac']);
      const dst = parseIPv4(str(e['dst']) ?? '');
      if (mac !== undefined && isMac(mac) && dst !== undefined) out.push({ dev, mac, dst });
    }
  });
  return out;
}
