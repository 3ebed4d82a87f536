/**
 * The hand-built datapath the datapath benchmark compares Twill with: two more "nodes" on the same
 * lab underlay bridge (infra netns, `ul0`), each with one pod behind a veth on a bridge (Twill's
 * bridge mode), and the backend programmed with plain `ip`/`bridge` commands, the way an engineer
 * would set it up by hand: no agent, no plugin, no nftables table.
 *
 *   host-gw (and vxlan-direct on l2, where Twill programs direct routes too):
 *     route <peer subnet> via <peer node address> dev eth0
 *   vxlan: a vxlan device with Twill's attributes (VNI and port of the cluster config, nolearning,
 *     noudpcsum, the device MTU Twill chose), its own subnet's .0/32, a permanent neighbour and FDB
 *     entry for the peer, route <peer subnet> via <peer .0> onlink.
 *
 * With `ipv6` (dual-stack labs) every hand-built node and pod also gets the IPv6 twin: node
 * 2001:db8:0:1::2<i>, pods fd00:10:245:<i>::2/64 behind gateway ::1 on the bridge, and the backend's
 * IPv6 objects (host-gw: route via the peer's IPv6 node address; vxlan: the same device carries the
 * inner IPv6 packets, with <subnet>::/128 on it, a permanent IPv6 neighbour and an onlink route).
 * Every IPv6 address is added `nodad` (the addresses are unique by construction).
 *
 * The namespaces are named `tl-<lab>-h<N>` / `tl-<lab>-h<N>p`, so the lab's own `labDown` removes
 * them with the lab. Pure rendering (`renderHandBuilt`) is separate from running it.
 */
import type { LabBackend } from '../src/cli/lab/topology.js';

export interface HandNode {
  netns: string;
  podNetns: string;
  infraLink: string;
  address: string;
  subnet: string;
  gateway: string;
  podIp: string;
  vtepMac: string;
  address6: string;
  subnet6: string;
  gateway6: string;
  podIp6: string;
}

export interface HandSpec {
  lab: string;
  infraNetns: string;
  underlayBridge: string;
  underlayPrefix: number;
  underlayGateway: string;
  backend: LabBackend;
  vni: number;
  port: number;
  /** MTU of the pods' eth0 (and host veth), read from Twill's pod. */
  podMtu: number;
  /** MTU of the vxlan device, read from Twill's `twill.<vni>`. */
  vxlanMtu: number;
  /** Also build the IPv6 side (needs an IPv6 underlay on the lab's segment). */
  ipv6?: boolean;
}

/** The hand-built node i (1..9): underlay 192.0.2.2<i>, pod subnet 10.245.<i>.0/24. */
export function handNode(lab: string, i: number): HandNode {
  return {
    netns: `tl-${lab}-h${i}`,
    podNetns: `tl-${lab}-h${i}p`,
    infraLink: `ul-h${i}`,
    address: `192.0.2.${20 + i}`,
    subnet: `10.245.${i}.0/24`,
    gateway: `10.245.${i}.1`,
    podIp: `10.245.${i}.2`,
    vtepMac: `0e:68:00:00:00:${i.toString(16).padStart(2, '0')}`,
    address6: `2001:db8:0:1::${20 + i}`,
    subnet6: `fd00:10:245:${i}::/64`,
    gateway6: `fd00:10:245:${i}::1`,
    podIp6: `fd00:10:245:${i}::2`,
  };
}

export const HAND_VXLAN_DEV = 'vxh';

/** `ip -batch` lines per namespace, in the order they must run, for the pair of nodes `pair`. */
export function renderHandBuilt(spec: HandSpec, pair: readonly [number, number]): Array<{ netns: string; lines: string[] }> {
  const nodes = pair.map((i) => handNode(spec.lab, i));
  const out: Array<{ netns: string; lines: string[] }> = [];
  for (const [k, n] of nodes.entries()) {
    const peer = nodes[1 - k] as HandNode;
    out.push({
      netns: spec.infraNetns,
      lines: [`link add ${n.infraLink} type veth peer name eth0 netns /run/netns/${n.netns}`, `link set ${n.infraLink} master ${spec.underlayBridge} up`],
    });
    const node = [
      'link set lo up',
      'link set eth0 up',
      `addr add ${n.address}/${spec.underlayPrefix} dev eth0`,
      `route add default via ${spec.underlayGateway} dev eth0`,
      'link add cni0 type bridge',
      `addr add ${n.gateway}/24 dev cni0`,
      'link set cni0 up',
      `link add veth0 mtu ${spec.podMtu} type veth peer name eth0 mtu ${spec.podMtu} netns /run/netns/${n.podNetns}`,
      'link set veth0 master cni0 up',
    ];
    if (spec.ipv6) node.push(`addr add ${n.address6}/64 dev eth0 nodad`, `addr add ${n.gateway6}/64 dev cni0 nodad`);
    const peerNet6 = peer.subnet6.replace(/\/64$/, '');
    const peerSubnetBase = peer.subnet.replace(/\/24$/, '');
    if (spec.backend === 'vxlan') {
      node.push(
        `link add ${HAND_VXLAN_DEV} address ${n.vtepMac} mtu ${spec.vxlanMtu} type vxlan id ${spec.vni} local ${n.address} dev eth0 dstport ${spec.port} nolearning noudpcsum`,
        `link set ${HAND_VXLAN_DEV} up`,
        `addr add ${n.subnet.replace(/\/24$/, '')}/32 dev ${HAND_VXLAN_DEV}`,
        `neigh replace ${peerSubnetBase} lladdr ${peer.vtepMac} dev ${HAND_VXLAN_DEV} nud permanent`,
        `route add ${peer.subnet} via ${peerSubnetBase} dev ${HAND_VXLAN_DEV} onlink`,
      );
      if (spec.ipv6) {
        node.push(
          `addr add ${n.subnet6.replace(/\/64$/, '')}/128 dev ${HAND_VXLAN_DEV} nodad`,
          `neigh replace ${peerNet6} lladdr ${peer.vtepMac} dev ${HAND_VXLAN_DEV} nud permanent`,
          `route add ${peer.subnet6} via ${peerNet6} dev ${HAND_VXLAN_DEV} onlink`,
        );
      }
    } else {
      node.push(`route add ${peer.subnet} via ${peer.address} dev eth0`);
      if (spec.ipv6) node.push(`route add ${peer.subnet6} via ${peer.address6} dev eth0`);
    }
    out.push({ netns: n.netns, lines: node });
    const pod = ['link set lo up', `addr add ${n.podIp}/24 dev eth0`];
    if (spec.ipv6) pod.push(`addr add ${n.podIp6}/64 dev eth0 nodad`);
    pod.push('link set eth0 up', `route add default via ${n.gateway} dev eth0`);
    if (spec.ipv6) pod.push(`route add default via ${n.gateway6} dev eth0`);
    out.push({ netns: n.podNetns, lines: pod });
  }
  return out;
}

/** The FDB entries (`bridge -batch`) of the vxlan hand-built nodes; none for the routed backends. */
export function renderHandFdb(spec: HandSpec, pair: readonly [number, number]): Array<{ netns: string; lines: string[] }> {
  if (spec.backend !== 'vxlan') return [];
  const nodes = pair.map((i) => handNode(spec.lab, i));
  return nodes.map((n, k) => {
    const peer = nodes[1 - k] as HandNode;
    return { netns: n.netns, lines: [`fdb replace ${peer.vtepMac} dev ${HAND_VXLAN_DEV} dst ${peer.address} self permanent`] };
  });
}
