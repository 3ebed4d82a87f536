/**
 * The backend seam: a backend is a plain descriptor that turns "this node + its peers" into the
 * kernel objects the node should hold (DesiredState). Backends are pure: no I/O, no kernel access;
 * src/dataplane reconciles a DesiredState against the kernel.
 *
 * IPv4 addresses are unsigned 32-bit numbers (src/net/ipv4.ts), IPv6 objects (the `*6` specs) use
 * Ip/IpPrefix (src/net/ip.ts); MACs are lower-case `aa:bb:cc:dd:ee:ff`.
 * Every route a backend emits is a main-table unicast route with protocol ROUTE_PROTO (84) and
 * metric 0 (IPv6: 1024, the kernel's default); that is implied, not stored.
 */
import type { Cidr } from '../net/ipv4.js';
import type { Ip, IpPrefix } from '../net/ip.js';

/** This node, as the agent sees it after it holds a subnet lease. */
export interface LocalNode {
  readonly name: string;
  /** Underlay (node) address: VXLAN source, host-gw next hop for peers. */
  readonly publicIP: number;
  /** This node's pod subnet (the lease). */
  readonly subnet: Cidr;
  readonly underlayMtu: number;
  /** Interface that holds publicIP. */
  readonly underlayIface: string;
  /** The underlay subnet publicIP lives in: peers inside it are one L2 hop away (host-gw, DirectRouting). */
  readonly underlayCidr: Cidr;
  /** MAC of the VXLAN device (published to peers in the lease); see vtepMacFor(). */
  readonly vtepMac: string;
  /** Dual stack: this node's IPv6 pod subnet (the lease's second family). */
  readonly subnet6?: IpPrefix;
  /** This node's IPv6 underlay address, when it has one. */
  readonly publicIP6?: Ip;
  /** The underlay IPv6 prefix publicIP6 lives in. */
  readonly underlayCidr6?: IpPrefix;
}

/** Another node's lease. */
export interface Peer {
  readonly name: string;
  readonly publicIP: number;
  readonly subnet: Cidr;
  /** Backend type the peer announced in its lease ('vxlan', 'host-gw'). */
  readonly backendType: string;
  /** Backend attributes from the peer's lease (vxlan: vtepMac, vni). Untrusted input. */
  readonly backendData: Readonly<Record<string, string>>;
  /** Dual stack: the peer's IPv6 pod subnet. */
  readonly subnet6?: IpPrefix;
  /** The peer's IPv6 underlay address, when it announced one. */
  readonly publicIP6?: Ip;
}

export interface VxlanLinkSpec {
  readonly kind: 'vxlan';
  /** `twill.<vni>` */
  readonly name: string;
  readonly vni: number;
  /** UDP destination port (8472, the Linux/flannel default). */
  readonly port: number;
  /** Source address of encapsulated packets (the node's publicIP). */
  readonly local: number;
  /** Underlay device the tunnel is bound to. */
  readonly dev: string;
  readonly mtu: number;
  readonly mac: string;
  /** Always false: peers are programmed, never learned (flannel: nolearning). */
  readonly learning: false;
  /** Outer UDP checksum (`udpcsum`); Twill keeps it off, see docs/design/vxlan-checksum.md. */
  readonly udpCsum: boolean;
}

/** Links Twill creates (one kind today). Every link is kept administratively up. */
export type LinkSpec = VxlanLinkSpec;

/** An IPv4 address on one of our links. */
export interface AddrSpec {
  readonly dev: string;
  readonly address: number;
  readonly prefix: number;
}

/** A permanent ARP entry on one of our links. */
export interface NeighSpec {
  readonly dev: string;
  readonly ip: number;
  readonly mac: string;
}

/** A permanent VXLAN forwarding entry (`bridge fdb ... self permanent`): inner MAC -> remote VTEP. */
export interface FdbSpec {
  readonly dev: string;
  readonly mac: string;
  readonly dst: number;
}

/** `dst via <via> dev <dev> [onlink] proto 84` in the main table, metric 0. */
export interface RouteSpec {
  readonly dst: Cidr;
  readonly via: number;
  readonly dev: string;
  readonly onlink: boolean;
}

/*
 * IPv6 objects (dual stack, docs/design/dual-stack.md). The IPv4 objects above keep their `number`
 * form so that a node upgraded to a dual-stack build renders (and diffs) exactly as before; the IPv6
 * ones live in their own lists, typed with the family-generic Ip/IpPrefix of src/net/ip.ts. Every
 * `*6` value has family 6. IPv6 routes get the kernel's default IPv6 metric (1024), implied.
 */

/** An IPv6 address on one of our links (added `nodad`: usable at once). */
export interface AddrSpec6 {
  readonly dev: string;
  readonly address: Ip;
  readonly prefix: number;
}

/** A permanent NDP entry on one of our links. */
export interface NeighSpec6 {
  readonly dev: string;
  readonly ip: Ip;
  readonly mac: string;
}

/** `dst via <via> dev <dev> [onlink] proto 84` in the main IPv6 table, metric 1024. */
export interface RouteSpec6 {
  readonly dst: IpPrefix;
  readonly via: Ip;
  readonly dev: string;
  readonly onlink: boolean;
}

/** A peer the backend cannot serve; the other peers still get their objects. */
export interface PeerError {
  readonly peer: string;
  readonly code: PeerErrorCode;
  readonly message: string;
}

export type PeerErrorCode =
  | 'not-on-underlay' // host-gw: next hop not directly reachable
  | 'backend-mismatch' // peer announced another backend type
  | 'bad-backend-data' // missing or malformed vtepMac / vni
  | 'subnet-conflict' // overlaps this node's subnet or another peer's (subnet6 conflicts drop only the IPv6 objects)
  | 'no-ipv6-underlay'; // host-gw / DirectRouting: IPv6 needs an IPv6 underlay address on both nodes (IPv4 still served)

export interface DesiredState {
  readonly links: readonly LinkSpec[];
  readonly addresses: readonly AddrSpec[];
  readonly neighbours: readonly NeighSpec[];
  readonly fdb: readonly FdbSpec[];
  readonly routes: readonly RouteSpec[];
  /** IPv6 objects (empty unless this node has a subnet6). */
  readonly addresses6: readonly AddrSpec6[];
  readonly neighbours6: readonly NeighSpec6[];
  readonly routes6: readonly RouteSpec6[];
  readonly errors: readonly PeerError[];
}

export interface Backend<C> {
  readonly name: string;
  /** Optional: turn raw backend configuration into C (Twill's cluster config already does this). */
  parseConfig?(raw: unknown): { ok: true; config: C } | { ok: false; errors: string[] };
  /** Attributes this node publishes in its lease's backendData. */
  leaseAttributes(local: LocalNode, config: C): Record<string, string>;
  /** MTU pods on this node should use (written to the subnet file as TWILL_MTU). */
  podMtu(local: LocalNode, config: C): number;
  /** Kernel objects this node should hold for the given peers. Pure and deterministic. */
  desiredState(local: LocalNode, peers: readonly Peer[], config: C): DesiredState;
}

export function emptyDesiredState(): DesiredState {
  return { links: [], addresses: [], neighbours: [], fdb: [], routes: [], addresses6: [], neighbours6: [], routes6: [], errors: [] };
}
