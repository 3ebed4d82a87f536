/**
 * `twill lab` topology: which namespaces, links and addresses a lab of N nodes has. Pure; the
 * builder (lab.ts) turns it into `ip` calls. Underlay addresses come from documentation ranges.
 *
 *   l2: one segment 192.0.2.0/24 on bridge ul0 in the infra netns (.1 = infra, nodes .11, .12, ...)
 *   l3: two segments, 192.0.2.0/24 (odd nodes) and 198.51.100.0/24 (even nodes), on bridges ul0/ul1
 *       in the infra netns, which routes between them (a router).
 * etcd runs in the infra netns and listens on its underlay addresses.
 */
export type LabBackend = 'vxlan' | 'host-gw' | 'vxlan-direct';
export type LabTopology = 'l2' | 'l3';

export interface LabSpec {
  name: string;
  nodes: number;
  pods: number;
  backend: LabBackend;
  topology: LabTopology;
  network: string;
  subnetLen: number;
}

export interface LabSegment {
  bridge: string;
  cidr: string;
  gateway: string;
  prefix: number;
}

export interface LabNode {
  name: string;
  netns: string;
  /** Link name on the infra side of the node's underlay veth. */
  infraLink: string;
  segment: number;
  address: string;
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
    pods: Array.from({ length: spec.pods }, (_, p) => ({
      name: `${name}-pod${p + 1}`,
      netns: `${base}-n${i}p${p + 1}`,
      containerId: `lab-${spec.name}-${name}-pod${p + 1}`,
    })),
  };
}

export function planLab(spec: LabSpec): LabPlan {
  const base = `${LAB_NETNS_PREFIX}${spec.name}`;
  const segments: LabSegment[] = [{ bridge: 'ul0', cidr: '192.0.2.0/24', gateway: '192.0.2.1', prefix: 24 }];
  if (spec.topology === 'l3') segments.push({ bridge: 'ul1', cidr: '198.51.100.0/24', gateway: '198.51.100.1', prefix: 24 });
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
    clusterConfig: { Network: spec.network, SubnetLen: spec.subnetLen, Backend: backend },
  };
}
