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

/** `nft -f -` input: create-if-missing, delete, recreate: one atomic transaction. */
export function renderAgentTable(i: NftInput): { text: string; comment: string; ruleCount: number } {
  const r = agentRules(i);
  const body = [
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    ...r.forward.map((x) => `    ${x}`),
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...r.postrouting.map((x) => `    ${x}`),
    '  }',
  ].join('\n');
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
  return { text, comment, ruleCount: r.forward.length + r.postrouting.length };
}
