/**
 * host-gw (flannel's model): no device, no encapsulation. Each peer subnet is routed to the peer's
 * underlay address on the underlay interface: `10.244.2.0/24 via 192.0.2.12 dev eth0 proto 84`.
 * Works only when every peer is one L2 hop away (inside this node's underlay subnet); a peer that
 * is not gets a PeerError and no route, and the others still work. Dual stack: a peer's subnet6 is
 * routed via its publicIP6 under the same L2 rule (ipv6.ts); without IPv6 underlay addresses (dual
 * stack on an IPv4 underlay) IPv6 cannot be routed this way: `no-ipv6-underlay` per peer, IPv4 works.
 */
import type { HostGwBackendConfig } from '../model/cluster-config.js';
import { contains, formatCidr, formatIPv4 } from '../net/ipv4.js';
import { hostGwRoute6, isRoute6, screenPeers6 } from './ipv6.js';
import { screenPeers } from './peer-screen.js';
import type { Backend, DesiredState, LocalNode, Peer, PeerError, RouteSpec, RouteSpec6 } from './types.js';

export const HOST_GW = 'host-gw';

/** The direct route to a peer's subnet, or why there cannot be one. */
export function hostGwRoute(local: LocalNode, peer: Peer): RouteSpec | PeerError {
  if (!contains(local.underlayCidr, peer.publicIP)) {
    return {
      peer: peer.name,
      code: 'not-on-underlay',
      message:
        `${peer.name}: ${formatIPv4(peer.publicIP)} is not inside this node's underlay ${formatCidr(local.underlayCidr)}` +
        ` on ${local.underlayIface}; host-gw needs every node on one L2 segment (use vxlan, or vxlan with DirectRouting)`,
    };
  }
  return { dst: peer.subnet, via: peer.publicIP, dev: local.underlayIface, onlink: false };
}

export function isPeerError(x: RouteSpec | PeerError): x is PeerError {
  return 'code' in x;
}

export const hostGwBackend: Backend<HostGwBackendConfig> = {
  name: HOST_GW,
  leaseAttributes: () => ({}),
  podMtu: (local) => local.underlayMtu,
  desiredState(local, peers): DesiredState {
    const screened = screenPeers(local, peers, HOST_GW);
    const routes: RouteSpec[] = [];
    const routes6: RouteSpec6[] = [];
    const errors: PeerError[] = [...screened.errors];
    for (const peer of screened.accepted) {
      const r = hostGwRoute(local, peer);
      if (isPeerError(r)) errors.push(r);
      else routes.push(r);
    }
    const screened6 = screenPeers6(local, screened.accepted);
    errors.push(...screened6.errors);
    for (const peer of screened6.accepted) {
      const r = hostGwRoute6(local, peer);
      if (isRoute6(r)) routes6.push(r);
      else errors.push(r);
    }
    return { links: [], addresses: [], neighbours: [], fdb: [], routes, addresses6: [], neighbours6: [], routes6, errors };
  },
};
