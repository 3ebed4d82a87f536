/**
 * What ADD writes into the kernel, rendered as `ip -batch` lines and nft text. Pure: every name
 * and address here was validated or computed from numbers before it reaches these functions.
 */
import { CNI_ROUTE_PROTO, NFT_CNI_TABLE } from '../common/constants.js';
import { formatCidr, formatIPv4, macForIPv4 } from '../net/ipv4.js';
import type { CniResult } from './result.js';
import type { PodNetwork } from './pod-network.js';

export interface AddPlan {
  net: PodNetwork;
  network: string;
  netns: string;
  ifName: string;
  hostVeth: string;
  /** The name the veth is created and configured under, renamed to `hostVeth` once complete. */
  tmpVeth: string;
  alias: string;
  ip: number;
  /** True when a host link of this name exists already and is this attachment's (a retried ADD): replaced. */
  replaceExisting: boolean;
  /** IPv4 addresses (`a.b.c.d/n`) on Twill's bridge other than the current gateway: removed. */
  staleBridgeAddrs?: readonly string[];
}

export const podMac = (ip: number): string => macForIPv4(ip, 0x0a);
export const hostMac = (ip: number): string => macForIPv4(ip, 0x0e);

/** The pod's address with the prefix it sees: the subnet's in `bridge` mode, /32 in `routed` mode. */
export function podPrefix(net: PodNetwork): number {
  return net.mode === 'routed' ? 32 : net.subnet.prefix;
}

/**
 * Host side: the veth pair (pod end created directly inside the pod netns) under a temporary name,
 * its alias, bridge port or /32 route. The rename to the final name comes after the alias (a veth
 * cannot be renamed while up): GC never sees an un-aliased `twl` veth, and until the rename a
 * failing ADD owns a name no other ADD uses.
 */
export function renderHostAdd(p: AddPlan): string[] {
  const { net } = p;
  const t = p.tmpVeth;
  const lines: string[] = [];
  if (p.replaceExisting) lines.push(`link del ${p.hostVeth}`);
  lines.push(
    `link add ${t} mtu ${net.mtu} address ${hostMac(p.ip)} type veth peer name ${p.ifName} mtu ${net.mtu} address ${podMac(p.ip)} netns ${p.netns}`,
    `link set dev ${t} alias ${p.alias}`,
  );
  if (net.mode === 'bridge') {
    lines.push(
      `addr replace ${formatIPv4(net.gateway)}/${net.subnet.prefix} dev ${net.bridge}`,
      ...(p.staleBridgeAddrs ?? []).map((a) => `addr del ${a} dev ${net.bridge}`),
      `link set dev ${net.bridge} up`,
      `link set dev ${t} master ${net.bridge}`,
    );
    if (net.hairpin) lines.push(`link set dev ${t} type bridge_slave hairpin on`);
    lines.push(renameLine(p), `link set dev ${p.hostVeth} up`);
  } else {
    lines.push(renameLine(p));
    lines.push(
      `link set dev ${p.hostVeth} up`,
      `route replace ${formatIPv4(p.ip)}/32 dev ${p.hostVeth} proto ${CNI_ROUTE_PROTO} scope link`,
    );
  }
  return lines;
}

/** The line of `renderHostAdd` after which the veth has its final name. */
export function renameLine(p: AddPlan): string {
  return `link set dev ${p.tmpVeth} name ${p.hostVeth}`;
}

/** Pod side: address, link up, routes (and in `routed` mode a permanent neighbour for the gateway). */
export function renderPodAdd(p: AddPlan): string[] {
  const { net } = p;
  const gw = formatIPv4(net.podGateway);
  const lines = [`addr add ${formatIPv4(p.ip)}/${podPrefix(net)} dev ${p.ifName}`, `link set dev ${p.ifName} up`];
  if (net.mode === 'routed') {
    lines.push(`neigh replace ${gw} lladdr ${hostMac(p.ip)} dev ${p.ifName} nud permanent`, `route add ${gw}/32 dev ${p.ifName} scope link`);
  }
  for (const r of net.routes) lines.push(`route add ${formatCidr(r.dst)} via ${formatIPv4(r.gw)} dev ${p.ifName}`);
  return lines;
}

/**
 * Masquerade for traffic leaving the cluster network (or, when the cluster network is unknown,
 * leaving the node subnet), in the plugin's own table, rewritten whole in one transaction.
 */
export function renderMasquerade(net: PodNetwork): string {
  const stay = net.clusterNetwork ? formatCidr(net.clusterNetwork) : formatCidr(net.subnet);
  const src = formatCidr(net.subnet);
  // One base chain per pod subnet, so two Twill networks on a node never flush each other's rule.
  const chain = `masq_${formatIPv4(net.subnet.network).replaceAll('.', '_')}_${net.subnet.prefix}`;
  return [
    `table ip ${NFT_CNI_TABLE} {`,
    `  chain ${chain} {`,
    '    type nat hook postrouting priority srcnat; policy accept;',
    '  }',
    '}',
    `flush chain ip ${NFT_CNI_TABLE} ${chain}`,
    `add rule ip ${NFT_CNI_TABLE} ${chain} ip saddr ${src} ip daddr != ${stay} ip daddr != 224.0.0.0/4 masquerade`,
    '',
  ].join('\n');
}

/** The ADD result: host veth (and bridge), pod interface, address, routes. */
export function addResult(p: AddPlan, cniVersion: string): CniResult {
  const { net } = p;
  const interfaces = [];
  if (net.mode === 'bridge') interfaces.push({ name: net.bridge, mac: '' });
  interfaces.push({ name: p.hostVeth, mac: hostMac(p.ip), mtu: net.mtu });
  const podIndex = interfaces.length;
  interfaces.push({ name: p.ifName, mac: podMac(p.ip), sandbox: p.netns, mtu: net.mtu });
  return {
    cniVersion,
    interfaces,
    ips: [{ address: `${formatIPv4(p.ip)}/${podPrefix(net)}`, gateway: formatIPv4(net.podGateway), interface: podIndex }],
    routes: net.routes.map((r) => ({ dst: formatCidr(r.dst), gw: formatIPv4(r.gw) })),
    dns: {},
  };
}
