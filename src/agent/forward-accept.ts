/**
 * Forwarding through a foreign firewall (flannel's and Calico's answer). An accept in Twill's own
 * nftables table does not stop other base chains at the forward hook: a DROP policy in iptables'
 * `filter FORWARD` (Docker sets one) still drops pod traffic. So, when that chain exists, Twill
 * inserts two rules at its top, for the cluster network as source and as destination, marked with
 * the comment FORWARD_COMMENT, kept present (no duplicates, stale networks removed) on every
 * reconcile and removed by removeForwardAccepts (uninstall). They go in through `iptables` itself
 * (iptables-nft or legacy, whichever the node uses), since the chain is iptables'. Nothing is
 * created when the chain does not exist; nothing is done when `iptables` is not installed.
 * Dual stack: the same two accepts for the cluster's IPv6 network through `ip6tables` (its own
 * FORWARD chain, nft family ip6), only when the cluster has one (ensureForwardAccepts6).
 */
import type { AsyncCommandRunner } from '../dataplane/async-command.js';
import { formatCidr, type Cidr } from '../net/ipv4.js';
import { formatPrefix, type IpPrefix } from '../net/ip.js';

/** The comment on every rule Twill puts in a foreign chain: how an operator (and Twill) recognises them. */
export const FORWARD_COMMENT = 'twill: allow pod network forwarding';
const CHAIN = 'FORWARD';

/** The iptables of one family: `iptables` / `ip6tables`, and the nft family their tables live in. */
interface Tool {
  readonly bin: 'iptables' | 'ip6tables';
  readonly nftFamily: 'ip' | 'ip6';
}
const V4: Tool = { bin: 'iptables', nftFamily: 'ip' };
/** Dual stack: the same accepts for the cluster's IPv6 network in ip6tables' filter FORWARD. */
const V6: Tool = { bin: 'ip6tables', nftFamily: 'ip6' };
const ipt = (t: Tool): string[] => [t.bin, '-w', '5'];

/** Rule specs (after `-A FORWARD`) Twill wants for the cluster network. */
export function forwardAcceptRules(clusterNetwork: Cidr | IpPrefix): string[][] {
  const net = 'family' in clusterNetwork ? formatPrefix(clusterNetwork) : formatCidr(clusterNetwork);
  const spec = (dir: '-s' | '-d') => [dir, net, '-m', 'comment', '--comment', FORWARD_COMMENT, '-j', 'ACCEPT'];
  return [spec('-s'), spec('-d')];
}

/** Splits one `iptables -S` line into words, undoing its double quotes. */
export function splitRuleLine(line: string): string[] {
  const words: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] as string));
  return words;
}

/** Twill's rules in `iptables -S FORWARD` output, as specs (without `-A FORWARD`), in order. */
export function parseTwillRules(text: string): string[][] {
  const out: string[][] = [];
  for (const line of text.split('\n')) {
    const w = splitRuleLine(line.trim());
    if (w[0] !== '-A' || w[1] !== CHAIN) continue;
    const i = w.indexOf('--comment');
    if (i > 0 && w[i + 1] === FORWARD_COMMENT) out.push(w.slice(2));
  }
  return out;
}

/** What to delete (duplicates and stale rules) and insert (missing rules). Pure. */
export function planForwardAccepts(have: readonly string[][], want: readonly string[][]): { del: string[][]; ins: string[][] } {
  const key = (r: readonly string[]) => r.join('\u0000');
  const wanted = new Set(want.map(key));
  const seen = new Set<string>();
  const del: string[][] = [];
  for (const r of have) {
    const k = key(r);
    if (!wanted.has(k) || seen.has(k)) del.push([...r]);
    seen.add(k);
  }
  return { del, ins: want.filter((r) => !seen.has(key(r))).map((r) => [...r]) };
}

export interface ForwardAcceptResult {
  /** False when there is no iptables or no foreign FORWARD chain: nothing to do. */
  readonly present: boolean;
  readonly changed: boolean;
  readonly error?: string;
}

/** Whether iptables' filter FORWARD chain exists (without creating it); undefined: no iptables. */
async function foreignForwardChain(runner: AsyncCommandRunner, t: Tool = V4): Promise<boolean | undefined> {
  let v;
  try {
    v = await runner.run([t.bin, '-V']);
  } catch {
    return undefined;
  }
  if (v.status !== 0) return undefined;
  // iptables-nft shows built-in chains that do not exist; the nft view says whether it does.
  if (/nf_tables/.test(v.stdout)) return (await runner.run(['nft', 'list', 'chain', t.nftFamily, 'filter', CHAIN])).status === 0;
  return (await runner.run([...ipt(t), '-S', CHAIN])).status === 0;
}

async function twillRules(runner: AsyncCommandRunner, t: Tool = V4): Promise<string[][] | string> {
  const r = await runner.run([...ipt(t), '-S', CHAIN]);
  return r.status === 0 ? parseTwillRules(r.stdout) : `${t.bin} -S ${CHAIN}: ${r.stderr.trim() || `exit ${r.status}`}`;
}

async function runAll(runner: AsyncCommandRunner, argvs: string[][], bin = 'iptables'): Promise<string | undefined> {
  const errors: string[] = [];
  for (const argv of argvs) {
    const r = await runner.run(argv);
    if (r.status !== 0) errors.push(`${argv.slice(3).join(' ')}: ${r.stderr.trim() || `exit ${r.status}`}`);
  }
  return errors.length > 0 ? `${bin}: ${errors.join('; ')}` : undefined;
}

/** Keeps Twill's accepts at the top of a foreign FORWARD chain (idempotent). */
export function ensureForwardAccepts(runner: AsyncCommandRunner, clusterNetwork: Cidr): Promise<ForwardAcceptResult> {
  return ensureFor(runner, V4, forwardAcceptRules(clusterNetwork));
}

/** Dual stack: the same for the cluster's IPv6 network in ip6tables' FORWARD (when ip6tables and the chain exist). */
export function ensureForwardAccepts6(runner: AsyncCommandRunner, clusterNetwork6: IpPrefix): Promise<ForwardAcceptResult> {
  return ensureFor(runner, V6, forwardAcceptRules(clusterNetwork6));
}

async function ensureFor(runner: AsyncCommandRunner, t: Tool, want: string[][]): Promise<ForwardAcceptResult> {
  if ((await foreignForwardChain(runner, t)) !== true) return { present: false, changed: false };
  const have = await twillRules(runner, t);
  if (typeof have === 'string') return { present: true, changed: false, error: have };
  const plan = planForwardAccepts(have, want);
  if (plan.del.length === 0 && plan.ins.length === 0) return { present: true, changed: false };
  const error = await runAll(runner, [
    ...plan.del.map((r) => [...ipt(t), '-D', CHAIN, ...r]),
    ...plan.ins.reverse().map((r) => [...ipt(t), '-I', CHAIN, '1', ...r]),
  ], t.bin);
  return error === undefined ? { present: true, changed: true } : { present: true, changed: true, error };
}

/** Uninstall: removes every rule Twill put in the foreign FORWARD chain (the chain itself is not Twill's). */
export function removeForwardAccepts(runner: AsyncCommandRunner): Promise<{ removed: number; error?: string }> {
  return removeFor(runner, V4);
}

/** Uninstall, IPv6: Twill's rules in ip6tables' FORWARD. */
export function removeForwardAccepts6(runner: AsyncCommandRunner): Promise<{ removed: number; error?: string }> {
  return removeFor(runner, V6);
}

async function removeFor(runner: AsyncCommandRunner, t: Tool): Promise<{ removed: number; error?: string }> {
  if ((await foreignForwardChain(runner, t)) !== true) return { removed: 0 };
  const have = await twillRules(runner, t);
  if (typeof have === 'string') return { removed: 0, error: have };
  const error = await runAll(runner, have.map((r) => [...ipt(t), '-D', CHAIN, ...r]), t.bin);
  return error === undefined ? { removed: have.length } : { removed: have.length, error };
}
