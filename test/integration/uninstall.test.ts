/**
 * `twill uninstall` on a node whose agent has been stopped: everything Twill put outside the pods
 * (nft tables, the accepts in a foreign FORWARD chain, twill.* devices, proto 84 routes) is gone and
 * everything else on the node (a foreign FORWARD rule, a foreign route) is as it was.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as path from 'node:path';
import { ensureAgentTable } from '../../src/agent/nft-table.js';
import { parseCidr } from '../../src/net/ipv4.js';
import { spawnAsyncRunner, type AsyncCommandRunner } from '../../src/dataplane/async-command.js';
import { inNetns } from '../../src/dataplane/command.js';
import { ROOT, must, sh, withScope } from './harness.js';

const cidr = (s: string) => parseCidr(s, true) as { network: number; prefix: number };
const iptablesMissing = sh(['iptables', '-V']).status !== 0 ? 'iptables is not installed' : undefined;

describe('twill uninstall', () => {
  it('removes Twill\'s tables, FORWARD accepts, devices and routes; leaves foreign ones', { skip: iptablesMissing }, async () => {
    await withScope(async (s) => {
      const ns = s.netns('uninst-');
      const runner: AsyncCommandRunner = { run: (argv, stdin) => spawnAsyncRunner.run(inNetns(`/run/netns/${ns}`, argv), stdin) };
      const exec = (argv: string[]) => must(['ip', 'netns', 'exec', ns, ...argv]);
      exec(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
      exec(['ip', 'link', 'set', 'eth0', 'up']);
      exec(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'eth0']);
      exec(['iptables', '-P', 'FORWARD', 'DROP']);
      exec(['iptables', '-A', 'FORWARD', '-s', '10.99.0.0/16', '-j', 'ACCEPT']);
      await ensureAgentTable(runner, { clusterNetwork: cidr('10.244.0.0/16'), nodeSubnet: cidr('10.244.7.0/24'), ipMasq: true });
      exec(['ip', 'link', 'add', 'twill.1', 'type', 'vxlan', 'id', '1', 'local', '192.0.2.1', 'dev', 'eth0', 'dstport', '8472']);
      exec(['ip', 'route', 'add', '10.244.8.0/24', 'via', '192.0.2.2', 'dev', 'eth0', 'proto', '84']);
      exec(['ip', 'route', 'add', '10.77.0.0/24', 'via', '192.0.2.3', 'dev', 'eth0']);
      exec(['nft', 'add', 'table', 'ip', 'twill_cni']);
      assert.match(exec(['iptables', '-S', 'FORWARD']), /twill: allow pod network forwarding/, 'control: the accepts are there before');
      const r = sh(['ip', 'netns', 'exec', ns, process.execPath, path.join(ROOT, 'dist/src/cli/main.js'), 'uninstall']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /removed link twill\.1/);
      assert.equal(exec(['iptables', '-S', 'FORWARD']), '-P FORWARD DROP\n-A FORWARD -s 10.99.0.0/16 -j ACCEPT\n', 'only the foreign rule is left');
      assert.doesNotMatch(exec(['nft', 'list', 'tables']), /twill/);
      assert.equal(exec(['ip', '-N', 'route', 'show', 'proto', '84']), '');
      assert.match(exec(['ip', 'route', 'show', '10.77.0.0/24']), /via 192\.0\.2\.3/, 'a foreign route stays');
      assert.equal(sh(['ip', 'netns', 'exec', ns, 'ip', 'link', 'show', 'twill.1']).status !== 0, true);
    });
  });
});
