/** `twill` CLI entry point: argv in, exit status out. */
import { Command, Option } from 'commander';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDemo } from './demo.js';
import { planProbes, renderMatrix, runProbes } from './lab/connectivity.js';
import { labDown, labStatus, labUp, readState } from './lab/lab.js';
import type { LabBackend, LabTopology } from './lab/topology.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const program = new Command('twill').description('Twill pod network CLI');

program
  .command('demo')
  .description('build a one-node cluster from network namespaces, wire pods with twill-cni, ping them, tear down')
  .option('--pods <n>', 'pods to create', '3')
  .addOption(new Option('--mode <mode>', 'pod wiring').choices(['bridge', 'routed']).default('bridge'))
  .option('--plugin <path>', 'twill-cni executable', path.join(root, 'bin/twill-cni'))
  .action((o: { pods: string; mode: 'bridge' | 'routed'; plugin: string }) => {
    const pods = Number(o.pods);
    if (!Number.isInteger(pods) || pods < 2 || pods > 50) program.error('--pods must be 2..50');
    process.exitCode = runDemo({ pods, mode: o.mode, plugin: o.plugin, out: (l) => console.log(l) }) ? 0 : 1;
  });

const labPaths = { root, agentMain: path.join(root, 'dist/src/agent/main.js'), cniPlugin: path.join(root, 'bin/twill-cni') };
const lab = program.command('lab').description('a multi-node cluster on this machine, built from network namespaces');
lab
  .command('up')
  .description('create the lab: underlay, etcd, one twilld per node, pods through twill-cni')
  .option('--name <name>', 'lab name (namespaces are tl-<name>-*)', 'lab')
  .option('--nodes <n>', 'nodes', '3')
  .option('--pods <k>', 'pods per node', '2')
  .addOption(new Option('--backend <type>', 'datapath').choices(['vxlan', 'host-gw', 'vxlan-direct']).default('vxlan'))
  .addOption(new Option('--topology <t>', 'l2: one segment; l3: two segments joined by a router').choices(['l2', 'l3']).default('l2'))
  .option('--network <cidr>', 'cluster pod network', '10.244.0.0/16')
  .option('--resync-interval <s>', 'agents\' full resync period', '10')
  .action(async (o: { name: string; nodes: string; pods: string; backend: LabBackend; topology: LabTopology; network: string; resyncInterval: string }) => {
    const spec = { name: o.name, nodes: Number(o.nodes), pods: Number(o.pods), backend: o.backend, topology: o.topology, network: o.network, subnetLen: 24 };
    await labUp(spec, labPaths, (l) => console.log(l), { resyncSeconds: Number(o.resyncInterval) });
    console.log(`lab ${o.name} is up: 'twill lab status --name ${o.name}', 'twill connectivity test --lab ${o.name}', 'twill lab down --name ${o.name}'`);
  });
lab
  .command('down')
  .description('remove every namespace, link and process of the lab (also after a crash)')
  .option('--name <name>', 'lab name', 'lab')
  .action((o: { name: string }) => labDown(o.name, (l) => console.log(l)));
lab
  .command('status')
  .option('--name <name>', 'lab name', 'lab')
  .option('-o, --output <format>', 'text or json', 'text')
  .action((o: { name: string; output: string }) => {
    if (o.output === 'json') console.log(JSON.stringify(readState(o.name) ?? null, null, 2));
    else for (const l of labStatus(o.name)) console.log(l);
  });

program
  .command('connectivity')
  .description('connectivity checks')
  .command('test')
  .description('from each pod to one pod on every node and to every node IP, ICMP and TCP')
  .option('--lab <name>', 'lab to test', 'lab')
  .option('-o, --output <format>', 'text or json', 'text')
  .action((o: { lab: string; output: string }) => {
    const state = readState(o.lab);
    if (!state) return program.error(`lab ${o.lab} is not running`);
    const results = runProbes(planProbes(state));
    if (o.output === 'json') console.log(JSON.stringify(results, null, 2));
    else for (const l of renderMatrix(results)) console.log(l);
    process.exitCode = results.every((r) => r.icmp && r.tcpOk !== false) ? 0 : 1;
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  console.error((e as Error).message);
  process.exitCode = 1;
});
