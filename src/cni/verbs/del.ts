/**
 * DEL: idempotent. A missing netns, link or reservation is success; DEL needs no subnet, so it
 * works even when the agent's subnet file is gone.
 */
import { release } from '../../ipam/allocator.js';
import { FsIpamStore } from '../../ipam/fs-store.js';
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
  deps.log.info('pod detached', { hostVeth, linkRemoved: removed, released: ip === undefined ? null : formatIPv4(ip) });
}
