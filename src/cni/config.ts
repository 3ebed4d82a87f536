/**
 * The network configuration a runtime sends on stdin, validated at the edge.
 * Uses zod/mini: it adds no measurable start-up time to the plugin (full zod adds ~7 ms).
 */
import * as z from 'zod/mini';
import { SUPPORTED_VERSIONS, type CniVersion } from '../common/constants.js';
import { ErrorCode, TwillError } from '../common/errors.js';

const cidrText = z.string();
const route = z.object({ dst: z.string(), gw: z.optional(z.string()) });

export const ipamSchema = z.looseObject({
  type: z.string(),
  subnet: z.optional(cidrText),
  rangeStart: z.optional(z.string()),
  rangeEnd: z.optional(z.string()),
  gateway: z.optional(z.string()),
  routes: z.optional(z.array(route)),
  dataDir: z.optional(z.string()),
  subnetFile: z.optional(z.string()),
});

export const netConfSchema = z.looseObject({
  cniVersion: z.string(),
  name: z.string(),
  type: z.string(),
  mode: z.optional(z.enum(['bridge', 'routed'])),
  bridge: z.optional(z.string()),
  mtu: z.optional(z.int().check(z.minimum(576), z.maximum(65535))),
  ipMasq: z.optional(z.boolean()),
  hairpinMode: z.optional(z.boolean()),
  logFile: z.optional(z.string()),
  logLevel: z.optional(z.enum(['debug', 'info', 'warn', 'error'])),
  ipam: z.optional(ipamSchema),
  prevResult: z.optional(z.unknown()),
  'cni.dev/valid-attachments': z.optional(z.nullable(z.array(z.looseObject({ containerID: z.string(), ifname: z.string() })))),
  'cni.dev/attachments': z.optional(z.nullable(z.array(z.looseObject({ containerID: z.string(), ifname: z.string() })))),
});
export type NetConf = z.infer<typeof netConfSchema>;
export type IpamConf = z.infer<typeof ipamSchema>;

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
  const parsed = netConfSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first && first.path.length > 0 ? first.path.join('.') : 'configuration';
    throw new TwillError(ErrorCode.InvalidConfig, `invalid network configuration: ${where}: ${first?.message ?? 'invalid'}`);
  }
  const conf = parsed.data;
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
