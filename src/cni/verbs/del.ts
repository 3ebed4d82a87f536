/**
 * DEL: idempotent. A missing netns, link or reservation is success; DEL needs no subnet, so it
 * works even when the agent's subnet file is gone.
 */
import { release } from '../../ipam/allocator.js';
import { FsIpamStore, V6_CODEC } from '../../ipam/fs-store.js';
import { formatIp } from '../../net/ip.js';
import { formatIPv4 } from '../../net/ipv4.js';
import type { NetConf } from '../config.js';
import type { CniDeps } from '../deps.js';
import type { CniEnv } from '../env.js';
import { hostVethName } from '../naming.js';
import { ipamDataDir } from '../pod-network.js';
import { removeLink } from './add.js';

export function cmdDel(env: CniEnv, conf: NetConf, deps: CniDeps): void {
  const owner = { containerId: env.containerId, ifName: env.ifName };
  const hostVeth = hostVethName(owner);
  // Deleting the host end removes the pair and, with it, the pod end and the /32 route.
  const removed = deps.host.listLinks().has(hostVeth) && removeLink(deps, hostVeth);
  const store = FsIpamStore.openExisting(ipamDataDir(conf), conf.name);
  const ip = store ? release(store, owner) : undefined;
  // Both families always: DEL needs no config of the ranges (the v6 store is simply empty without v6).
  const store6 = store ? FsIpamStore.openExisting(ipamDataDir(conf), conf.name, V6_CODEC) : undefined;
  const ip6 = store6 ? release(store6, owner) : undefined;
  deps.log.info('pod detached', {
    hostVeth,
    linkRemoved: removed,
    released: ip === undefined ? null : formatIPv4(ip),
    released6: ip6 === undefined ? null : formatIp({ family: 6, value: ip6 }),
  });
}
