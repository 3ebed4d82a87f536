/**
 * vxlan (flannel's model, its "third generation" design): one VXLAN device per node, `twill.<vni>`,
 * VNI 1 and UDP port 8472 by default, learning off. Nothing is learned or flooded; the agent
 * programs, per peer:
 *   neighbour  10.244.2.0 lladdr <peer vtepMac> dev twill.1 nud permanent   (ARP for the gateway)
 *   fdb        <peer vtepMac> dev twill.1 dst <peer publicIP> self permanent (MAC -> remote VTEP)
 *   route      10.244.2.0/24 via 10.244.2.0 dev twill.1 onlink proto 84
 * and puts the node subnet's network address as /32 on the device (10.244.1.0/32, as flannel does),
 * which is the source of packets the node itself sends into the overlay.
 *
 * DirectRouting: peers inside this node's underlay subnet get the host-gw route instead (no
 * encapsulation); the rest use VXLAN.
 *
 * Dual stack: the same device carries inner IPv6 (one device per underlay family, not per inner
 * family: docs/design/dual-stack.md); per peer with a subnet6 a v6 neighbour and onlink route, the
 * FDB entry shared (ipv6.ts). DirectRouting decides per family: IPv6 goes direct only when the peer's
 * publicIP6 is on this node's IPv6 underlay prefix, otherwise through the tunnel.
 *
 * The device sends outer UDP checksums of zero (`noudpcsum`, the kernel and flannel default) and
 * keeps tx checksum offload on; why (and why not `udpcsum`) is in docs/design/vxlan-checksum.md.
 */
import { VXLAN_DEVICE_PREFIX, VXLAN_OVERHEAD } from '../common/constants.js';
import type { VxlanBackendConfig } from '../model/cluster-config.js';
import { contains, isMac } from '../net/ipv4.js';
import { vtepMacForIPv4, vtepMacForNode } from '../net/mac.js';
import { hostGwRoute, isPeerError } from './hostgw.js';
import { hostGwRoute6, isRoute6, onUnderlay6, screenPeers6, vxlanAddress6, vxlanObjects6 } from './ipv6.js';
import { screenPeers } from './peer-screen.js';
import type {
  Backend,
  DesiredState,
  FdbSpec,
  LocalNode,
  NeighSpec,
  NeighSpec6,
  Peer,
  PeerError,
  RouteSpec,
  RouteSpec6,
  VxlanLinkSpec,
} from './types.js';

export const VXLAN = 'vxlan';
/** Keys of this backend's lease attributes (Peer.backendData). */
export const LEASE_VTEP_MAC = 'vtepMac';
export const LEASE_VNI = 'vni';

/** `twill.<vni>` */
export function vxlanDeviceName(vni: number): string {
  return `${VXLAN_DEVICE_PREFIX}${vni}`;
}

/**
 * A stable VTEP MAC for an IPv4 node address: 0e:54 + the four octets (src/net/mac.ts). For a node
 * without IPv4, or the device on an IPv6 underlay, use vtepMacForNode.
 */
export function vtepMacFor(publicIP: number): string {
  return vtepMacForIPv4(publicIP);
}
export { vtepMacForNode };

export function vxlanMtu(local: LocalNode, config: VxlanBackendConfig): number {
  return config.mtu ?? local.underlayMtu - VXLAN_OVERHEAD;
}

/** The VXLAN device this node should have. */
export function vxlanLink(local: LocalNode, config: VxlanBackendConfig): VxlanLinkSpec {
  return {
    kind: 'vxlan',
    name: vxlanDeviceName(config.vni),
    vni: config.vni,
    port: config.port,
    local: local.publicIP,
    dev: local.underlayIface,
    mtu: vxlanMtu(local, config),
    mac: local.vtepMac,
    learning: false,
    udpCsum: false,
  };
}

/** A peer's VTEP MAC from its lease, or why it is unusable. */
export function peerVtepMac(peer: Peer, vni: number): string | PeerError {
  const mac = peer.backendData[LEASE_VTEP_MAC];
  const bad = (message: string): PeerError => ({ peer: peer.name, code: 'bad-backend-data', message: `${peer.name}: ${message}` });
  if (mac === undefined) return bad(`lease has no ${LEASE_VTEP_MAC}`);
  if (!isMac(mac) || mac === '00:00:00:00:00:00' || (parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    return bad(`${LEASE_VTEP_MAC} ${JSON.stringify(mac)} is not a lower-case unicast MAC`);
  }
  const peerVni = peer.backendData[LEASE_VNI];
  if (peerVni !== undefined && peerVni !== String(vni)) return bad(`announces VNI ${peerVni}, this node uses ${vni}`);
  return mac;
}

export const vxlanBackend: Backend<VxlanBackendConfig> = {
  name: VXLAN,
  leaseAttributes: (local, config) => ({ [LEASE_VTEP_MAC]: local.vtepMac, [LEASE_VNI]: String(config.vni) }),
  podMtu: (local, config) => vxlanMtu(local, config),
  desiredState(local, peers, config): DesiredState {
    const link = vxlanLink(local, config);
    const screened = screenPeers(local, peers, VXLAN);
    const errors: PeerError[] = [...screened.errors];
    const neighbours: NeighSpec[] = [];
    const fdb: FdbSpec[] = [];
    const routes: RouteSpec[] = [];
    const neighbours6: NeighSpec6[] = [];
    const routes6: RouteSpec6[] = [];
    const screened6 = screenPeers6(local, screened.accepted);
    errors.push(...screened6.errors);
    const serve6 = new Set(screened6.accepted);
    for (const peer of screened.accepted) {
      let direct: RouteSpec | undefined;
      if (config.directRouting && contains(local.underlayCidr, peer.publicIP)) {
        const r = hostGwRoute(local, peer);
        if (!isPeerError(r)) direct = r;
      }
      const v6 = serve6.has(peer);
      let direct6: RouteSpec6 | undefined;
      if (v6 && config.directRouting && onUnderlay6(local, peer)) {
        const r = hostGwRoute6(local, peer);
        if (isRoute6(r)) direct6 = r;
      }
      if (direct) routes.push(direct);
      if (direct6) routes6.push(direct6);
      // IPv6 of a peer off the IPv6 underlay goes through the tunnel, whatever IPv4 does.
      if (direct && (!v6 || direct6)) continue;
      const mac = peerVtepMac(peer, config.vni);
      if (typeof mac !== 'string') {
        errors.push(mac);
        continue;
      }
      fdb.push({ dev: link.name, mac, dst: peer.publicIP });
      if (!direct) {
        const gateway = peer.subnet.network;
        neighbours.push({ dev: link.name, ip: gateway, mac });
        routes.push({ dst: peer.subnet, via: gateway, dev: link.name, onlink: true });
      }
      if (v6 && !direct6) {
        const o = vxlanObjects6(peer, link.name, mac);
        neighbours6.push(o.neighbour);
        routes6.push(o.route);
      }
    }
    return {
      links: [link],
      addresses: [{ dev: link.name, address: local.subnet.network, prefix: 32 }],
      neighbours,
      fdb,
      routes,
      addresses6: vxlanAddress6(local, link.name),
      neighbours6,
      routes6,
      errors,
    };
  },
};
