/**
 * `twill-cni` entry point (standalone mode): the only module that reads the process's env/stdin and
 * writes stdout. When the node agent serves CNI on its socket, bin/twill-cni hands calls to it
 * instead and this process never starts (see docs/design/cni.md, "The agent fast path").
 */
import * as fs from 'node:fs';
import { productionDeps } from './deps-factory.js';
import { notRootError } from './admission.js';
import { refuseCall, runSkel } from './skel.js';

function readStdin(): string {
  try {
    return fs.readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

const stdin = process.env.CNI_COMMAND === 'VERSION' && process.stdin.isTTY ? '' : readStdin();
const deps = productionDeps(process.env, { write: (line) => process.stderr.write(line) });
// Root only, as through the agent's socket (a rootless runtime's plugin is root in its user namespace).
const euid = process.geteuid?.() ?? 0;
const out = euid === 0 ? runSkel(process.env, stdin, deps) : refuseCall(stdin, notRootError(euid), deps);
if (out.stdout !== '') fs.writeSync(1, out.stdout);
process.exitCode = out.exitCode;
