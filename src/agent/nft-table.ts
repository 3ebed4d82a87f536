/** Applies the agent's nftables table only when it is missing or differs (idempotent). */
import { isDeepStrictEqual } from 'node:util';
import { NFT_AGENT_TABLE } from '../common/constants.js';
import type { AsyncCommandRunner } from '../dataplane/async-command.js';
import { ensureForwardAccepts, ensureForwardAccepts6, removeForwardAccepts, removeForwardAccepts6 } from './forward-accept.js';
import { parseTableListing, renderAgentTable, type NftInput } from './nft-rules.js';

export interface NftApplyResult {
  changed: boolean;
  error?: string;
}

/**
 * Reads only our table, never the whole ruleset (other tools' rules may not parse). Text output:
 * nft 1.0.6's JSON leaves out the table comment that carries our fingerprint.
 */
export async function currentTable(runner: AsyncCommandRunner): Promise<ReturnType<typeof parseTableListing> | undefined> {
  const r = await runner.run(['nft', 'list', 'table', 'inet', NFT_AGENT_TABLE]);
  return r.status === 0 ? parseTableListing(r.stdout) : undefined;
}

/**
 * True when the live table, as the real nft prints it, is exactly what `input` renders: the
 * fingerprint comment and every chain's declaration and rules (a hand edit anywhere shows).
 */
export async function agentTableInSync(runner: AsyncCommandRunner, input: NftInput): Promise<boolean> {
  const want = renderAgentTable(input);
  const have = await currentTable(runner);
  return have !== undefined && have.comment === want.comment && isDeepStrictEqual(have.chains, want.chains);
}

/**
 * The agent's firewall state: its own table, plus the accepts in a foreign FORWARD chain
 * (forward-accept.ts). Asynchronous: the agent's event loop also serves CNI calls and must not wait on nft.
 */
export async function ensureAgentTable(runner: AsyncCommandRunner, input: NftInput): Promise<NftApplyResult> {
  const table = await ensureOwnTable(runner, input);
  const fwd = await ensureForwardAccepts(runner, input.clusterNetwork);
  // Dual stack only: an IPv4-only node runs exactly the commands it ran before.
  const fwd6: { changed: boolean; error?: string } = input.clusterNetwork6 === undefined ? { changed: false } : await ensureForwardAccepts6(runner, input.clusterNetwork6);
  const error = [table.error, fwd.error, fwd6.error].filter((e): e is string => e !== undefined).join('; ');
  const changed = table.changed || fwd.changed || fwd6.changed;
  return error === '' ? { changed } : { changed, error };
}

async function ensureOwnTable(runner: AsyncCommandRunner, input: NftInput): Promise<NftApplyResult> {
  if (await agentTableInSync(runner, input)) return { changed: false };
  const r = await runner.run(['nft', '-f', '-'], renderAgentTable(input).text);
  if (r.status !== 0) return { changed: false, error: `nft: ${r.stderr.trim()}` };
  return { changed: true };
}

/**
 * Uninstall (for a `twill` uninstall verb and the tests): removes what the agent added to the
 * node's firewall, its `inet twill` table and its accepts in a foreign FORWARD chain. Idempotent.
 */
export async function uninstallAgentFirewall(runner: AsyncCommandRunner): Promise<{ error?: string }> {
  const errors: string[] = [];
  const fwd = await removeForwardAccepts(runner);
  if (fwd.error) errors.push(fwd.error);
  const fwd6 = await removeForwardAccepts6(runner);
  if (fwd6.error) errors.push(fwd6.error);
  if ((await currentTable(runner)) !== undefined) {
    const r = await runner.run(['nft', 'delete', 'table', 'inet', NFT_AGENT_TABLE]);
    if (r.status !== 0) errors.push(`nft: ${r.stderr.trim()}`);
  }
  return errors.length > 0 ? { error: errors.join('; ') } : {};
}
