/**
 * The agent's firewall state against the real nft and iptables: the "is the table in place" check
 * reads what nft prints (not the renderer's text); the accepts Twill puts into a foreign FORWARD
 * chain (Docker's `iptables -P FORWARD DROP`) are idempotent and removed on uninstall; and pods on
 * different nodes of a lab reach each other with that DROP policy on every node.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FORWARD_COMMENT, removeForwardAccepts } from '../../src/agent/forward-accept.js';
import { agentTableInSync, ensureAgentTable, uninstallAgentFirewall } from '../../src/agent/nft-table.js';
import { spawnAsyncRunner, type AsyncCommandRunner } from '../../src/dataplane/async-command.js';
import { inNetns } from '../../src/dataplane/command.js';
import { parseCidr } from '../../src/net/ipv4.js';
import { must, sh, withScope } from './harness.js';
import { inNs, nodeOf, podIp, podPing, waitReconciles, withLab } from './lab-helpers.js';

const cidr = (s: string) => parseCidr(s, true) as { network: number; prefix: number };
const input = { clusterNetwork: cidr('10.244.0.0/16'), nodeSubnet: cidr('10.244.7.0/24'), ipMasq: true, tunnels: [{ local: 0xc0000207, port: 8472 }] };
const nsRunner = (netns: string): AsyncCommandRunner => ({ run: (argv, stdin) => spawnAsyncRunner.run(inNetns(netns, argv), stdin) });
const iptablesMissing = sh(['iptables', '-V']).status !== 0 ? 'iptables is not installed' : undefined;

/** Twill's rules in the namespace's iptables FORWARD chain, as `iptables -S` prints them. */
function twillForwardRules(ns: string): string[] {
  return must(['ip', 'netns', 'exec', ns, 'iptables', '-S', 'FORWARD']).split('\n').filter((l) => l.includes(FORWARD_COMMENT));
}

describe('agent firewall (real nft / iptables)', { timeout: 300_000 }, () => {
  it('the in-sync check reads what the real nft prints: in sync after apply, "changed" after hand edits, repaired', async () => {
    await withScope(async (s) => {
      const ns = s.netns('nft-');
      const runner = nsRunner(`/run/netns/${ns}`);
      assert.equal(await agentTableInSync(runner, input), false, 'no table yet');
      assert.deepEqual(await ensureAgentTable(runner, input), { changed: true });
      assert.equal(await agentTableInSync(runner, input), true, 'the real nft listing matches');
      assert.deepEqual(await ensureAgentTable(runner, input), { changed: false });
      // A rule added by hand.
      must(['ip', 'netns', 'exec', ns, 'nft', 'add', 'rule', 'inet', 'twill', 'forward', 'counter']);
      assert.equal(await agentTableInSync(runner, input), false, 'an added rule shows');
      assert.deepEqual(await ensureAgentTable(runner, input), { changed: true });
      assert.equal(await agentTableInSync(runner, input), true);
      // A rule changed in place: same rule count, same table comment.
      const handle = /ip saddr 10\.244\.0\.0\/16 accept # handle (\d+)/.exec(must(['ip', 'netns', 'exec', ns, 'nft', '-a', 'list', 'chain', 'inet', 'twill', 'forward']))?.[1];
      assert.ok(handle, 'handle of the first forward rule');
      must(['ip', 'netns', 'exec', ns, 'nft', 'replace', 'rule', 'inet', 'twill', 'forward', 'handle', handle, 'ip', 'saddr', '10.99.0.0/16', 'accept']);
      assert.equal(await agentTableInSync(runner, input), false, 'a rule edited in place shows');
      assert.deepEqual(await ensureAgentTable(runner, input), { changed: true });
      assert.equal(await agentTableInSync(runner, input), true);
      assert.equal(await agentTableInSync(runner, { ...input, ipMasq: false }), false, 'a different wanted table is not "in sync"');
      // Without masquerade and tunnels: only the forward chain, no nat chain, no raw chains.
      const bare = { ...input, ipMasq: false, tunnels: [] };
      assert.deepEqual(await ensureAgentTable(runner, bare), { changed: true });
      assert.equal(await agentTableInSync(runner, bare), true, 'the real nft listing matches the bare table');
      assert.doesNotMatch(must(['ip', 'netns', 'exec', ns, 'nft', 'list', 'table', 'inet', 'twill']), /hook (postrouting|prerouting|output)/, 'no nat or raw chain');
    });
  });

  it('accepts in a foreign FORWARD chain: none without one, once each with one, duplicates and stale ones fixed, gone on uninstall', { skip: iptablesMissing }, async () => {
    await withScope(async (s) => {
      const ns = s.netns('ipt-');
      const runner = nsRunner(`/run/netns/${ns}`);
      await ensureAgentTable(runner, input);
      assert.doesNotMatch(must(['ip', 'netns', 'exec', ns, 'nft', 'list', 'ruleset']), /table ip filter/, 'no foreign chain: nothing created');
      must(['ip', 'netns', 'exec', ns, 'iptables', '-P', 'FORWARD', 'DROP']);
      must(['ip', 'netns', 'exec', ns, 'iptables', '-A', 'FORWARD', '-s', '10.99.0.0/16', '-j', 'ACCEPT']);
      assert.equal((await ensureAgentTable(runner, input)).changed, true);
      const want = [
        `-A FORWARD -s 10.244.0.0/16 -m comment --comment "${FORWARD_COMMENT}" -j ACCEPT`,
        `-A FORWARD -d 10.244.0.0/16 -m comment --comment "${FORWARD_COMMENT}" -j ACCEPT`,
      ];
      assert.deepEqual(twillForwardRules(ns), want);
      assert.match(must(['ip', 'netns', 'exec', ns, 'iptables', '-S', 'FORWARD']), new RegExp(`^-P FORWARD DROP\\n${want[0]}\\n`), 'at the top of the chain');
      assert.deepEqual(await ensureAgentTable(runner, input), { changed: false }, 'idempotent');
      must(['ip', 'netns', 'exec', ns, 'iptables', '-A', 'FORWARD', '-d', '10.244.0.0/16', '-m', 'comment', '--comment', FORWARD_COMMENT, '-j', 'ACCEPT']);
      assert.equal((await ensureAgentTable(runner, input)).changed, true);
      assert.deepEqual(twillForwardRules(ns), want, 'the duplicate went');
      await ensureAgentTable(runner, { ...input, clusterNetwork: cidr('10.50.0.0/16') });
      assert.deepEqual(twillForwardRules(ns), want.map((l) => l.replace('10.244.0.0/16', '10.50.0.0/16')), 'a changed cluster network replaces them');
      assert.deepEqual(await uninstallAgentFirewall(runner), {});
      assert.deepEqual(twillForwardRules(ns), []);
      const rest = must(['ip', 'netns', 'exec', ns, 'iptables', '-S', 'FORWARD']);
      assert.equal(rest, '-P FORWARD DROP\n-A FORWARD -s 10.99.0.0/16 -j ACCEPT\n', 'the foreign chain is as it was');
      assert.equal(sh(['ip', 'netns', 'exec', ns, 'nft', 'list', 'table', 'inet', 'twill']).status !== 0, true, 'Twill\'s table is gone');
      assert.deepEqual(await uninstallAgentFirewall(runner), {}, 'uninstall is idempotent');
    });
  });

  it('lab: pods on different nodes reach each other with iptables -P FORWARD DROP on every node; without Twill\'s accepts they do not', { skip: iptablesMissing, timeout: 180_000 }, async () => {
    await withLab({ nodes: 2, pods: 1, backend: 'vxlan', topology: 'l2' }, async ({ state }) => {
      const nodes = state.plan.nodes;
      for (const n of nodes) inNs(n.netns, ['iptables', '-P', 'FORWARD', 'DROP']);
      for (const n of nodes) await waitReconciles(state, n.name, 2);
      const [p1, p2] = ['node1-pod1', 'node2-pod1'];
      for (const n of nodes) assert.equal(twillForwardRules(n.netns).length, 2, `${n.name}: Twill's accepts are in FORWARD`);
      assert.ok(podPing(state, p1, podIp(state, p2)), 'pod1 -> pod2 across nodes with FORWARD DROP');
      assert.ok(podPing(state, p2, podIp(state, p1)), 'pod2 -> pod1');
      // Control: the agents paused (so no resync puts the rules back), the accepts removed: traffic stops.
      const pids = nodes.map((n) => state.pids[`twilld-${n.name}`] as number);
      for (const pid of pids) process.kill(pid, 'SIGSTOP');
      try {
        for (const n of nodes) await removeForwardAccepts(nsRunner(`/run/netns/${n.netns}`));
        assert.equal(sh(['ip', 'netns', 'exec', nodeOf(state, 'node1').pods[0]?.netns as string, 'ping', '-c', '2', '-W', '1', podIp(state, p2)]).status !== 0, true, 'control: FORWARD DROP stops pod traffic without Twill\'s accepts');
      } finally {
        for (const pid of pids) process.kill(pid, 'SIGCONT');
      }
      for (const n of nodes) await waitReconciles(state, n.name, 2);
      assert.ok(podPing(state, p1, podIp(state, p2)), 'restored by the next resync');
    });
  });

  it('lab: the outer VXLAN packets are not tracked, the pod packets are (masquerade on); control: without the raw chains they are', { timeout: 180_000 }, async () => {
    await withLab({ nodes: 2, pods: 1, backend: 'vxlan', topology: 'l2' }, async ({ state }) => {
      const nodes = state.plan.nodes;
      const entries = (ns: string) => inNs(ns, ['cat', '/proc/net/nf_conntrack']).split('\n').filter((l) => l.trim() !== '');
      const outer = (ns: string) => entries(ns).filter((l) => / udp /.test(l) && /dport=8472\b/.test(l));
      const inner = (ns: string, dst: string) => entries(ns).filter((l) => / icmp /.test(l) && l.includes(`dst=${dst} `));
      const [p1, p2] = ['node1-pod1', 'node2-pod1'];
      const dst = podIp(state, p2);
      for (const n of nodes) assert.match(inNs(n.netns, ['nft', 'list', 'table', 'inet', 'twill']), /udp dport 8472 notrack/, `${n.name}: raw chains in Twill's table`);
      assert.ok(podPing(state, p1, dst), 'pod1 -> pod2 across nodes');
      for (const n of nodes) {
        assert.ok(inner(n.netns, dst).length > 0, `${n.name}: conntrack is on (masquerade) and tracks the pod packets`);
        assert.deepEqual(outer(n.netns), [], `${n.name}: no conntrack entry for the outer VXLAN packets`);
      }
      // Control: agents paused, the raw chains emptied by hand: the outer packets are tracked again.
      const pids = nodes.map((n) => state.pids[`twilld-${n.name}`] as number);
      for (const pid of pids) process.kill(pid, 'SIGSTOP');
      try {
        for (const n of nodes) for (const c of ['raw-prerouting', 'raw-output']) inNs(n.netns, ['nft', 'flush', 'chain', 'inet', 'twill', c]);
        assert.ok(podPing(state, p1, dst), 'pod1 -> pod2 without the raw rules');
        assert.ok(outer(nodes[0]?.netns as string).length > 0, 'control: without notrack the outer VXLAN flow gets a conntrack entry');
      } finally {
        for (const pid of pids) process.kill(pid, 'SIGCONT');
      }
      for (const n of nodes) await waitReconciles(state, n.name, 2);
      for (const n of nodes) assert.match(inNs(n.netns, ['nft', 'list', 'table', 'inet', 'twill']), /udp dport 8472 notrack/, `${n.name}: the next resync puts the raw rules back`);
    });
  });
});
