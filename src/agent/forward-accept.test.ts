import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AsyncCommandRunner } from '../dataplane/async-command.js';
import { parseCidr } from '../net/ipv4.js';
import { FORWARD_COMMENT, ensureForwardAccepts, forwardAcceptRules, parseTwillRules, planForwardAccepts, splitRuleLine } from './forward-accept.js';

const net = parseCidr('10.244.0.0/16', true) as { network: number; prefix: number };

// As iptables v1.8.9 (nf_tables) prints it, with Docker's rules around ours.
const LISTING = [
  '-P FORWARD DROP',
  '-A FORWARD -s 10.244.0.0/16 -m comment --comment "twill: allow pod network forwarding" -j ACCEPT',
  '-A FORWARD -d 10.244.0.0/16 -m comment --comment "twill: allow pod network forwarding" -j ACCEPT',
  '-A FORWARD -j DOCKER-USER',
  '-A FORWARD -s 10.99.0.0/16 -m comment --comment "someone else" -j ACCEPT',
  '-A FORWARD -s 10.244.0.0/16 -m comment --comment "twill: allow pod network forwarding" -j ACCEPT',
  '',
].join('\n');

describe('forward accepts in a foreign FORWARD chain', () => {
  it('parses iptables -S output: only rules with Twill\'s comment, quotes undone', () => {
    assert.deepEqual(splitRuleLine('-A FORWARD -m comment --comment "a \\"b\\" c" -j ACCEPT'), ['-A', 'FORWARD', '-m', 'comment', '--comment', 'a "b" c', '-j', 'ACCEPT']);
    const rules = parseTwillRules(LISTING);
    assert.equal(rules.length, 3);
    assert.deepEqual(rules[0], forwardAcceptRules(net)[0]);
    assert.deepEqual(rules[1], forwardAcceptRules(net)[1]);
  });
  it('plans: a duplicate and a stale network are deleted, a missing rule inserted, a complete set left alone', () => {
    const want = forwardAcceptRules(net);
    assert.deepEqual(planForwardAccepts(parseTwillRules(LISTING), want), { del: [want[0]], ins: [] });
    const other = forwardAcceptRules(parseCidr('10.50.0.0/16', true) as typeof net);
    assert.deepEqual(planForwardAccepts(other, want), { del: other, ins: want });
    assert.deepEqual(planForwardAccepts(want, want), { del: [], ins: [] });
    assert.ok(want.every((r) => r.includes(FORWARD_COMMENT)));
  });
  it('does nothing (creates no chain) without iptables, or when the FORWARD chain does not exist', async () => {
    const calls: string[] = [];
    const runner = (v: { status: number; stdout: string }, chain: number): AsyncCommandRunner => ({
      run: async (argv) => {
        calls.push(argv.join(' '));
        if (argv[1] === '-V') return { ...v, stderr: '' };
        if (argv[0] === 'nft') return { status: chain, stdout: '', stderr: '' };
        return { status: 0, stdout: '-P FORWARD ACCEPT\n', stderr: '' };
      },
    });
    assert.deepEqual(await ensureForwardAccepts(runner({ status: 127, stdout: '' }, 0), net), { present: false, changed: false });
    assert.deepEqual(await ensureForwardAccepts(runner({ status: 0, stdout: 'iptables v1.8.9 (nf_tables)\n' }, 1), net), { present: false, changed: false });
    assert.ok(!calls.some((c) => / -[IA] /.test(c)), calls.join('\n'));
    const r = await ensureForwardAccepts(runner({ status: 0, stdout: 'iptables v1.8.9 (nf_tables)\n' }, 0), net);
    assert.deepEqual(r, { present: true, changed: true });
    assert.deepEqual(calls.filter((c) => c.includes(' -I ')), [
      `iptables -w 5 -I FORWARD 1 -d 10.244.0.0/16 -m comment --comment ${FORWARD_COMMENT} -j ACCEPT`,
      `iptables -w 5 -I FORWARD 1 -s 10.244.0.0/16 -m comment --comment ${FORWARD_COMMENT} -j ACCEPT`,
    ]);
  });
});
