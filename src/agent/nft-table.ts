/** Applies the agent's nftables table only when it is missing or differs (idempotent). */
import { NFT_AGENT_TABLE } from '../common/constants.js';
import type { AsyncCommandRunner } from '../dataplane/async-command.js';
import { renderAgentTable, type NftInput } from './nft-rules.js';

export interface NftApplyResult {
  changed: boolean;
  error?: string;
}

/**
 * Reads only our table, never the whole ruleset (other tools' rules may not parse). Text output:
 * nft 1.0.6's JSON leaves out the table comment that carries our fingerprint.
 */
export async function currentTable(runner: AsyncCommandRunner): Promise<{ comment?: string; rules: number } | undefined> {
  const r = await runner.run(['nft', 'list', 'table', 'inet', NFT_AGENT_TABLE]);
  if (r.status !== 0) return undefined;
  const comment = /^\s*comment "([^"]*)"/m.exec(r.stdout)?.[1];
  const rules = r.stdout.split('\n').filter((l) => /^\s+(ip|ip6|meta|ct|iifname|oifname|counter|masquerade|accept|return)\b/.test(l)).length;
  return comment === undefined ? { rules } : { comment, rules };
}

/** Asynchronous: the agent's event loop also serves CNI calls and must not wait on nft. */
export async function ensureAgentTable(runner: AsyncCommandRunner, input: NftInput): Promise<NftApplyResult> {
  const want = renderAgentTable(input);
  const have = await currentTable(runner);
  if (have && have.comment === want.comment && have.rules === want.ruleCount) return { changed: false };
  const r = await runner.run(['nft', '-f', '-'], want.text);
  if (r.status !== 0) return { changed: false, error: `nft: ${r.stderr.trim()}` };
  return { changed: true };
}
