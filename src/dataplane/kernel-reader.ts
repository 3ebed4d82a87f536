/**
 * Reads Twill's kernel objects into ActualState with two spawns: one `ip -json -details -batch -`
 * (addresses with link details, proto-84 routes, neighbours) and, when our links exist, one
 * `bridge -json -batch -` with an `fdb show dev` per link (FDB entries need the bridge tool).
 * Parsing is pure and exported for fixture tests.
 */
import { ROUTE_PROTO, VXLAN_DEVICE_PREFIX } from '../common/constants.js';
import type { AddrSpec, FdbSpec } from '../backends/types.js';
import { isMac, parseCidr, parseIPv4, type Cidr } from '../net/ipv4.js';
import type { AsyncCommandRunner } from './async-command.js';
import { inNetns, parseJsonLines } from './command.js';
import { DataplaneError } from './errors.js';
import { checkIfName } from './render-ip.js';
import type { ActualState, ObservedLink, ObservedNeigh, ObservedRoute } from './state.js';

export const IP_READ_LINES = ['address show', `route show proto ${ROUTE_PROTO}`, 'neigh show'] as const;

export interface ReadOptions {
  /** Network namespace path (`/run/netns/x`, `/proc/<pid>/ns/net`); the current one when absent. */
  readonly netns?: string;
}

export async function readKernelState(runner: AsyncCommandRunner, opts: ReadOptions = {}): Promise<ActualState> {
  const ipOut = await run(runner, inNetns(opts.netns, ['ip', '-json', '-details', '-batch', '-']), IP_READ_LINES);
  const state = parseIpState(ipOut);
  if (state.links.length === 0) return { ...state, fdb: [] };
  const devs = state.links.map((l) => checkIfName(l.name));
  const bridgeOut = await run(runner, inNetns(opts.netns, ['bridge', '-json', '-batch', '-']), devs.map((d) => `fdb show dev ${d}`));
  return { ...state, fdb: parseFdb(devs, bridgeOut) };
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
export function parseIpState(stdout: string): Omit<ActualState, 'fdb'> {
  const docs = parseJsonLines(stdout);
  if (docs.length !== IP_READ_LINES.length) {
    throw new DataplaneError('read-failed', `ip printed ${docs.length} JSON documents, expected ${IP_READ_LINES.length}`);
  }
  const [addrDoc, routeDoc, neighDoc] = docs as [unknown[], unknown[], unknown[]];
  const links: ObservedLink[] = [];
  const addresses: AddrSpec[] = [];
  for (const l of addrDoc.filter(isObj)) {
    const name = str(l['ifname']);
    if (name === undefined || !name.startsWith(VXLAN_DEVICE_PREFIX)) continue;
    links.push(parseLink(name, l));
    for (const a of (Array.isArray(l['addr_info']) ? l['addr_info'] : []).filter(isObj)) {
      const address = a['family'] === 'inet' ? parseIPv4(str(a['local']) ?? '') : undefined;
      const prefix = num(a['prefixlen']);
      if (address !== undefined && prefix !== undefined) addresses.push({ dev: name, address, prefix });
    }
  }
  const ours = new Set(links.map((l) => l.name));
  const routes = routeDoc.filter(isObj).flatMap((r) => parseRoute(r) ?? []);
  const neighbours: ObservedNeigh[] = [];
  for (const n of neighDoc.filter(isObj)) {
    const dev = str(n['dev']);
    const ip = parseIPv4(str(n['dst']) ?? '');
    if (dev === undefined || !ours.has(dev) || ip === undefined) continue;
    neighbours.push({ dev, ip, mac: str(n['lladdr']) ?? '', permanent: strings(n['state']).includes('PERMANENT') });
  }
  return { links, addresses, neighbours, routes };
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
