/**
 * The network configuration a runtime sends on stdin, validated at the edge.
 *
 * Validated by hand, not with a schema library: the plugin is a process per call and its start-up is
 * its latency budget; zod/mini cost 7-10 ms per call (load, schema construction, parse), about a sixth
 * of a whole ADD. The checks are declarative enough to read as a schema: each names the field path.
 */
import { POD_MTU_MAX, POD_MTU_MIN, SUPPORTED_VERSIONS, type CniVersion } from '../common/constants.js';
import { ErrorCode, TwillError } from '../common/errors.js';

export interface RouteConf {
  dst: string;
  gw?: string;
}

/** One range of host-local's `ipam.ranges` shape. */
export interface RangeConf {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

export interface IpamConf {
  type: string;
  /** host-local's shape: one range set per address family (dual stack: one IPv4, one IPv6). */
  ranges?: RangeConf[][];
  subnet?: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
  routes?: RouteConf[];
  dataDir?: string;
  subnetFile?: string;
  [key: string]: unknown;
}

export interface AttachmentConf {
  containerID: string;
  ifname: string;
  [key: string]: unknown;
}

export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  mode?: 'bridge' | 'routed';
  bridge?: string;
  mtu?: number;
  ipMasq?: boolean;
  hairpinMode?: boolean;
  logFile?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  ipam?: IpamConf;
  prevResult?: unknown;
  'cni.dev/valid-attachments'?: AttachmentConf[] | null;
  'cni.dev/attachments'?: AttachmentConf[] | null;
  [key: string]: unknown;
}

type Obj = Record<string, unknown>;

function fail(path: string, expected: string, got: unknown): never {
  const seen = got === null ? 'null' : Array.isArray(got) ? 'array' : typeof got;
  throw new TwillError(ErrorCode.InvalidConfig, `invalid network configuration: ${path}: expected ${expected}, got ${seen === 'string' || seen === 'number' ? JSON.stringify(got) : seen}`);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Obj, key: string, path: string, required: boolean): void {
  const v = o[key];
  if (v === undefined && !required) return;
  if (typeof v !== 'string') fail(`${path}${key}`, 'a string', v);
}

/**
 * Paths are absolute: the agent and the standalone plugin run in different working directories, so
 * a relative one would name two different files. No NUL (it cannot reach a system call).
 */
function absPath(o: Obj, key: string, path: string): void {
  const v = o[key];
  if (v !== undefined && (typeof v !== 'string' || !v.startsWith('/') || v.includes('\0'))) fail(`${path}${key}`, 'an absolute path', v);
}

function bool(o: Obj, key: string): void {
  const v = o[key];
  if (v !== undefined && typeof v !== 'boolean') fail(key, 'true or false', v);
}

function oneOf(o: Obj, key: string, values: readonly string[]): void {
  const v = o[key];
  if (v !== undefined && (typeof v !== 'string' || !values.includes(v))) fail(key, `one of ${values.join(', ')}`, v);
}

function attachments(o: Obj, key: string): void {
  const v = o[key];
  if (v === undefined || v === null) return;
  if (!Array.isArray(v)) fail(key, 'a list of {containerID, ifname}', v);
  v.forEach((a: unknown, i) => {
    if (!isObj(a)) fail(`${key}.${i}`, 'an object', a);
    str(a, 'containerID', `${key}.${i}.`, true);
    str(a, 'ifname', `${key}.${i}.`, true);
  });
}

function ipam(v: unknown): void {
  if (v === undefined) return;
  if (!isObj(v)) fail('ipam', 'an object', v);
  for (const k of ['type']) str(v, k, 'ipam.', true);
  for (const k of ['subnet', 'rangeStart', 'rangeEnd', 'gateway', 'dataDir', 'subnetFile']) str(v, k, 'ipam.', false);
  for (const k of ['dataDir', 'subnetFile']) absPath(v, k, 'ipam.');
  if (v.ranges !== undefined) {
    if (!Array.isArray(v.ranges) || v.ranges.length === 0) fail('ipam.ranges', 'a non-empty list of range sets', v.ranges);
    v.ranges.forEach((set: unknown, i) => {
      if (!Array.isArray(set) || set.length === 0) fail(`ipam.ranges.${i}`, 'a non-empty list of ranges {subnet, rangeStart?, rangeEnd?, gateway?}', set);
      set.forEach((r: unknown, j) => {
        if (!isObj(r)) fail(`ipam.ranges.${i}.${j}`, 'an object', r);
        str(r, 'subnet', `ipam.ranges.${i}.${j}.`, true);
        for (const k of ['rangeStart', 'rangeEnd', 'gateway']) str(r, k, `ipam.ranges.${i}.${j}.`, false);
      });
    });
  }
  if (v.routes === undefined) return;
  if (!Array.isArray(v.routes)) fail('ipam.routes', 'a list of {dst, gw?}', v.routes);
  v.routes.forEach((r: unknown, i) => {
    if (!isObj(r)) fail(`ipam.routes.${i}`, 'an object', r);
    str(r, 'dst', `ipam.routes.${i}.`, true);
    str(r, 'gw', `ipam.routes.${i}.`, false);
  });
}

/** Checks the shape of a parsed config; throws code 7 naming the first bad field. */
function checkShape(raw: unknown): NetConf {
  if (!isObj(raw)) fail('configuration', 'a JSON object', raw);
  for (const k of ['cniVersion', 'name', 'type']) str(raw, k, '', true);
  for (const k of ['bridge', 'logFile']) str(raw, k, '', false);
  absPath(raw, 'logFile', '');
  oneOf(raw, 'mode', ['bridge', 'routed']);
  oneOf(raw, 'logLevel', ['debug', 'info', 'warn', 'error']);
  if (raw.mtu !== undefined && !(Number.isInteger(raw.mtu) && (raw.mtu as number) >= POD_MTU_MIN && (raw.mtu as number) <= POD_MTU_MAX)) fail('mtu', `an integer from ${POD_MTU_MIN} to ${POD_MTU_MAX}`, raw.mtu);
  bool(raw, 'ipMasq');
  bool(raw, 'hairpinMode');
  ipam(raw.ipam);
  attachments(raw, 'cni.dev/valid-attachments');
  attachments(raw, 'cni.dev/attachments');
  return raw as NetConf;
}

/** CNI's network-name charset; at most 64 characters (it becomes a directory and part of an ifalias). */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const LINK_NAME = /^[a-zA-Z0-9_.-]{1,15}$/;

/** Parses stdin. Malformed JSON is code 6; a wrong shape or value is code 7; a version we do not speak is 1. */
export function parseNetConf(stdin: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (e) {
    throw new TwillError(ErrorCode.DecodeFailure, 'network configuration is not valid JSON', { details: String(e) });
  }
  const conf = checkShape(raw);
  if (!isSupportedVersion(conf.cniVersion)) {
    throw new TwillError(ErrorCode.IncompatibleVersion, `CNI version ${conf.cniVersion} is not supported`, {
      details: `supported: ${SUPPORTED_VERSIONS.join(', ')}`,
    });
  }
  if (!NETWORK_NAME.test(conf.name) || conf.name.length > 64) {
    throw new TwillError(ErrorCode.InvalidConfig, `invalid network name ${JSON.stringify(conf.name)}`);
  }
  if (conf.bridge !== undefined && !isValidLinkName(conf.bridge)) {
    throw new TwillError(ErrorCode.InvalidConfig, `invalid bridge name ${JSON.stringify(conf.bridge)}`);
  }
  if (conf.ipam !== undefined && conf.ipam.type !== 'twill') {
    throw new TwillError(ErrorCode.InvalidConfig, `unsupported ipam type ${JSON.stringify(conf.ipam.type)}: Twill has its own IPAM, type "twill"`);
  }
  return conf;
}

export function isSupportedVersion(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

export function isValidLinkName(name: string): boolean {
  return LINK_NAME.test(name) && name !== '.' && name !== '..';
}
