/**
 * Twill's host-side veths in the namespace the runner works in, with the attachment each one's
 * ifalias names. One `ip -json link show type veth`; used by GC and by `twill ipam check`.
 */
import { ipBatch, parseJsonLines, type CommandRunner } from '../dataplane/command.js';
import type { Attachment } from '../ipam/types.js';
import { isOurVeth, parseVethAlias } from './naming.js';

export interface HostVeth {
  name: string;
  /** From the ifalias; undefined for a veth whose alias was never set (an ADD killed in between). */
  owner?: { network: string; attachment: Attachment };
}

export function listHostVeths(runner: CommandRunner): HostVeth[] {
  const out = ipBatch(runner, ['link show type veth'], { json: true, what: 'listing veths' });
  const veths: HostVeth[] = [];
  for (const link of parseJsonLines(out).flat() as Array<{ ifname?: string; ifalias?: string }>) {
    const name = link.ifname ?? '';
    if (!isOurVeth(name)) continue;
    const owner = link.ifalias ? parseVethAlias(link.ifalias) : undefined;
    veths.push(owner ? { name, owner } : { name });
  }
  return veths;
}
