/**
 * --ip-masq drives both the agent's nftables masquerade rules and TWILL_IPMASQ in the subnet file
 * (flannel's FLANNEL_IPMASQ: "the node agent masquerades"). Agent on a memory datastore and a fake kernel.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { CONFIG_KEY } from '../common/constants.js';
import type { AsyncCommandRunner } from '../dataplane/async-command.js';
import { FakeKernel } from '../dataplane/fake-kernel.js';
import { MemoryDatastore } from '../datastore/memory/memory-store.js';
import { Agent } from './agent.js';
import { AgentMetrics } from './health.js';
import { createAgentLogger } from './log.js';
import { parseAgentOptions, type AgentOptions } from './options.js';
import { underlayRunner } from './underlay-fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'twill-ipmasq-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const runner = underlayRunner();

async function runOnce(argv: string[]): Promise<{ nft: string; subnetEnv: string; status: ReturnType<Agent['status']> }> {
  const parsed = parseAgentOptions(['--node-name', 'node1', '--cni-socket', '', '--subnet-file', path.join(dir, `${argv.join('') || 'default'}.env`), ...argv], {});
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.errors.join('; '));
  const options: AgentOptions = parsed.options;
  const nftWrites: string[] = [];
  const asyncRunner: AsyncCommandRunner = {
    run: async (a, input) => {
      if (a.includes('list')) return { status: 1, stdout: '', stderr: 'No such file or directory' };
      // Only the table writes (nft -f -); the FORWARD-accept probe (iptables) writes no table.
      if (a.includes('nft') && input) nftWrites.push(input);
      return { status: 0, stdout: '', stderr: '' };
    },
  };
  const store = new MemoryDatastore();
  await store.create(CONFIG_KEY, JSON.stringify({ Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan' } }));
  const kernel = new FakeKernel();
  kernel.addForeignLink('eth0');
  const agent = new Agent({ options, store, kernel, runner, asyncRunner, log: createAgentLogger('error', {}), metrics: new AgentMetrics(), ensureSysctl: () => false });
  const stop = new AbortController();
  const running = agent.run(stop.signal);
  const end = Date.now() + 5000;
  while (!agent.ready().ok && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  const status = agent.status();
  stop.abort();
  await running;
  assert.ok(nftWrites.length > 0, 'the agent wrote its nftables table');
  return { nft: nftWrites.at(-1) as string, subnetEnv: readFileSync(options.subnetFile, 'utf8'), status };
}

describe('--ip-masq', () => {
  it('on (the default): flannel\'s masquerade rules and TWILL_IPMASQ=true', async () => {
    const r = await runOnce([]);
    assert.match(r.nft, /ip saddr 10\.244\.0\.0\/16 ip daddr != 224\.0\.0\.0\/4 masquerade fully-random/);
    assert.equal((r.nft.match(/masquerade/g) ?? []).length, 2);
    assert.match(r.subnetEnv, /^TWILL_IPMASQ=true$/m);
    assert.equal(r.status.underlay?.reason, 'default route via 192.0.2.1 dev eth0: eth0 192.0.2.11/24', 'status says which underlay and why');
  });

  it('off (--no-ip-masq): no masquerade rule at all, forwarding accepts kept, TWILL_IPMASQ=false', async () => {
    const r = await runOnce(['--no-ip-masq']);
    assert.doesNotMatch(r.nft, /masquerade/);
    assert.match(r.nft, /ip saddr 10\.244\.0\.0\/16 accept/);
    assert.match(r.subnetEnv, /^TWILL_IPMASQ=false$/m);
  });
});
