/**
 * The explicit backend registry (no self-registration by import side effects), and binding a
 * validated backend config (src/model/cluster-config.ts) to its backend.
 */
import type { BackendConfig, BackendType } from '../model/cluster-config.js';
import { hostGwBackend } from './hostgw.js';
import type { Backend, DesiredState, LocalNode, Peer } from './types.js';
import { vxlanBackend } from './vxlan.js';

export const BACKENDS: { readonly [K in BackendType]: Backend<Extract<BackendConfig, { type: K }>> } = {
  vxlan: vxlanBackend,
  'host-gw': hostGwBackend,
};

/** A backend with its configuration applied: what the agent loop calls. */
export interface BoundBackend {
  readonly name: BackendType;
  leaseAttributes(local: LocalNode): Record<string, string>;
  podMtu(local: LocalNode): number;
  desiredState(local: LocalNode, peers: readonly Peer[]): DesiredState;
}

export function bindBackend(config: BackendConfig): BoundBackend {
  switch (config.type) {
    case 'vxlan':
      return bind('vxlan', BACKENDS.vxlan, config);
    case 'host-gw':
      return bind('host-gw', BACKENDS['host-gw'], config);
  }
}

function bind<C>(name: BackendType, backend: Backend<C>, config: C): BoundBackend {
  return {
    name,
    leaseAttributes: (local) => backend.leaseAttributes(local, config),
    podMtu: (local) => backend.podMtu(local, config),
    desiredState: (local, peers) => backend.desiredState(local, peers, config),
  };
}
