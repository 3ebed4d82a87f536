import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AsyncCommandRunner } from '../dataplane/async-command.js';
import { parseCidr } from '../net/ipv4.js';
import { agentChains, agentRules, notrackRules, renderAgentTable } from './nft-rules.js';
import { ensureAgentTable } from './nft-table.js';

const net = parseCidr('10.244.0.0/16', true) as { network: number; prefix: number };
const sub = parseCidr('10.244.7.0/24', true) as { network: number; prefix: number };
const input = { clusterNetwork: net, nodeSubnet: sub, ipMasq: true };

describe('agent nftables table', () => {
  it('renders flannel\'s four masquerade rules and forward accepts, replaced in one transaction', () => {
    assert.deepEqual(agentRules(input), {
      forward: ['ip saddr 10.244.0.0/16 accept', 'ip daddr 10.244.0.0/16 accept'],
      postrouting: [
        'ip saddr 10.244.0.0/16 ip daddr 10.244.0.0/16 return',
        'ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random',
        'ip saddr != 10.244.0.0/16 ip daddr 10.244.7.0/24 return',
        'ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random',
      ],
    });
    const t = renderAgentTable(input);
    const lines = t.text.split('\n');
    assert.equal(lines[0], 'table inet twill {}', 'create if missing so the delete never fails');
    assert.equal(lines[1], 'delete table inet twill');
    assert.match(t.text, /comment "twill:[0-9a-f]{8}"/);
    assert.equal(Object.values(t.chains).flat().length - 2, 6, 'six rules after the two chain declarations');
    assert.equal(agentRules({ ...input, ipMasq: false }).postrouting.length, 0);
    assert.notEqual(renderAgentTable({ ...input, nodeSubnet: net }).comment, t.comment, 'the fingerprint follows the content');
  });

  it('has no nat chain without masquerade (an empty one would switch conntrack on) and raw notrack chains per VXLAN tunnel end', () => {
    assert.deepEqual(Object.keys(agentChains({ ...input, ipMasq: false })), ['forward']);
    assert.deepEqual(Object.keys(agentChains(input)), ['forward', 'postrouting']);
    const tunnels = [{ local: 0xc0000207, port: 8472 }, { local: 0xc0000207, port: 8472 }, { local: 0xc0000205, port: 4789 }];
    const c = agentChains({ ...input, tunnels });
    assert.deepEqual(c['raw-prerouting'], ['type filter hook prerouting priority raw; policy accept;', 'ip daddr 192.0.2.5 udp dport 4789 notrack', 'ip daddr 192.0.2.7 udp dport 8472 notrack']);
    assert.deepEqual(c['raw-output'], ['type filter hook output priority raw; policy accept;', 'ip saddr 192.0.2.5 udp dport 4789 notrack', 'ip saddr 192.0.2.7 udp dport 8472 notrack']);
    assert.deepEqual(notrackRules([]), { prerouting: [], output: [] });
    assert.notEqual(renderAgentTable({ ...input, tunnels }).comment, renderAgentTable(input).comment);
  });

  it('ensureAgentTable writes only when the table is missing, different or edited by hand', async () => {
    const want = renderAgentTable(input);
    let listing: string | undefined;
    const writes: string[] = [];
    const runner: AsyncCommandRunner = {
      run: async (argv, stdin) => {
        if (argv[0] === 'iptables') return { status: 127, stdout: '', stderr: 'not installed' };
        if (argv.includes('list')) return listing === undefined ? { status: 1, stdout: '', stderr: 'No such file or directory' } : { status: 0, stdout: listing, stderr: '' };
        writes.push(stdin ?? '');
        return { status: 0, stdout: '', stderr: '' };
      },
    };
    assert.deepEqual(await ensureAgentTable(runner, input), { changed: true });
    const chain = (name: string, lines: string[]) => `\tchain ${name} {\n${lines.map((r) => `\t\t${r}\n`).join('')}\t}\n`;
    listing = `table inet twill {\n\tcomment "${want.comment}"\n${chain('forward', want.chains['forward'] ?? [])}\n${chain('postrouting', want.chains['postrouting'] ?? [])}}\n`;
    assert.deepEqual(await ensureAgentTable(runner, input), { changed: false }, 'in sync: no write');
    listing = listing.replace(/\t\tip saddr != 10\.244\.0\.0\/16 ip daddr 10\.244\.0\.0\/16 masquerade fully-random\n/, '');
    assert.deepEqual(await ensureAgentTable(runner, input), { changed: true }, 'a rule deleted by hand is put back');
    assert.equal(writes.length, 2);
    const failing: AsyncCommandRunner = { run: async (argv) => (argv.includes('list') ? { status: 1, stdout: '', stderr: '' } : { status: 1, stdout: '', stderr: 'Operation not permitted' }) };
    assert.deepEqual(await ensureAgentTable(failing, input), { changed: false, error: 'nft: Operation not permitted' });
  });
});
