/**
 * Twill's host-side veths in the namespace the runner works in, with the attachment each one's
 * ifalias names. One `ip -json link show type veth`; used by GC and by `twill ipam check`.
 */
import { ipBatch, parseJsonLines, type CommandRunner } from '../dataplane/command.js';
import type { Attachment } from '../ipam/types.js';
import { isOurVeth, isTmpVeth, parseVethAlias } from './naming.js';

export interface HostVeth {
  name: string;
  /**
   * From the ifalias. Undefined for a temporary-named veth an ADD has not aliased yet, or a `twl` veth
   * left by an older Twill (which set the alias after creating the veth under its final name).
   */
  owner?: { network: string; attachment: Attachment };
}

/** `includeTemporary`: also veths an ADD is configuring (or was killed configuring) under a temporary name. */
export function listHostVeths(runner: CommandRunner, opts: { includeTemporary?: boolean } = {}): HostVeth[] {
  const out = ipBatch(runner, ['link show type veth'], { json: true, what: 'listing veths' });
  const veths: HostVeth[] = [];
  for (const link of parseJsonLines(out).flat() as Array<{ ifname?: string; ifalias?: string }>) {
    const name = link.ifname ?? '';
    if (!isOurVeth(name) && !(opts.includeTemporary && isTmpVeth(name))) continue;
    const owner = link.ifalias ? parseVethAlias(link.ifalias) : undefined;
    veths.push(owner ? { name, owner } : { name });
  }
  return veths;
}
