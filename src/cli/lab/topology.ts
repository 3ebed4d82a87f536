/**
 * `twill lab` topology: which namespaces, links and addresses a lab of N nodes has. Pure; the
 * builder (lab.ts) turns it into `ip` calls. Underlay addresses come from documentation ranges.
 *
 *   l2: one segment 192.0.2.0/24 on bridge ul0 in the infra netns (.1 = infra, nodes .11, .12, ...)
 *   l3: two segments, 192.0.2.0/24 (odd nodes) and 198.51.100.0/24 (even nodes), on bridges ul0/ul1
 *       in the infra netns, which routes between them (a router).
 * etcd runs in the infra netns and listens on its underlay addresses.
 *
 * `--ip-family dual|ipv6` adds an IPv6 underlay beside the IPv4 one: segment k is 2001:db8:0:<k+1>::/64
 * (gateway ::1 = infra, nodes ::<10+i>), and IPv6 pod addresses from a ULA (`fd00:10:244::/56`, /64 per
 * node). `ipv6` makes the cluster IPv6-only (`EnableIPv4: false`); the IPv4 underlay stays as the lab's
 * management network (etcd is reached over it), pods and tunnels are IPv6 only.
 */
export type LabBackend = 'vxlan' | 'host-gw' | 'vxlan-direct';
export type LabTopology = 'l2' | 'l3';
export type LabIpFamily = 'ipv4' | 'ipv6' | 'dual';
export const LAB_IP_FAMILIES: readonly LabIpFamily[] = ['ipv4', 'ipv6', 'dual'];
export const LAB_DEFAULT_NETWORK6 = 'fd00:10:244::/56';

export interface LabSpec {
  name: string;
  nodes: number;
  pods: number;
  backend: LabBackend;
  topology: LabTopology;
  network: string;
  subnetLen: number;
  /** Absent in the state of labs built before dual stack: ipv4. */
  ipFamily?: LabIpFamily;
  /** IPv6 pod network (dual, ipv6); default LAB_DEFAULT_NETWORK6, /64 per node. */
  network6?: string;
}

export const labFamily = (spec: Pick<LabSpec, 'ipFamily'>): LabIpFamily => spec.ipFamily ?? 'ipv4';
export const labHasV6 = (spec: Pick<LabSpec, 'ipFamily'>): boolean => labFamily(spec) !== 'ipv4';
export const labHasV4Pods = (spec: Pick<LabSpec, 'ipFamily'>): boolean => labFamily(spec) !== 'ipv6';

export interface LabSegment {
  bridge: string;
  cidr: string;
  gateway: string;
  prefix: number;
  /** IPv6 underlay of the segment (dual, ipv6). */
  cidr6?: string;
  gateway6?: string;
}

export interface LabNode {
  name: string;
  netns: string;
  /** Link name on the infra side of the node's underlay veth. */
  infraLink: string;
  segment: number;
  address: string;
  /** IPv6 underlay address (dual, ipv6). */
  address6?: string;
  pods: Array<{ name: string; netns: string; containerId: string }>;
}

export interface LabPlan {
  spec: LabSpec;
  infraNetns: string;
  segments: LabSegment[];
  nodes: LabNode[];
  etcdClientUrl: string;
  /** Cluster network config written to the datastore (flannel format). */
  clusterConfig: Record<string, unknown>;
}

/** Every netns of every lab starts with this; `lab down` removes `<prefix><name>-*`. */
export const LAB_NETNS_PREFIX = 'tl-';
const NAME = /^[a-z0-9]{1,8}$/;

export function validateLabSpec(spec: LabSpec): string[] {
  const errors: string[] = [];
  if (!NAME.test(spec.name)) errors.push('lab name: 1-8 lower-case letters or digits');
  if (!Number.isInteger(spec.nodes) || spec.nodes < 1 || spec.nodes > 40) errors.push('--nodes: 1..40');
  if (!Number.isInteger(spec.pods) || spec.pods < 0 || spec.pods > 20) errors.push('--pods: 0..20');
  if (!LAB_IP_FAMILIES.includes(labFamily(spec))) errors.push(`--ip-family: one of ${LAB_IP_FAMILIES.join(', ')}`);
  // The plan for ipv6 exists (tested), but twilld refuses IPv6-only cluster configs until they are supported.
  else if (labFamily(spec) === 'ipv6') errors.push('--ip-family ipv6: IPv6-only clusters are not supported by twilld yet (use dual)');
  return errors;
}

/** Not errors, but worth telling the operator before building. */
export function labWarnings(spec: LabSpec): string[] {
  return spec.topology === 'l3' && spec.backend === 'host-gw'
    ? ['host-gw needs L2 adjacency: nodes on the other segment will be reported as unreachable peers (use vxlan-direct on l3)']
    : [];
}

/** One node of a lab (also used to add a node to a running lab). */
export function planNode(spec: LabSpec, i: number): LabNode {
  const base = `${LAB_NETNS_PREFIX}${spec.name}`;
  const segment = spec.topology === 'l3' ? (i - 1) % 2 : 0;
  const host = 10 + i;
  const name = `node${i}`;
  return {
    name,
    netns: `${base}-n${i}`,
    infraLink: `ul-n${i}`,
    segment,
    address: segment === 0 ? `192.0.2.${host}` : `198.51.100.${host}`,
    ...(labHasV6(spec) ? { address6: `2001:db8:0:${segment + 1}::${host}` } : {}),
    pods: Array.from({ length: spec.pods }, (_, p) => ({
      name: `${name}-pod${p + 1}`,
      netns: `${base}-n${i}p${p + 1}`,
      containerId: `lab-${spec.name}-${name}-pod${p + 1}`,
    })),
  };
}

export function planLab(spec: LabSpec): LabPlan {
  const base = `${LAB_NETNS_PREFIX}${spec.name}`;
  const v6 = (k: number) => (labHasV6(spec) ? { cidr6: `2001:db8:0:${k + 1}::/64`, gateway6: `2001:db8:0:${k + 1}::1` } : {});
  const segments: LabSegment[] = [{ bridge: 'ul0', cidr: '192.0.2.0/24', gateway: '192.0.2.1', prefix: 24, ...v6(0) }];
  if (spec.topology === 'l3') segments.push({ bridge: 'ul1', cidr: '198.51.100.0/24', gateway: '198.51.100.1', prefix: 24, ...v6(1) });
  const nodes: LabNode[] = [];
  for (let i = 1; i <= spec.nodes; i++) nodes.push(planNode(spec, i));
  const backend =
    spec.backend === 'host-gw'
      ? { Type: 'host-gw' }
      : { Type: 'vxlan', VNI: 1, Port: 8472, DirectRouting: spec.backend === 'vxlan-direct' };
  return {
    spec,
    infraNetns: `${base}-infra`,
    segments,
    nodes,
    etcdClientUrl: 'http://192.0.2.1:2379',
    clusterConfig: clusterConfigFor(spec, backend),
  };
}

/** The cluster config (flannel's keys) for the lab's address families. */
function clusterConfigFor(spec: LabSpec, backend: Record<string, unknown>): Record<string, unknown> {
  const family = labFamily(spec);
  if (family === 'ipv4') return { Network: spec.network, SubnetLen: spec.subnetLen, Backend: backend };
  const v6 = { EnableIPv6: true, IPv6Network: spec.network6 ?? LAB_DEFAULT_NETWORK6, IPv6SubnetLen: 64 };
  if (family === 'dual') return { Network: spec.network, SubnetLen: spec.subnetLen, ...v6, Backend: backend };
  return { EnableIPv4: false, ...v6, Backend: backend };
}
