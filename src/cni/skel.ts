/**
 * The CNI shell: env + stdin in, stdout text + exit status out. One table of verbs, each after
 * the same parse-and-validate step. Knows nothing of the real process (see main.ts).
 */
import { SUPPORTED_VERSIONS, type CniVersion } from '../common/constants.js';
import { BugError, ErrorCode, TwillError, isTwillError } from '../common/errors.js';
import type { Logger } from '../common/json-log.js';
import { parseNetConf, isSupportedVersion, type NetConf } from './config.js';
import type { CniDeps } from './deps.js';
import { parseCniEnv, readCommand, type CniEnv } from './env.js';
import { toWire, versionAtLeast } from './result.js';
import { cmdAdd } from './verbs/add.js';
import { cmdCheck } from './verbs/check.js';
import { cmdDel } from './verbs/del.js';
import { cmdGc } from './verbs/gc.js';
import { cmdStatus } from './verbs/status.js';

export interface SkelOutput {
  stdout: string;
  exitCode: number;
}

export type DepsFactory = (conf: NetConf | undefined, env: Partial<CniEnv>) => CniDeps;

const LATEST: CniVersion = '1.1.0';

/** The version to answer errors in: the config's when it is one we speak, else the latest. */
function answerVersion(stdin: string): CniVersion {
  const m = /"cniVersion"\s*:\s*"([^"]*)"/.exec(stdin);
  return m && m[1] !== undefined && isSupportedVersion(m[1]) ? m[1] : LATEST;
}

function errorJson(version: string, e: TwillError): string {
  const body: Record<string, unknown> = { cniVersion: version, code: e.code, msg: e.message };
  if (e.details !== undefined) body.details = e.details;
  return `${JSON.stringify(body)}\n`;
}

function requireVersion(conf: NetConf, min: string, verb: string): void {
  if (!versionAtLeast(conf.cniVersion, min)) {
    throw new TwillError(ErrorCode.IncompatibleVersion, `${verb} needs cniVersion ${min} or later, the configuration says ${conf.cniVersion}`);
  }
}

export function runSkel(rawEnv: Record<string, string | undefined>, stdin: string, makeDeps: DepsFactory): SkelOutput {
  let version: string = answerVersion(stdin);
  let log: Logger | undefined;
  try {
    const command = readCommand(rawEnv);
    if (command === 'VERSION') {
      return { stdout: `${JSON.stringify({ cniVersion: version, supportedVersions: SUPPORTED_VERSIONS })}\n`, exitCode: 0 };
    }
    const env = parseCniEnv(rawEnv);
    const conf = parseNetConf(stdin);
    version = conf.cniVersion;
    const deps = makeDeps(conf, env);
    log = deps.log;
    log.debug('call', { args: env.args });
    switch (command) {
      case 'ADD':
        return { stdout: `${JSON.stringify(toWire(cmdAdd(env, conf, deps), conf.cniVersion as CniVersion))}\n`, exitCode: 0 };
      case 'DEL':
        cmdDel(env, conf, deps);
        return { stdout: '', exitCode: 0 };
      case 'CHECK':
        requireVersion(conf, '0.4.0', 'CHECK');
        cmdCheck(env, conf, deps);
        return { stdout: '', exitCode: 0 };
      case 'GC':
        requireVersion(conf, '1.1.0', 'GC');
        cmdGc(conf, deps);
        return { stdout: '', exitCode: 0 };
      case 'STATUS':
        requireVersion(conf, '1.1.0', 'STATUS');
        cmdStatus(conf, deps);
        return { stdout: '', exitCode: 0 };
      default:
        throw new BugError(`unhandled command ${String(command)}`);
    }
  } catch (e) {
    const err = isTwillError(e) ? e : new TwillError(ErrorCode.Internal, `internal error: ${(e as Error).message}`, { details: (e as Error).stack });
    return failed(version, err, log ?? makeDeps(undefined, {}).log);
  }
}

function failed(version: string, err: TwillError, log: Logger): SkelOutput {
  log.error(err.message, { code: err.code, details: err.details });
  return { stdout: errorJson(version, err), exitCode: 1 };
}

/**
 * A call rejected before any verb runs (a non-root caller): logged and answered like runSkel's errors,
 * without touching anything the config names (not even its logFile).
 */
export function refuseCall(stdin: string, err: TwillError, makeDeps: DepsFactory): SkelOutput {
  return failed(answerVersion(stdin), err, makeDeps(undefined, {}).log);
}
