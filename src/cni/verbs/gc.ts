/**
 * GC (spec 1.1): release every reservation and remove every host-side veth of this network whose
 * attachment is not in `cni.dev/valid-attachments`. Works without the pod netns (libcni may call
 * it after the sandbox is gone).
 *
 * Veths: an aliased one (final or temporary name) goes when its alias names this network and an
 * attachment not in the list. An un-aliased temporary one is an ADD in the middle of its host batch
 * and is never touched (ADD renames to the `twl` name only after the alias, so an un-aliased `twl`
 * veth is a leftover of an older Twill and goes as before).
 *
 * The list arriving as `null` means "no valid attachments" (libcni sends an empty Go slice so).
 * The key missing altogether is an error: a runtime that sends no list must not wipe the node.
 */
import { ErrorCode, TwillError } from '../../common/errors.js';
import { collectGarbage } from '../../ipam/allocator.js';
import { FsIpamStore, V6_CODEC } from '../../ipam/fs-store.js';
import { formatIp } from '../../net/ip.js';
import { attachmentKey, type Attachment } from '../../ipam/types.js';
import { formatIPv4 } from '../../net/ipv4.js';
import type { NetConf } from '../config.js';
import type { CniDeps } from '../deps.js';
import { listHostVeths } from '../host-veths.js';
import { hostVethName, isOurVeth } from '../naming.js';
import { ipamDataDir } from '../pod-network.js';
import { removeLink } from './add.js';

export function validAttachments(conf: NetConf): Attachment[] {
  const raw = 'cni.dev/valid-attachments' in conf ? conf['cni.dev/valid-attachments'] : conf['cni.dev/attachments'];
  if (raw === undefined && !('cni.dev/valid-attachments' in conf) && !('cni.dev/attachments' in conf)) {
    throw new TwillError(ErrorCode.InvalidConfig, 'GC needs cni.dev/valid-attachments in the network configuration');
  }
  return (raw ?? []).map((a) => ({ containerId: a.containerID, ifName: a.ifname }));
}

export function cmdGc(conf: NetConf, deps: CniDeps): void {
  const valid = validAttachments(conf);
  const keep = new Set(valid.map(attachmentKey));
  const keepNames = new Set(valid.map(hostVethName));
  const store = FsIpamStore.openExisting(ipamDataDir(conf), conf.name);
  const released = store ? collectGarbage(store, valid) : [];
  const store6 = store ? FsIpamStore.openExisting(ipamDataDir(conf), conf.name, V6_CODEC) : undefined;
  const released6 = store6 ? collectGarbage(store6, valid) : [];

  const stale = listHostVeths(deps.runner, { includeTemporary: true })
    .filter(({ name, owner }) => (owner ? owner.network === conf.name && !keep.has(attachmentKey(owner.attachment)) : isOurVeth(name) && !keepNames.has(name)))
    .map((v) => v.name);
  for (const name of stale) removeLink(deps, name);
  deps.log.info('gc done', { valid: valid.length, released: [...released.map((r) => formatIPv4(r.ip)), ...released6.map((r) => formatIp({ family: 6, value: r.ip }))], removedLinks: stale });
}
