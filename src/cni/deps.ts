/** Everything a CNI verb may touch, injected by the entry point (tests pass their own). */
import * as fs from 'node:fs';
import { SUBNET_FILE } from '../common/constants.js';
import { TwillError, isTwillError } from '../common/errors.js';
import type { Logger } from '../common/json-log.js';
import { parseSubnetEnv, type SubnetEnv } from '../common/subnet-env.js';
import { spawnRunner, type CommandRunner } from '../dataplane/command.js';
import { ensureSysctl, listLinks, underlayMtu } from '../dataplane/host-facts.js';

export interface HostPort {
  listLinks(): Set<string>;
  underlayMtu(): number;
  ensureSysctl(path: string, value: string): boolean;
  exists(path: string): boolean;
  readSubnetFile(path: string): SubnetEnv | undefined;
  /** The text of /proc/net/route (this namespace's main table). */
  procRoutes(): string;
}

export interface CniDeps {
  runner: CommandRunner;
  host: HostPort;
  log: Logger;
  /** Default subnet file when the config names none. */
  subnetFile: string;
}

export const realHost: HostPort = {
  listLinks,
  underlayMtu,
  ensureSysctl,
  exists: (p) => fs.existsSync(p),
  procRoutes: () => fs.readFileSync('/proc/net/route', 'utf8'),
  readSubnetFile(p) {
    let text: string;
    try {
      text = fs.readFileSync(p, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      return parseSubnetEnv(text);
    } catch (e) {
      throw isTwillError(e) ? new TwillError(e.code, `subnet file ${p}: ${e.message}`) : e;
    }
  },
};

export function defaultDeps(log: Logger): CniDeps {
  return { runner: spawnRunner, host: realHost, log, subnetFile: SUBNET_FILE };
}
