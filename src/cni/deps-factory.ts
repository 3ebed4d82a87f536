/** The production DepsFactory: logs to `logFile` (or a fallback sink), real kernel and host ports. */
import * as fs from 'node:fs';
import { createLogger, type Level, type LogSink } from '../common/json-log.js';
import { defaultDeps } from './deps.js';
import type { DepsFactory } from './skel.js';

/** `fallback` receives the lines when the config names no log file (stderr for the plugin process). */
export function productionDeps(rawEnv: Record<string, string | undefined>, fallback: LogSink): DepsFactory {
  return (conf, env) => {
    const file = conf?.logFile;
    const sink: LogSink = file ? { write: (line) => fs.appendFileSync(file, line) } : fallback;
    const level: Level = conf?.logLevel ?? (file ? 'info' : 'warn');
    const log = createLogger(sink, level, {
      cmd: rawEnv.CNI_COMMAND ?? '',
      containerID: env.containerId ?? rawEnv.CNI_CONTAINERID ?? '',
      ifName: env.ifName ?? rawEnv.CNI_IFNAME ?? '',
      netns: env.netns ?? rawEnv.CNI_NETNS ?? '',
      network: conf?.name ?? '',
    });
    return defaultDeps(log);
  };
}
