/**
 * The IPv6 half of a dual-stack node's desired state, shared by the backends (docs/design/dual-stack.md).
 * Pure. A peer's IPv6 objects exist only when both this node and the peer hold a subnet6; a peer
 * without one is served over IPv4 alone, and a problem with a peer's IPv6 side (its subnet6
 * overlaps, it has no IPv6 underlay address for host-gw) is a PeerError that leaves its IPv4 objects
 * in place.
 *
 * vxlan, per peer with a subnet6, on the same device as IPv4 (the inner family does not matter to
 * VXLAN; the outer one is the underlay's):
 *   address    fd00:10:244:1::/128 dev twill.1 nodad                       (this node's subnet6 network address)
 *   neighbour  fd00:10:244:2:: lladdr <peer vtepMac> dev twill.1 nud permanent
 *   route      fd00:10:244:2::/64 via fd00:10:244:2:: dev twill.1 onlink proto 84
 * The FDB entry is per MAC and shared with IPv4. host-gw / DirectRouting: the route goes via the
 * peer's publicIP6 when it lies inside this node's IPv6 underlay prefix.
 */
import { formatIp, formatPrefix, networkOf, prefixContains, prefixesOverlap, type IpPrefix } from '../net/ip.js';
import type { AddrSpec6, LocalNode, NeighSpec6, Peer, PeerError, RouteSpec6 } from './types.js';

const isV6 = (p: IpPrefix | undefined): p is IpPrefix => p !== undefined && p.family === 6;

/**
 * The peers (already screened for IPv4) whose IPv6 side this node serves: none when this node has
 * no subnet6; peers without one are skipped silently; a subnet6 overlapping this node's or an
 * earlier peer's is rejected (IPv6 only). Order is kept.
 */
export function screenPeers6(local: LocalNode, peers: readonly Peer[]): { accepted: Peer[]; errors: PeerError[] } {
  const accepted: Peer[] = [];
  const errors: PeerError[] = [];
  const own = local.subnet6;
  if (!isV6(own)) return { accepted, errors };
  for (const peer of peers) {
    const s6 = peer.subnet6;
    if (s6 === undefined) continue;
    const reject = (message: string) => errors.push({ peer: peer.name, code: 'subnet-conflict', message: `${peer.name}: ${message}; its IPv6 is not served (IPv4 is)` });
    if (!isV6(s6)) reject('subnet6 is not an IPv6 prefix');
    else if (prefixesOverlap(s6, own)) reject(`subnet6 ${formatPrefix(s6)} overlaps this node's ${formatPrefix(own)}`);
    else {
      const clash = accepted.find((a) => prefixesOverlap(a.subnet6 as IpPrefix, s6));
      if (clash) reject(`subnet6 ${formatPrefix(s6)} overlaps ${clash.name}'s`);
      else accepted.push(peer);
    }
  }
  return { accepted, errors };
}

/** This node's IPv6 address on the VXLAN device: its subnet6 network address /128 (like IPv4's .0/32). */
export function vxlanAddress6(local: LocalNode, dev: string): AddrSpec6[] {
  return isV6(local.subnet6) ? [{ dev, address: networkOf(local.subnet6), prefix: 128 }] : [];
}

/** The tunnel neighbour and route for a peer's subnet6 (the caller has screened the peer). */
export function vxlanObjects6(peer: Peer, dev: string, mac: string): { neighbour: NeighSpec6; route: RouteSpec6 } {
  const s6 = peer.subnet6 as IpPrefix;
  const gateway = networkOf(s6);
  return { neighbour: { dev, ip: gateway, mac }, route: { dst: s6, via: gateway, dev, onlink: true } };
}

/** True when the peer's IPv6 underlay address is one L2 hop away (inside this node's IPv6 underlay prefix). */
export function onUnderlay6(local: LocalNode, peer: Peer): boolean {
  return local.underlayCidr6 !== undefined && peer.publicIP6 !== undefined && prefixContains(local.underlayCidr6, peer.publicIP6);
}

/** The direct IPv6 route to a peer's subnet6 (host-gw, DirectRouting), or why there cannot be one. */
export function hostGwRoute6(local: LocalNode, peer: Peer): RouteSpec6 | PeerError {
  const s6 = peer.subnet6 as IpPrefix;
  if (local.publicIP6 === undefined || local.underlayCidr6 === undefined || peer.publicIP6 === undefined) {
    const who = local.publicIP6 === undefined || local.underlayCidr6 === undefined ? 'this node has' : `${peer.name} announces`;
    return {
      peer: peer.name,
      code: 'no-ipv6-underlay',
      message: `${peer.name}: cannot route ${formatPrefix(s6)} directly, ${who} no IPv6 underlay address (host-gw needs one on both nodes for IPv6; use vxlan); IPv4 is served`,
    };
  }
  if (!onUnderlay6(local, peer)) {
    return {
      peer: peer.name,
      code: 'not-on-underlay',
      message: `${peer.name}: ${formatIp(peer.publicIP6)} is not inside this node's IPv6 underlay ${formatPrefix(local.underlayCidr6)} on ${local.underlayIface}; no IPv6 route`,
    };
  }
  return { dst: s6, via: peer.publicIP6, dev: local.underlayIface, onlink: false };
}

export function isRoute6(x: RouteSpec6 | PeerError): x is RouteSpec6 {
  return !('code' in x);
}

export const prefixKey6 = (p: IpPrefix): string => `${p.network}/${p.prefix}`;

export const sortRoutes6 = (routes: RouteSpec6[]): RouteSpec6[] =>
  routes.sort((a, b) => (a.dst.network < b.dst.network ? -1 : a.dst.network > b.dst.network ? 1 : a.dst.prefix - b.dst.prefix));
