/**
 * `twill-cni` entry point (standalone mode): the only module that reads the process's env/stdin and
 * writes stdout. When the node agent serves CNI on its socket, bin/twill-cni hands calls to it
 * instead and this process never starts (see docs/design/cni.md, "The agent fast path").
 */
import * as fs from 'node:fs';
import { productionDeps } from './deps-factory.js';
import { runSkel } from './skel.js';

function readStdin(): string {
  try {
    return fs.readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

const stdin = process.env.CNI_COMMAND === 'VERSION' && process.stdin.isTTY ? '' : readStdin();
const out = runSkel(process.env, stdin, productionDeps(process.env, { write: (line) => process.stderr.write(line) }));
if (out.stdout !== '') fs.writeSync(1, out.stdout);
process.exitCode = out.exitCode;
