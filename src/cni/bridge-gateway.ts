/**
 * Issue 8 item 7: the bridge carries exactly the current gateway. After a subnet change the old
 * gateway address (and with it its connected route, which black-holes the node that now owns the old
 * subnet) is removed, but only from a bridge that is Twill's: one whose ifalias is
 * `twill-bridge/<network>` (set when ADD creates it), or, for bridges made by earlier Twill versions,
 * one without alias whose MAC is the `0e:58:<ip>` MAC Twill derives from one of its addresses.
 * An operator's bridge named in the config is never stripped.
 *
 * Cheap on the common path: the node's main routing table (/proc/net/route, no process spawned)
 * shows whether the bridge has any connected route other than the current subnet's; only then
 * are its addresses read with `ip`. Pure.
 */
import { BRIDGE_ALIAS_PREFIX } from '../common/constants.js';
import { formatIPv4, macForIPv4, maskOf, parseIPv4, type Cidr } from '../net/ipv4.js';

export interface DeviceRoute {
  dev: string;
  dst: Cidr;
}

export function bridgeAlias(network: string): string {
  return `${BRIDGE_ALIAS_PREFIX}${network}`;
}

/** /proc/net/route holds addresses as host-order hex of the little-endian bytes. */
function procHex(hex: string): number | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const v = parseInt(hex, 16);
  return (((v & 0xff) << 24) | (((v >>> 8) & 0xff) << 16) | (((v >>> 16) & 0xff) << 8) | ((v >>> 24) & 0xff)) >>> 0;
}

/** Routes of /proc/net/route without a gateway (connected routes), with their device. */
export function parseProcRoutes(text: string): DeviceRoute[] {
  const out: DeviceRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[2] !== '00000000') continue;
    const dst = procHex(f[1] as string);
    const mask = procHex(f[7] as string);
    if (dst === undefined || mask === undefined) continue;
    let prefix = 0;
    while (prefix < 32 && maskOf(prefix) !== mask) prefix += 1;
    if (maskOf(prefix) !== mask) continue;
    out.push({ dev: f[0] as string, dst: { network: dst, prefix } });
  }
  return out;
}

/** Does `bridge` have a connected route other than `subnet`'s (a stale address, or an operator's)? */
export function bridgeHasOtherRoutes(routes: readonly DeviceRoute[], bridge: string, subnet: Cidr): boolean {
  return routes.some((r) => r.dev === bridge && !(r.dst.network === subnet.network && r.dst.prefix === subnet.prefix));
}

/** What `ip -json -details addr show dev <bridge>` says, as far as this module needs. */
export interface BridgeFacts {
  ifalias?: string;
  address?: string;
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }>;
}

function inet(link: BridgeFacts): Array<{ local: string; prefixlen: number }> {
  return (link.addr_info ?? [])
    .filter((a) => a.family === 'inet' && typeof a.local === 'string' && typeof a.prefixlen === 'number')
    .map((a) => ({ local: a.local as string, prefixlen: a.prefixlen as number }));
}

export function isTwillBridge(link: BridgeFacts, network: string): boolean {
  if (link.ifalias !== undefined && link.ifalias !== '') return link.ifalias === bridgeAlias(network);
  const mac = link.address?.toLowerCase();
  return inet(link).some((a) => {
    const ip = parseIPv4(a.local);
    return ip !== undefined && macForIPv4(ip, 0x0e) === mac;
  });
}

/** IPv4 addresses (`a.b.c.d/n`) on Twill's bridge other than the current gateway; [] for a foreign bridge. */
export function staleBridgeAddresses(link: BridgeFacts, network: string, gateway: number, prefix: number): string[] {
  if (!isTwillBridge(link, network)) return [];
  const gw = formatIPv4(gateway);
  return inet(link)
    .filter((a) => !(a.local === gw && a.prefixlen === prefix))
    .map((a) => `${a.local}/${a.prefixlen}`);
}
