/**
 * Names Twill gives host-side objects, derived only from the attachment so that any later
 * process (DEL, GC, a restarted agent) finds them again.
 */
import { VETH_ALIAS_PREFIX, VETH_HASH_LEN, VETH_PREFIX } from '../common/constants.js';
import type { Attachment } from '../ipam/types.js';
import { sha256Hex } from './sha256.js';

export function hostVethName(a: Attachment): string {
  const digest = sha256Hex(`${a.containerId}/${a.ifName}`);
  return `${VETH_PREFIX}${digest.slice(0, VETH_HASH_LEN)}`;
}

export function isOurVeth(name: string): boolean {
  return name.length === VETH_PREFIX.length + VETH_HASH_LEN && name.startsWith(VETH_PREFIX) && /^[0-9a-f]+$/.test(name.slice(VETH_PREFIX.length));
}

/** ifalias on the host-side veth: `twill/<network>/<containerId>/<ifName>`. */
export function renderVethAlias(network: string, a: Attachment): string {
  return `${VETH_ALIAS_PREFIX}${network}/${a.containerId}/${a.ifName}`;
}

export function parseVethAlias(alias: string): { network: string; attachment: Attachment } | undefined {
  if (!alias.startsWith(VETH_ALIAS_PREFIX)) return undefined;
  const parts = alias.slice(VETH_ALIAS_PREFIX.length).split('/');
  if (parts.length !== 3 || parts.some((p) => p === '')) return undefined;
  const [network, containerId, ifName] = parts as [string, string, string];
  return { network, attachment: { containerId, ifName } };
}
