/**
 * Names Twill gives host-side objects, derived only from the attachment so that any later
 * process (DEL, GC, a restarted agent) finds them again.
 */
import { VETH_ALIAS_PREFIX, VETH_HASH_LEN, VETH_PREFIX, VETH_TMP_PREFIX } from '../common/constants.js';
import type { Attachment } from '../ipam/types.js';
import { sha256Hex } from './sha256.js';

export function hostVethName(a: Attachment): string {
  const digest = sha256Hex(`${a.containerId}/${a.ifName}`);
  return `${VETH_PREFIX}${digest.slice(0, VETH_HASH_LEN)}`;
}

function hasPrefixAndHex(name: string, prefix: string): boolean {
  return name.length === prefix.length + VETH_HASH_LEN && name.startsWith(prefix) && /^[0-9a-f]+$/.test(name.slice(prefix.length));
}

export function isOurVeth(name: string): boolean {
  return hasPrefixAndHex(name, VETH_PREFIX);
}

/** A fresh temporary host-veth name (`twn` + 12 random hex); unique per ADD. */
export function tmpVethName(random: () => number = Math.random): string {
  const hex = (): string => Math.floor(random() * 0x1000000).toString(16).padStart(6, '0');
  return `${VETH_TMP_PREFIX}${hex()}${hex()}`;
}

export function isTmpVeth(name: string): boolean {
  return hasPrefixAndHex(name, VETH_TMP_PREFIX);
}

/** ifalias on the host-side veth: `twill/<network>/<containerId>/<ifName>`. */
export function renderVethAlias(network: string, a: Attachment): string {
  return `${VETH_ALIAS_PREFIX}${network}/${a.containerId}/${a.ifName}`;
}

/** What `ip -json -details link show` says about a link, as far as ownership goes. */
export interface LinkFacts {
  ifalias?: string;
  linkinfo?: { info_kind?: string };
}

/**
 * May ADD replace the existing host link that has this attachment's veth name? Only when it is a veth
 * whose alias names this very attachment (a retried ADD): anything else is not ours to delete.
 */
export function isStaleOwnVeth(link: LinkFacts, alias: string): boolean {
  return link.linkinfo?.info_kind === 'veth' && link.ifalias === alias;
}

export function parseVethAlias(alias: string): { network: string; attachment: Attachment } | undefined {
  if (!alias.startsWith(VETH_ALIAS_PREFIX)) return undefined;
  const parts = alias.slice(VETH_ALIAS_PREFIX.length).split('/');
  if (parts.length !== 3 || parts.some((p) => p === '')) return undefined;
  const [network, containerId, ifName] = parts as [string, string, string];
  return { network, attachment: { containerId, ifName } };
}
