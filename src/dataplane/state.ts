/**
 * What the reconciler sees of the kernel (only the agent's own objects: `twill.*` links and what is
 * on them, and routes of the agent's protocol 84) and the port it reads and writes the kernel through.
 */
import type { AddrSpec, AddrSpec6, FdbSpec, NeighSpec, NeighSpec6 } from '../backends/types.js';
import type { Cidr } from '../net/ipv4.js';
import type { Ip, IpPrefix } from '../net/ip.js';

export interface ObservedVxlan {
  readonly vni: number;
  readonly port: number;
  readonly local: number | undefined;
  readonly dev: string | undefined;
  readonly learning: boolean;
  readonly udpCsum: boolean;
}

/** A link whose name has our prefix (VXLAN_DEVICE_PREFIX). */
export interface ObservedLink {
  readonly name: string;
  /** linkinfo kind ('vxlan', 'veth', ...; '' when the kernel reports none). */
  readonly kind: string;
  readonly up: boolean;
  readonly mtu: number;
  readonly mac: string;
  readonly vxlan?: ObservedVxlan;
}

export interface ObservedNeigh extends NeighSpec {
  /** Only PERMANENT entries are ours; the kernel makes the others. */
  readonly permanent: boolean;
}

/** A route with the agent's protocol (84) in the main table. */
export interface ObservedRoute {
  readonly dst: Cidr;
  readonly type: string;
  readonly via: number | undefined;
  readonly dev: string | undefined;
  readonly onlink: boolean;
  readonly metric: number;
}

export interface ObservedNeigh6 extends NeighSpec6 {
  readonly permanent: boolean;
}

/** An IPv6 route with the agent's protocol (84) in the main table (`ip -6 route show proto 84`). */
export interface ObservedRoute6 {
  readonly dst: IpPrefix;
  readonly type: string;
  readonly via: Ip | undefined;
  readonly dev: string | undefined;
  readonly onlink: boolean;
  readonly metric: number;
}

export interface ActualState {
  readonly links: readonly ObservedLink[];
  /** IPv4 addresses on our links. */
  readonly addresses: readonly AddrSpec[];
  /** IPv4 neighbours on our links. */
  readonly neighbours: readonly ObservedNeigh[];
  /** FDB entries with an IPv4 remote on our links. */
  readonly fdb: readonly FdbSpec[];
  /** Every route of the agent's protocol (84) in the main table. */
  readonly routes: readonly ObservedRoute[];
  /** IPv6 addresses on our links, link-local ones (the kernel's) left out. */
  readonly addresses6: readonly AddrSpec6[];
  /** IPv6 neighbours on our links. */
  readonly neighbours6: readonly ObservedNeigh6[];
  /** Every IPv6 route of the agent's protocol (84) in the main table. */
  readonly routes6: readonly ObservedRoute6[];
}

export type Program = 'ip' | 'bridge';
export type ObjectKind = 'link' | 'addr' | 'neigh' | 'fdb' | 'route';

/** One `ip -batch` / `bridge -batch` line. */
export interface KernelCommand {
  readonly program: Program;
  readonly kind: ObjectKind;
  readonly line: string;
}

export interface LineFailure {
  /** The failing line, when the program said which one. */
  readonly line: string | undefined;
  readonly message: string;
}

/** How the reconciler reaches a kernel (the system one, or FakeKernel in tests). */
export interface KernelPort {
  /** Throws when the state cannot be read. */
  read(): Promise<ActualState>;
  /** Runs lines in one batch that goes on past failing lines; returns the failures. */
  execute(program: Program, lines: readonly string[]): Promise<LineFailure[]>;
}
