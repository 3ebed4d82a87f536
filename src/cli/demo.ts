/**
 * `twill demo`: one node made of network namespaces, K pods wired by twill-cni exactly as a runtime
 * calls it, a ping matrix, then DEL and teardown (always, also on failure).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { spawnRunner, type CommandResult } from '../dataplane/command.js';

export interface DemoOptions {
  pods: number;
  mode: 'bridge' | 'routed';
  plugin: string;
  out: (line: string) => void;
}

const run = (argv: readonly string[], input = ''): CommandResult => spawnRunner.run(argv, input);

export function runDemo(o: DemoOptions): boolean {
  const prefix = `twdemo${process.pid.toString(36)}`;
  const node = `${prefix}-node`;
  const pods = Array.from({ length: o.pods }, (_, i) => `${prefix}-pod${i}`);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'twill-demo-'));
  const config = JSON.stringify({
    cniVersion: '1.1.0',
    name: 'demo',
    type: 'twill',
    mode: o.mode,
    mtu: 1450,
    ipam: { type: 'twill', subnet: '10.244.1.0/24', dataDir, subnetFile: path.join(dataDir, 'subnet.env') },
  });
  const cni = (command: string, i: number): ReturnType<typeof run> =>
    run(['ip', 'netns', 'exec', node, 'env', `CNI_COMMAND=${command}`, `CNI_CONTAINERID=demo-${i}`, `CNI_NETNS=/run/netns/${pods[i]}`, 'CNI_IFNAME=eth0', 'CNI_PATH=/opt/cni/bin', o.plugin], config);
  let ok = true;
  try {
    for (const ns of [node, ...pods]) {
      if (run(['ip', 'netns', 'add', ns]).status !== 0) throw new Error(`cannot create netns ${ns}`);
      run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    const ips: string[] = [];
    for (let i = 0; i < pods.length; i++) {
      const t0 = process.hrtime.bigint();
      const r = cni('ADD', i);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`ADD pod${i} failed: ${r.stdout}${r.stderr}`);
      const result = JSON.parse(r.stdout) as { ips: Array<{ address: string; gateway: string }> };
      ips.push(result.ips[0]?.address.split('/')[0] ?? '');
      o.out(`pod${i}: ${result.ips[0]?.address} gw ${result.ips[0]?.gateway} (ADD ${ms.toFixed(1)} ms)`);
    }
    o.out(`ping matrix (${o.mode} mode):`);
    for (let i = 0; i < pods.length; i++) {
      const row = ips.map((ip, j) => (i === j ? ' -' : run(['ip', 'netns', 'exec', pods[i] as string, 'ping', '-c1', '-W1', ip]).status === 0 ? ' ok' : ' FAIL'));
      if (row.some((c) => c.includes('FAIL'))) ok = false;
      o.out(`  pod${i}:${row.join('')}`);
    }
    for (let i = 0; i < pods.length; i++) {
      const r = cni('DEL', i);
      if (r.status !== 0) throw new Error(`DEL pod${i} failed: ${r.stdout}`);
    }
    o.out('DEL done for every pod');
  } catch (e) {
    o.out(`demo failed: ${(e as Error).message}`);
    ok = false;
  } finally {
    for (const ns of [...pods, node]) run(['ip', 'netns', 'del', ns]);
    rmSync(dataDir, { recursive: true, force: true });
  }
  o.out(ok ? 'demo: all pods reached each other' : 'demo: FAILED');
  return ok;
}
