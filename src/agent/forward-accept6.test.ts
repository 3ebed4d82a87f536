import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AsyncCommandRunner } from '../dataplane/async-command.js';
import { parsePrefixOf, type IpPrefix } from '../net/ip.js';
import { FORWARD_COMMENT, ensureForwardAccepts6, forwardAcceptRules, removeForwardAccepts6 } from './forward-accept.js';

const p = parsePrefixOf(6, 'fd00:10:244::/56', true) as IpPrefix;
const net6: IpPrefix = { family: 6, network: p.network, prefix: p.prefix };

describe('forward accepts for IPv6 (ip6tables)', () => {
  it('inserts the two accepts through ip6tables, probing nft family ip6; removes them on uninstall', async () => {
    const calls: string[] = [];
    let listing = '-P FORWARD DROP\n';
    const runner: AsyncCommandRunner = {
      run: async (argv) => {
        calls.push(argv.join(' '));
        if (argv[1] === '-V') return { status: 0, stdout: 'ip6tables v1.8.9 (nf_tables)\n', stderr: '' };
        if (argv[0] === 'nft') return { status: argv[3] === 'ip6' ? 0 : 1, stdout: '', stderr: '' };
        if (argv.includes('-I')) listing += `-A FORWARD ${argv.slice(6).map((w) => (w.includes(' ') ? `"${w}"` : w)).join(' ')}\n`;
        return { status: 0, stdout: listing, stderr: '' };
      },
    };
    assert.deepEqual(forwardAcceptRules(net6)[0], ['-s', 'fd00:10:244::/56', '-m', 'comment', '--comment', FORWARD_COMMENT, '-j', 'ACCEPT']);
    assert.deepEqual(await ensureForwardAccepts6(runner, net6), { present: true, changed: true });
    assert.ok(calls.includes('nft list chain ip6 filter FORWARD'));
    assert.deepEqual(calls.filter((c) => c.includes(' -I ')), [
      `ip6tables -w 5 -I FORWARD 1 -d fd00:10:244::/56 -m comment --comment ${FORWARD_COMMENT} -j ACCEPT`,
      `ip6tables -w 5 -I FORWARD 1 -s fd00:10:244::/56 -m comment --comment ${FORWARD_COMMENT} -j ACCEPT`,
    ]);
    assert.deepEqual(await ensureForwardAccepts6(runner, net6), { present: true, changed: false }, 'idempotent');
    const removed = await removeForwardAccepts6(runner);
    assert.equal(removed.removed, 2);
    assert.ok(calls.every((c) => !c.startsWith('iptables ')), 'IPv4 iptables is not touched');
  });
});
