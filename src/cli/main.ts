/** `twill` CLI entry point: argv in, exit status out. */
import { Command, Option } from 'commander';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDemo } from './demo.js';

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

program.parseAsync(process.argv).catch((e: unknown) => {
  console.error((e as Error).message);
  process.exitCode = 1;
});
