/**
 * `twill uninstall`: what a node keeps of Twill once its agent is stopped, removed. Run after
 * stopping twilld (a running agent puts everything back on its next resync). Removes the accepts in a
 * foreign iptables FORWARD chain and the `inet twill` table (uninstallAgentFirewall), the plugin's
 * `ip twill_cni` table, the agent's devices (`twill.*`) and its routes (protocol 84), the route
 * protocol names, and with --cni-bin-dir the installed plugin files. Pods and their veths are the
 * runtime's: deleting the pods removes them.
 */
import { existsSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { uninstallAgentFirewall } from '../agent/nft-table.js';
import { ROUTE_PROTO, NFT_CNI_TABLE, VXLAN_DEVICE_PREFIX } from '../common/constants.js';
import type { AsyncCommandRunner } from '../dataplane/async-command.js';
import { RT_PROTOS_DIR, RT_PROTOS_FILE } from '../dataplane/rt-protos.js';

export interface UninstallOptions {
  /** Also remove `twill` and `twill-cni.js` from this CNI bin dir. */
  cniBinDir?: string;
  /** Where the route protocol names live (tests point this elsewhere). */
  rtProtosDir?: string;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export async function uninstallNode(runner: AsyncCommandRunner, o: UninstallOptions = {}): Promise<{ removed: string[]; errors: string[] }> {
  const removed: string[] = [];
  const errors: string[] = [];
  const fw = await uninstallAgentFirewall(runner);
  if (fw.error) errors.push(fw.error);
  else removed.push('nft table inet twill and the FORWARD accepts');
  if ((await runner.run(['nft', 'list', 'table', 'ip', NFT_CNI_TABLE])).status === 0) {
    const r = await runner.run(['nft', 'delete', 'table', 'ip', NFT_CNI_TABLE]);
    if (r.status === 0) removed.push(`nft table ip ${NFT_CNI_TABLE}`);
    else errors.push(`nft: ${r.stderr.trim()}`);
  }
  const routes = await runner.run(['ip', 'route', 'flush', 'proto', String(ROUTE_PROTO)]);
  if (routes.status !== 0) errors.push(`ip route flush: ${routes.stderr.trim()}`);
  const links = await runner.run(['ip', '-json', 'link', 'show']);
  const names = links.status === 0 ? (JSON.parse(links.stdout || '[]') as Array<{ ifname?: string }>).map((l) => l.ifname ?? '') : [];
  for (const name of names.filter((n) => n.startsWith(VXLAN_DEVICE_PREFIX) && IFNAME.test(n))) {
    const r = await runner.run(['ip', 'link', 'del', 'dev', name]);
    if (r.status === 0) removed.push(`link ${name}`);
    else errors.push(`ip link del ${name}: ${r.stderr.trim()}`);
  }
  const protos = path.join(o.rtProtosDir ?? RT_PROTOS_DIR, RT_PROTOS_FILE);
  if (existsSync(protos)) {
    rmSync(protos, { force: true });
    removed.push(protos);
  }
  if (o.cniBinDir !== undefined) {
    for (const f of ['twill', 'twill-cni.js']) {
      const p = path.join(o.cniBinDir, f);
      if (existsSync(p)) {
        rmSync(p, { force: true });
        removed.push(p);
      }
    }
  }
  return { removed, errors };
}
