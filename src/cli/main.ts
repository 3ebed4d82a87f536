/** `twill` CLI entry point: argv in, exit status out. */
import { Command, Option } from 'commander';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { DEFAULT_IPAM_DIR } from '../common/constants.js';
import { clusterStatus, configGet, configSet, ipamCheck, ipamShow, listNodes, parseJsonOr, renderNodes, renderStatus, renderTable, withStore, type IpamProblem } from './cluster.js';
import { runDemo } from './demo.js';
import { planProbes, probeLine, renderMatrix, runProbes } from './lab/connectivity.js';
import { labDown, labStatus, labUp, nodePaths, readState } from './lab/lab.js';
import { LAB_DEFAULT_NETWORK6, type LabBackend, type LabIpFamily, type LabTopology } from './lab/topology.js';
import { exitStatusFor, outputOption, render, type OutputFormat } from './output.js';
import { twillVersion } from '../version.js';
import { uninstallNode } from './uninstall.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const program = new Command('twill')
  .description('Twill pod network CLI')
  .version(twillVersion(), '-v, --version', 'print the version')
  // Before any subcommand exists, so that they all inherit it: a wrong command line exits 2.
  .exitOverride((err) => process.exit(exitStatusFor(err)));
const print = (lines: string[]): void => {
  for (const l of lines) console.log(l);
};

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

interface StoreOpts {
  etcdEndpoints: string;
  lab?: string;
  output: OutputFormat;
}

/**
 * `--lab NAME`: a lab's etcd lives inside the lab's infra netns; run this same command there,
 * with the lab's endpoint, instead of reaching into the namespace from here.
 */
function relaunchInLab(lab: string, argv: string[], netns?: string): void {
  const state = readState(lab);
  if (!state) {
    program.error(`lab ${lab} is not running`);
    return;
  }
  const args = argv.filter((a, i) => a !== '--lab' && argv[i - 1] !== '--lab' && !a.startsWith('--lab='));
  const r = spawnSync('nsenter', [`--net=/run/netns/${netns ?? state.plan.infraNetns}`, process.execPath, fileURLToPath(import.meta.url), ...args, '--etcd-endpoints', state.plan.etcdClientUrl], { stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
}

function endpoints(o: StoreOpts): string[] {
  return o.etcdEndpoints.split(',').map((e) => e.trim()).filter(Boolean);
}

const storeOptions = (c: Command): Command =>
  c
    .option('--etcd-endpoints <urls>', 'etcd client URLs (env TWILL_ETCD_ENDPOINTS)', process.env.TWILL_ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379')
    .option('--lab <name>', 'talk to the datastore of a running `twill lab`')
    .addOption(outputOption());

const config = program.command('config').description('the cluster network config in the datastore');
storeOptions(config.command('get').description('print the cluster network config')).action(async (o: StoreOpts) => {
  if (o.lab) return relaunchInLab(o.lab, process.argv.slice(2));
  const text = await withStore(endpoints(o), configGet);
  if (text === undefined) {
    console.error('no cluster network config set (twill config set FILE)');
    process.exitCode = 1;
  } else print(render(o.output, parseJsonOr(text), () => [text]));
});
storeOptions(config.command('set').description('validate and write the cluster network config (FILE or - for stdin)').argument('<file>')).action(async (file: string, o: StoreOpts) => {
  if (o.lab) {
    // The file is read here (it may not be visible the same way inside the lab), then passed on stdin.
    const text = readFileSync(file === '-' ? 0 : file, 'utf8');
    const state = readState(o.lab);
    if (!state) return program.error(`lab ${o.lab} is not running`);
    const r = spawnSync('nsenter', [`--net=/run/netns/${state.plan.infraNetns}`, process.execPath, fileURLToPath(import.meta.url), 'config', 'set', '-', '-o', o.output, '--etcd-endpoints', state.plan.etcdClientUrl], { input: text, stdio: ['pipe', 'inherit', 'inherit'] });
    process.exitCode = r.status ?? 1;
    return;
  }
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  const errors = await withStore(endpoints(o), (s) => configSet(s, text));
  if (errors.length > 0) {
    if (o.output === 'text') for (const e of errors) console.error(`invalid config: ${e}`);
    else print(render(o.output, { written: false, errors }, () => []));
    process.exitCode = 1;
  } else print(render(o.output, { written: true, errors: [] }, () => ['config written']));
});

storeOptions(program.command('nodes').description('nodes with their subnet leases'))
  .option('--no-probe', 'do not ping node IPs')
  .action(async (o: StoreOpts & { probe: boolean }) => {
    if (o.lab) return relaunchInLab(o.lab, process.argv.slice(2));
    const { rows, invalid } = await withStore(endpoints(o), (s) => listNodes(s, { probe: o.probe }));
    print(render(o.output, { nodes: rows, invalidLeases: invalid }, () => [...renderNodes(rows), ...invalid.map((i) => `invalid lease ignored: ${i}`)]));
  });

storeOptions(program.command('status').description('datastore, cluster config and this node\'s agent'))
  .option('--health-url <url>', 'the local agent', 'http://127.0.0.1:9402')
  .option('--node <name>', 'with --lab: the node whose agent to ask', 'node1')
  .action(async (o: StoreOpts & { healthUrl: string; node: string }) => {
    if (o.lab) {
      const state = readState(o.lab);
      const node = state?.plan.nodes.find((n) => n.name === o.node);
      if (!node) return program.error(`lab ${o.lab} has no node ${o.node}`);
      return relaunchInLab(o.lab, process.argv.slice(2), node.netns);
    }
    const s = await clusterStatus(endpoints(o), o.healthUrl);
    print(render(o.output, s, () => renderStatus(s)));
  });

interface IpamOpts {
  dataDir: string;
  network: string;
  lab?: string;
  output: OutputFormat;
}

const ipamOptions = (c: Command): Command =>
  c
    .option('--data-dir <dir>', 'the plugin\'s ipam.dataDir', DEFAULT_IPAM_DIR)
    .option('--network <name>', 'CNI network name', 'twill')
    .option('--lab <name>', 'every node of a running lab')
    .addOption(outputOption());

const ipam = program.command('ipam').description('IPAM inspection');
ipamOptions(ipam.command('show').description('address reservations on this node'))
  .action((o: IpamOpts) => {
    const sources: Array<{ node: string; dir: string }> = [];
    if (o.lab) {
      const state = readState(o.lab);
      if (!state) return program.error(`lab ${o.lab} is not running`);
      for (const n of state.plan.nodes) sources.push({ node: n.name, dir: nodePaths(o.lab, n).ipamDir });
    } else sources.push({ node: '-', dir: o.dataDir });
    const rows = sources.flatMap((src) => ipamShow(src.dir, o.network).map((r) => ({ node: src.node, ...r })));
    print(render(o.output, rows, () => renderTable(['NODE', 'IP', 'CONTAINER', 'IFNAME'], rows.map((r) => [r.node, r.ip, r.containerId, r.ifName]))));
  });

program
  .command('install-cni')
  .description('install the plugin into a CNI bin dir as type "twill" (the shim and the standalone bundle)')
  .option('--dir <dir>', 'CNI bin dir', '/opt/cni/bin')
  .action((o: { dir: string }) => {
    mkdirSync(o.dir, { recursive: true });
    // The bundle first: a runtime that finds the shim must find what it runs.
    copyFileSync(path.join(root, 'bin/twill-cni.js'), path.join(o.dir, 'twill-cni.js'));
    chmodSync(path.join(o.dir, 'twill-cni.js'), 0o755);
    copyFileSync(path.join(root, 'bin/twill-cni'), path.join(o.dir, 'twill.tmp'));
    chmodSync(path.join(o.dir, 'twill.tmp'), 0o755);
    renameSync(path.join(o.dir, 'twill.tmp'), path.join(o.dir, 'twill'));
    console.log(`installed ${path.join(o.dir, 'twill')} and ${path.join(o.dir, 'twill-cni.js')}`);
  });

program
  .command('uninstall')
  .description('after stopping twilld: remove Twill\'s nft tables, FORWARD accepts, twill.* devices, proto 84 routes and route protocol names from this node')
  .option('--cni-bin-dir <dir>', 'also remove the installed plugin (twill, twill-cni.js) from this CNI bin dir')
  .action(async (o: { cniBinDir?: string }) => {
    const { spawnAsyncRunner } = await import('../dataplane/async-command.js');
    const r = await uninstallNode(spawnAsyncRunner, o.cniBinDir === undefined ? {} : { cniBinDir: o.cniBinDir });
    for (const l of r.removed) console.log(`removed ${l}`);
    for (const e of r.errors) console.error(`error: ${e}`);
    process.exitCode = r.errors.length > 0 ? 1 : 0;
  });

ipamOptions(ipam.command('check').description('reservations without a pod veth (leaks) and pod veths without a reservation, on this node'))
  .action((o: IpamOpts) => {
    let problems: Array<IpamProblem & { node: string }> = [];
    if (o.lab) {
      const state = readState(o.lab);
      if (!state) return program.error(`lab ${o.lab} is not running`);
      for (const n of state.plan.nodes) {
        const r = spawnSync('nsenter', [`--net=/run/netns/${n.netns}`, process.execPath, fileURLToPath(import.meta.url), 'ipam', 'check', '--data-dir', nodePaths(o.lab, n).ipamDir, '--network', o.network, '-o', 'json'], { encoding: 'utf8' });
        problems = problems.concat((JSON.parse(r.stdout || '[]') as IpamProblem[]).map((p) => ({ ...p, node: n.name })));
      }
    } else problems = ipamCheck(o.dataDir, o.network).map((p) => ({ ...p, node: '-' }));
    print(
      render(o.output, problems.map(({ node, ...p }) => (o.lab ? { node, ...p } : p)), () =>
        problems.length === 0
          ? ['ipam check: every reservation has its pod and every pod its reservation']
          : renderTable(['NODE', 'PROBLEM', 'IP', 'CONTAINER', 'IFNAME', 'VETH'], problems.map((p) => [p.node, p.kind, p.ip ?? '-', p.containerId, p.ifName, p.veth])),
      ),
    );
    process.exitCode = problems.length === 0 ? 0 : 1;
  });

const labPaths = { root, agentMain: path.join(root, 'bin/twilld'), cniPlugin: path.join(root, 'bin/twill-cni') };
const lab = program.command('lab').description('a multi-node cluster on this machine, built from network namespaces');
lab
  .command('up')
  .description('create the lab: underlay, etcd, one twilld per node, pods through twill-cni')
  .option('--name <name>', 'lab name (namespaces are tl-<name>-*)', 'lab')
  .option('--nodes <n>', 'nodes', '3')
  .option('--pods <k>', 'pods per node', '2')
  .addOption(new Option('--backend <type>', 'datapath').choices(['vxlan', 'host-gw', 'vxlan-direct']).default('vxlan'))
  .addOption(new Option('--topology <t>', 'l2: one segment; l3: two segments joined by a router').choices(['l2', 'l3']).default('l2'))
  .addOption(new Option('--ip-family <f>', 'pod address families: ipv4 or dual (ipv6, IPv6-only, is refused until twilld supports it)').choices(['ipv4', 'ipv6', 'dual']).default('ipv4'))
  .option('--network <cidr>', 'cluster pod network (IPv4)', '10.244.0.0/16')
  .option('--network6 <cidr>', 'cluster pod network (IPv6; ipv6 and dual)', LAB_DEFAULT_NETWORK6)
  .option('--resync-interval <s>', 'agents\' full resync period', '10')
  .action(async (o: { name: string; nodes: string; pods: string; backend: LabBackend; topology: LabTopology; ipFamily: LabIpFamily; network: string; network6: string; resyncInterval: string }) => {
    const spec = { name: o.name, nodes: Number(o.nodes), pods: Number(o.pods), backend: o.backend, topology: o.topology, network: o.network, subnetLen: 24, ipFamily: o.ipFamily, network6: o.network6 };
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
  .addOption(outputOption())
  .action((o: { name: string; output: OutputFormat }) => print(render(o.output, readState(o.name) ?? null, () => labStatus(o.name))));

program
  .command('connectivity')
  .description('connectivity checks')
  .command('test')
  .description('from each pod to one pod on every node and to every node IP, ICMP and TCP')
  .option('--lab <name>', 'lab to test', 'lab')
  .addOption(outputOption())
  .action((o: { lab: string; output: OutputFormat }) => {
    const state = readState(o.lab);
    if (!state) return program.error(`lab ${o.lab} is not running`);
    // Each probe's result as it completes (on stderr for json/yaml, so stdout stays one document), then the matrix.
    const progress = o.output === 'text' ? (l: string) => console.log(l) : (l: string) => console.error(l);
    const results = runProbes(planProbes(state), { onResult: (r, i, n) => progress(probeLine(r, i, n)) });
    print(render(o.output, results, () => renderMatrix(results)));
    process.exitCode = results.every((r) => r.icmp && r.tcpOk !== false) ? 0 : 1;
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  console.error((e as Error).message);
  process.exitCode = 1;
});
