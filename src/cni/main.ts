/**
 * `twill-cni` entry point: the only module that reads the process's env/stdin and writes stdout.
 */
import * as fs from 'node:fs';
import { createLogger, type Level, type LogSink } from '../common/json-log.js';
import { defaultDeps } from './deps.js';
import { runSkel } from './skel.js';

function readStdin(): string {
  try {
    return fs.readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

const stdin = process.env.CNI_COMMAND === 'VERSION' && process.stdin.isTTY ? '' : readStdin();
const out = runSkel(process.env, stdin, (conf, env) => {
  const file = conf?.logFile;
  const sink: LogSink = file
    ? { write: (line) => fs.appendFileSync(file, line) }
    : { write: (line) => process.stderr.write(line) };
  const level: Level = conf?.logLevel ?? (file ? 'info' : 'warn');
  const log = createLogger(sink, level, {
    cmd: process.env.CNI_COMMAND ?? '',
    containerID: env.containerId ?? process.env.CNI_CONTAINERID ?? '',
    ifName: env.ifName ?? process.env.CNI_IFNAME ?? '',
    netns: env.netns ?? process.env.CNI_NETNS ?? '',
    network: conf?.name ?? '',
  });
  return defaultDeps(log);
});
if (out.stdout !== '') fs.writeSync(1, out.stdout);
process.exitCode = out.exitCode;
