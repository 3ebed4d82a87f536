/** Shared first steps of the verbs: resolving the pod network and opening the IPAM store. */
import type { NetConf } from '../config.js';
import type { CniDeps } from '../deps.js';
import { resolvePodNetwork, subnetFileOf, type PodNetwork, type PodNetwork6 } from '../pod-network.js';
import type { Range } from '../../ipam/allocator.js';

export function resolveNetwork(conf: NetConf, deps: CniDeps): PodNetwork {
  const subnetEnv = deps.host.readSubnetFile(subnetFileOf(conf, deps.subnetFile));
  const needUnderlay = conf.mtu === undefined && subnetEnv?.mtu === undefined;
  return resolvePodNetwork({ conf, subnetEnv, underlayMtu: needUnderlay ? deps.host.underlayMtu() : 0 });
}

export function rangeOf(net: PodNetwork): Range {
  return { first: net.first, last: net.last, exclude: [net.gateway] };
}

export function rangeOf6(v6: PodNetwork6): Range<bigint> {
  return { first: v6.first, last: v6.last, exclude: [v6.gateway] };
}
