/**
 * The agent's nftables table (`inet twill`), rendered whole and replaced in one transaction:
 * forwarding allowed for pod traffic, masquerade for pod traffic leaving the cluster network
 * (flannel's four rules), and `notrack` for this node's own VXLAN packets. Pure.
 *
 * Conntrack: a nat chain makes the kernel track every packet of the namespace. Without masquerade
 * the table has no nat chain, so Twill loads no conntrack at all. With it, the outer UDP packets of
 * the VXLAN tunnels (to and from this node's address, on the tunnel port) are exempted in the raw
 * hooks, as Calico and Cilium do: they never need NAT, a per-flow entry for each would fill the
 * table, and an untracked packet cannot be rewritten by someone else's NAT rule (the checksum trap
 * of docs/design/vxlan-checksum.md). Pod↔pod packets stay tracked: kube-proxy's Service DNAT needs
 * to see the replies.
 *
 * Dual stack: the same rules per family (`ip6 saddr ...`) for the cluster's IPv6 network; the IPv6
 * masquerade only with --ip6-masq (off by default: IPv6 pod addresses are usually routable, as in
 * flannel). IPv4-only input renders exactly the table of an IPv4-only build.
 */
import { NFT_AGENT_TABLE } from '../common/constants.js';
import { formatCidr, formatIPv4, type Cidr } from '../net/ipv4.js';
import { compareIp, formatIp, formatPrefix, type Ip, type IpPrefix } from '../net/ip.js';

/** A VXLAN tunnel end on this node: its source address and UDP port. */
export interface TunnelEnd {
  local: number;
  port: number;
}

export interface NftInput {
  clusterNetwork: Cidr;
  nodeSubnet: Cidr;
  ipMasq: boolean;
  /** VXLAN tunnels of this node whose outer packets are not tracked (none: no raw chains). */
  tunnels?: readonly TunnelEnd[];
  /** Dual stack: the cluster's IPv6 network (forward accepts; masquerade with ip6Masq). */
  clusterNetwork6?: IpPrefix;
  /** This node's IPv6 pod subnet. */
  nodeSubnet6?: IpPrefix;
  /** Masquerade IPv6 pod traffic leaving the cluster network (--ip6-masq; off by default, as flannel). */
  ip6Masq?: boolean;
  /** VXLAN tunnels over an IPv6 underlay (IPv6 local address). */
  tunnels6?: readonly TunnelEnd6[];
}

/** A VXLAN tunnel end with an IPv6 source address (IPv6 underlay). */
export interface TunnelEnd6 {
  local: Ip;
  port: number;
}

/** notrack for outer VXLAN packets over an IPv6 underlay (deduplicated, sorted). */
export function notrackRules6(tunnels: readonly TunnelEnd6[]): { prerouting: string[]; output: string[] } {
  const ends = [...new Map(tunnels.map((t) => [`${formatIp(t.local)}:${t.port}`, t])).values()].sort((a, b) => compareIp(a.local, b.local) || a.port - b.port);
  return {
    prerouting: ends.map((t) => `ip6 daddr ${formatIp(t.local)} udp dport ${t.port} notrack`),
    output: ends.map((t) => `ip6 saddr ${formatIp(t.local)} udp dport ${t.port} notrack`),
  };
}

/** The raw-hook rules that exempt this node's outer VXLAN packets from conntrack (deduplicated, sorted). */
export function notrackRules(tunnels: readonly TunnelEnd[]): { prerouting: string[]; output: string[] } {
  const ends = [...new Map(tunnels.map((t) => [`${t.local}:${t.port}`, t])).values()].sort((a, b) => a.local - b.local || a.port - b.port);
  return {
    prerouting: ends.map((t) => `ip daddr ${formatIPv4(t.local)} udp dport ${t.port} notrack`),
    output: ends.map((t) => `ip saddr ${formatIPv4(t.local)} udp dport ${t.port} notrack`),
  };
}

/** Rules per chain, used to render and to recognise a table someone changed by hand. */
export function agentRules(i: NftInput): { forward: string[]; postrouting: string[] } {
  const net = formatCidr(i.clusterNetwork);
  const sub = formatCidr(i.nodeSubnet);
  const forward = [`ip saddr ${net} accept`, `ip daddr ${net} accept`];
  const postrouting: string[] = i.ipMasq
    ? [
        `ip saddr ${net} ip daddr ${net} return`,
        `ip saddr ${net} ip daddr != 224.0.0.0/4 masquerade fully-random`,
        `ip saddr != ${net} ip daddr ${sub} return`,
        `ip saddr != ${net} ip daddr ${net} masquerade fully-random`,
      ]
    : [];
  if (i.clusterNetwork6 !== undefined) {
    const net6 = formatPrefix(i.clusterNetwork6);
    forward.push(`ip6 saddr ${net6} accept`, `ip6 daddr ${net6} accept`);
    if (i.ip6Masq === true && i.nodeSubnet6 !== undefined) {
      postrouting.push(
        `ip6 saddr ${net6} ip6 daddr ${net6} return`,
        `ip6 saddr ${net6} ip6 daddr != ff00::/8 masquerade fully-random`,
        `ip6 saddr != ${net6} ip6 daddr ${formatPrefix(i.nodeSubnet6)} return`,
        `ip6 saddr != ${net6} ip6 daddr ${net6} masquerade fully-random`,
      );
    }
  }
  return { forward, postrouting };
}

/** A short stable fingerprint of the content, stored as the table's comment. */
export function fingerprint(text: string): string {
  let h = 0x811c9dc5;
  for (let k = 0; k < text.length; k++) {
    h ^= text.charCodeAt(k);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** The chains of the table as `nft list table` prints them: per chain, its declaration line then its rules. */
export type TableChains = Record<string, string[]>;

/** The chains `i` wants, in the form `nft list table` prints them (nft 1.0.6 prints these rules verbatim). */
export function agentChains(i: NftInput): TableChains {
  const r = agentRules(i);
  const chains: TableChains = { forward: ['type filter hook forward priority filter; policy accept;', ...r.forward] };
  // No masquerade, no nat chain: even an empty one would switch conntrack on for the namespace.
  if (r.postrouting.length > 0) chains['postrouting'] = ['type nat hook postrouting priority srcnat; policy accept;', ...r.postrouting];
  const nt4 = notrackRules(i.tunnels ?? []);
  const nt6 = notrackRules6(i.tunnels6 ?? []);
  const nt = { prerouting: [...nt4.prerouting, ...nt6.prerouting], output: [...nt4.output, ...nt6.output] };
  if (nt.prerouting.length > 0) {
    chains['raw-prerouting'] = ['type filter hook prerouting priority raw; policy accept;', ...nt.prerouting];
    chains['raw-output'] = ['type filter hook output priority raw; policy accept;', ...nt.output];
  }
  return chains;
}

/** `nft -f -` input: create-if-missing, delete, recreate: one atomic transaction. */
export function renderAgentTable(i: NftInput): { text: string; comment: string; chains: TableChains } {
  const chains = agentChains(i);
  const body = Object.entries(chains)
    .flatMap(([name, lines]) => [`  chain ${name} {`, ...lines.map((x) => `    ${x}`), '  }'])
    .join('\n');
  const comment = `twill:${fingerprint(body)}`;
  const text = [
    `table inet ${NFT_AGENT_TABLE} {}`,
    `delete table inet ${NFT_AGENT_TABLE}`,
    `table inet ${NFT_AGENT_TABLE} {`,
    `  comment "${comment}"`,
    body,
    '}',
    '',
  ].join('\n');
  return { text, comment, chains };
}

/** Parses `nft list table` text output into its comment and chains (pure; tested against the real nft). */
export function parseTableListing(text: string): { comment?: string; chains: TableChains } {
  const chains: TableChains = {};
  let comment: string | undefined;
  let current: string[] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const chain = /^chain (\S+) \{$/.exec(line);
    if (chain) chains[chain[1] as string] = current = [];
    else if (line === '}') current = undefined;
    else if (current !== undefined && line !== '') current.push(line);
    else if (current === undefined) comment = /^comment "([^"]*)"$/.exec(line)?.[1] ?? comment;
  }
  return comment === undefined ? { chains } : { comment, chains };
}
