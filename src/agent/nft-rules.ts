/**
 * The agent's nftables table (`inet twill`), rendered whole and replaced in one transaction:
 * forwarding allowed for pod traffic, masquerade for pod traffic leaving the cluster network
 * (flannel's four rules). Pure.
 */
import { NFT_AGENT_TABLE } from '../common/constants.js';
import { formatCidr, type Cidr } from '../net/ipv4.js';

export interface NftInput {
  clusterNetwork: Cidr;
  nodeSubnet: Cidr;
  ipMasq: boolean;
}

/** Rules per chain, used to render and to recognise a table someone changed by hand. */
export function agentRules(i: NftInput): { forward: string[]; postrouting: string[] } {
  const net = formatCidr(i.clusterNetwork);
  const sub = formatCidr(i.nodeSubnet);
  const forward = [`ip saddr ${net} accept`, `ip daddr ${net} accept`];
  const postrouting = i.ipMasq
    ? [
        `ip saddr ${net} ip daddr ${net} return`,
        `ip saddr ${net} ip daddr != 224.0.0.0/4 masquerade fully-random`,
        `ip saddr != ${net} ip daddr ${sub} return`,
        `ip saddr != ${net} ip daddr ${net} masquerade fully-random`,
      ]
    : [];
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
  return {
    forward: ['type filter hook forward priority filter; policy accept;', ...r.forward],
    postrouting: ['type nat hook postrouting priority srcnat; policy accept;', ...r.postrouting],
  };
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
