/**
 * What the agent learns about its own node: underlay interface, address, subnet and MTU.
 * From flags when given, else from the IPv4 default route (flannel's autodetection).
 */
import { ipBatch, parseJsonLines, type CommandRunner } from '../dataplane/command.js';
import { parseCidr, parseIPv4, type Cidr } from '../net/ipv4.js';

export interface Underlay {
  iface: string;
  ip: number;
  cidr: Cidr;
  mtu: number;
}

interface IpAddrLink {
  ifname?: string;
  mtu?: number;
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }>;
}

export class UnderlayError extends Error {
  readonly code = 'UnderlayUnknown';
}

export function detectUnderlay(runner: CommandRunner, want: { ip?: string; iface?: string }): Underlay {
  const out = ipBatch(runner, ['route show default', 'addr show'], { json: true, what: 'reading routes and addresses' });
  const [routes, links] = parseJsonLines(out) as [Array<{ dev?: string }> | undefined, IpAddrLink[] | undefined];
  const all = links ?? [];
  const wantIp = want.ip === undefined ? undefined : parseIPv4(want.ip);
  let link: IpAddrLink | undefined;
  if (wantIp !== undefined) link = all.find((l) => l.addr_info?.some((a) => a.family === 'inet' && parseIPv4(a.local ?? '') === wantIp));
  else if (want.iface !== undefined) link = all.find((l) => l.ifname === want.iface);
  else link = all.find((l) => l.ifname === routes?.[0]?.dev);
  if (!link?.ifname) {
    throw new UnderlayError(
      wantIp !== undefined ? `no interface holds ${want.ip}` : want.iface !== undefined ? `interface ${want.iface} not found` : 'no IPv4 default route: give --public-ip or --public-iface',
    );
  }
  const addr = link.addr_info?.find((a) => a.family === 'inet' && (wantIp === undefined || parseIPv4(a.local ?? '') === wantIp));
  const cidr = addr ? parseCidr(`${addr.local}/${addr.prefixlen}`) : undefined;
  if (!addr || !cidr) throw new UnderlayError(`interface ${link.ifname} has no IPv4 address`);
  return { iface: link.ifname, ip: cidr.address, cidr: { network: cidr.network, prefix: cidr.prefix }, mtu: link.mtu ?? 1500 };
}
