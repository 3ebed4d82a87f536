/**
 * The per-peer backend choice that makes a backend switch (`twill config set`, vxlan <-> host-gw) live
 * instead of an outage. Agents see the new config at slightly different moments, so for a while peers
 * announce different backends. Each node therefore serves every peer with the path that peer can
 * receive, whatever this node's own backend is (docs/design/agent.md, "Backend switches"):
 *
 * - a peer announcing host-gw gets the host-gw route (plain routing needs nothing on the peer), or a
 *   `not-on-underlay` error when it is not on this node's L2 segment;
 * - a peer announcing vxlan gets vxlan: this node's own vxlan config when it runs vxlan, else
 *   `fallbackVxlan` with DirectRouting (a peer on the segment gets the direct route, which it can
 *   receive; one behind an L3 hop is still reached through the tunnel);
 * - the VXLAN device exists while this node runs vxlan, while any peer announces vxlan (it sends into
 *   this node's tunnel) or while this node's own lease still announces vxlan;
 * - while the device exists, a peer on the other backend that gets the direct route keeps its
 *   neighbour and FDB entry (a host-gw peer: the VTEP MAC every Twill agent derives from its address,
 *   vtepMacFor). A switch then changes only the route (`ip route replace`, atomic) instead of deleting
 *   the entries the old route needs before the new route is in (which drops packets in between); the
 *   entries go with the device, or are used when the peer comes back to vxlan.
 * - peers announcing a backend this build does not know get `backend-mismatch`.
 * Peers are first screened together (own lease, shared addresses, overlapping subnets), whatever
 * backend they announce. When every peer runs this node's backend, the result is exactly that
 * backend's desiredState. Pure.
 */
import type { BackendConfig, VxlanBackendConfig } from '../model/cluster-config.js';
import { HOST_GW, hostGwBackend } from './hostgw.js';
import { prefixKey6, sortRoutes6, vxlanObjects6 } from './ipv6.js';
import { screenPeers } from './peer-screen.js';
import type { Cidr } from '../net/ipv4.js';
import type { DesiredState, LocalNode, Peer, PeerError, RouteSpec } from './types.js';
import { VXLAN, vtepMacFor, vxlanBackend } from './vxlan.js';

const subnetKey = (c: Cidr): string => `${c.network}/${c.prefix}`;
const sortRoutes = (routes: RouteSpec[]): RouteSpec[] => routes.sort((a, b) => a.dst.network - b.dst.network || a.dst.prefix - b.dst.prefix);

export interface PerPeerInput {
  readonly local: LocalNode;
  readonly peers: readonly Peer[];
  /** This node's configured backend. */
  readonly config: BackendConfig;
  /** vxlan parameters for vxlan peers while this node runs host-gw (the last vxlan config, or the defaults). */
  readonly fallbackVxlan: VxlanBackendConfig;
  /** The backend type this node's lease announces right now (it lags the config until republished). */
  readonly announced?: string;
}

/** Placeholder type for screening peers of every backend together. */
const ANY = '*';

export function perPeerDesiredState(input: PerPeerInput): DesiredState {
  const { local, config } = input;
  const original = new Map<Peer, Peer>();
  const neutral = input.peers.map((p) => {
    const n: Peer = { ...p, backendType: ANY };
    original.set(n, p);
    return n;
  });
  const screened = screenPeers(local, neutral, ANY);
  const errors: PeerError[] = [...screened.errors];
  const vxlanPeers: Peer[] = [];
  const hostGwPeers: Peer[] = [];
  for (const n of screened.accepted) {
    const p = original.get(n) as Peer;
    if (p.backendType === VXLAN) vxlanPeers.push(p);
    else if (p.backendType === HOST_GW) hostGwPeers.push(p);
    else errors.push({ peer: p.name, code: 'backend-mismatch', message: `${p.name}: announces backend '${p.backendType}', which this node cannot serve (it knows ${VXLAN} and ${HOST_GW})` });
  }
  const gw = hostGwBackend.desiredState(local, hostGwPeers, { type: 'host-gw' });
  const needVxlan = config.type === 'vxlan' || vxlanPeers.length > 0 || input.announced === VXLAN;
  if (!needVxlan) return { ...gw, errors: [...errors, ...gw.errors] };
  if (config.type === 'vxlan') {
    const vx = vxlanBackend.desiredState(local, vxlanPeers, config);
    const dev = vx.links[0]?.name as string;
    // host-gw peers with a direct route keep (or get) their tunnel entries, see above.
    const direct = new Set(gw.routes.map((r) => subnetKey(r.dst)));
    const kept = hostGwPeers.filter((p) => direct.has(subnetKey(p.subnet)));
    const direct6 = new Set(gw.routes6.map((r) => prefixKey6(r.dst)));
    const kept6 = hostGwPeers.filter((p) => p.subnet6 !== undefined && direct6.has(prefixKey6(p.subnet6)));
    return {
      links: vx.links,
      addresses: vx.addresses,
      neighbours: [...vx.neighbours, ...kept.map((p) => ({ dev, ip: p.subnet.network, mac: vtepMacFor(p.publicIP) }))],
      fdb: [...vx.fdb, ...kept.map((p) => ({ dev, mac: vtepMacFor(p.publicIP), dst: p.publicIP }))],
      routes: sortRoutes([...vx.routes, ...gw.routes]),
      addresses6: vx.addresses6,
      neighbours6: [...vx.neighbours6, ...kept6.map((p) => vxlanObjects6(p, dev, vtepMacFor(p.publicIP)).neighbour)],
      routes6: sortRoutes6([...vx.routes6, ...gw.routes6]),
      errors: [...errors, ...vx.errors, ...gw.errors],
    };
  }
  // This node runs host-gw: vxlan peers keep their tunnel entries; those on the segment get the direct route.
  const vx = vxlanBackend.desiredState(local, vxlanPeers, { ...input.fallbackVxlan, directRouting: false });
  const directState = hostGwBackend.desiredState(local, vxlanPeers.map((p) => ({ ...p, backendType: HOST_GW })), { type: 'host-gw' });
  const directRoutes = directState.routes;
  const direct = new Set(directRoutes.map((r) => subnetKey(r.dst)));
  const direct6 = new Set(directState.routes6.map((r) => prefixKey6(r.dst)));
  return {
    links: vx.links,
    addresses: vx.addresses,
    neighbours: vx.neighbours,
    fdb: vx.fdb,
    routes: sortRoutes([...vx.routes.filter((r) => !direct.has(subnetKey(r.dst))), ...directRoutes, ...gw.routes]),
    addresses6: vx.addresses6,
    neighbours6: vx.neighbours6,
    routes6: sortRoutes6([...vx.routes6.filter((r) => !direct6.has(prefixKey6(r.dst))), ...directState.routes6, ...gw.routes6]),
    errors: [...errors, ...vx.errors, ...gw.errors],
  };
}
