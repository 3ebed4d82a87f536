/**
 * What ADD writes into the kernel, rendered as `ip -batch` lines and nft text. Pure: every name
 * and address here was validated or computed from numbers before it reaches these functions.
 */
import { CNI_ROUTE_PROTO, NFT_CNI_TABLE } from '../common/constants.js';
import { formatIp, formatPrefix } from '../net/ip.js';
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
  /** Dual stack: the pod's IPv6 address (an `Ip` value of family 6); set exactly when `net.v6` is. */
  ip6?: bigint;
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

/** The same for IPv6: the subnet's prefix in `bridge` mode, /128 in `routed` mode. */
export function podPrefix6(net: PodNetwork): number {
  return net.mode === 'routed' || !net.v6 ? 128 : net.v6.subnet.prefix;
}

const v6 = (value: bigint): string => formatIp({ family: 6, value });

/** The pod's IPv6 address and its default-route next hop, when the plan is dual stack. */
function plan6(p: AddPlan): { ip: string; gw: string; gateway: string; prefix: number } | undefined {
  if (!p.net.v6 || p.ip6 === undefined) return undefined;
  return { ip: v6(p.ip6), gw: v6(p.net.v6.podGateway), gateway: v6(p.net.v6.gateway), prefix: p.net.v6.subnet.prefix };
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
    const six = plan6(p);
    lines.push(
      `addr replace ${formatIPv4(net.gateway)}/${net.subnet.prefix} dev ${net.bridge}`,
      ...(p.staleBridgeAddrs ?? []).map((a) => `addr del ${a} dev ${net.bridge}`),
      // nodad: the gateway answers at once (no 1-2 s of tentative state delaying the pods' first packets).
      ...(six ? [`addr replace ${six.gateway}/${six.prefix} dev ${net.bridge} nodad`] : []),
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
    const six = plan6(p);
    if (six) {
      // The pod's next hop fe80::1 lives on the host veth (nodad: usable at once); the pod's /128
      // points at the veth, in the plugin's protocol like the IPv4 /32.
      lines.push(
        `addr add ${six.gw}/64 dev ${p.hostVeth} nodad`,
        `route replace ${six.ip}/128 dev ${p.hostVeth} proto ${CNI_ROUTE_PROTO}`,
      );
    }
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
  const six = plan6(p);
  if (six && net.v6) {
    // nodad: the address is usable at once (DAD would hold it tentative for ~1-2 s and drop the
    // pod's first IPv6 packets; addresses are unique by IPAM). Added before the link comes up.
    lines.splice(1, 0, `addr add ${six.ip}/${podPrefix6(net)} dev ${p.ifName} nodad`);
    if (net.mode === 'routed') {
      // As for IPv4: a permanent neighbour for the next hop, so the first packet needs no NDP round trip.
      lines.push(`neigh replace ${six.gw} lladdr ${hostMac(p.ip)} dev ${p.ifName} nud permanent`);
    }
    for (const r of net.v6.routes) lines.push(`route add ${formatPrefix(r.dst)} via ${v6(r.gw)} dev ${p.ifName}`);
  }
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
  const six = plan6(p);
  return {
    cniVersion,
    interfaces,
    ips: [
      { address: `${formatIPv4(p.ip)}/${podPrefix(net)}`, gateway: formatIPv4(net.podGateway), interface: podIndex },
      ...(six ? [{ address: `${six.ip}/${podPrefix6(net)}`, gateway: six.gw, interface: podIndex }] : []),
    ],
    routes: [
      ...net.routes.map((r) => ({ dst: formatCidr(r.dst), gw: formatIPv4(r.gw) })),
      ...(net.v6?.routes ?? []).map((r) => ({ dst: formatPrefix(r.dst), gw: v6(r.gw) })),
    ],
    dns: {},
  };
}
