/** The CNI_* environment, validated per command (spec section "Parameters"). */
import { ErrorCode, TwillError } from '../common/errors.js';
import { isValidLinkName } from './config.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION';
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'];

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifName: string;
  args: Record<string, string>;
}

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/**
 * Runtimes use 64 hex characters. The cap keeps every name derived from the id within the kernel's
 * and the filesystem's limits: the veth ifalias `twill/<network>/<id>/<ifname>` (< 256 bytes) and
 * the IPAM index file `<id>@<ifname>` (< 256 bytes).
 */
export const MAX_CONTAINER_ID = 128;
/** Netns paths reach `ip -batch` and `nsenter`: absolute, no whitespace, no `..`. */
const NETNS_PATH = /^\/[a-zA-Z0-9_.:@/-]+$/;

function bad(msg: string): TwillError {
  return new TwillError(ErrorCode.InvalidEnv, msg);
}

/** Reads only the command; the rest is validated once the command is known. */
export function readCommand(env: Record<string, string | undefined>): CniCommand {
  const raw = env.CNI_COMMAND;
  if (raw === undefined || raw === '') throw bad('CNI_COMMAND is not set');
  if (!(COMMANDS as readonly string[]).includes(raw)) throw bad(`CNI_COMMAND ${JSON.stringify(raw)} is not one of ${COMMANDS.join(', ')}`);
  return raw as CniCommand;
}

export function parseCniEnv(env: Record<string, string | undefined>): CniEnv {
  const command = readCommand(env);
  const containerId = env.CNI_CONTAINERID ?? '';
  const netns = env.CNI_NETNS ?? '';
  const ifName = env.CNI_IFNAME ?? '';
  const perAttachment = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  if (perAttachment) {
    if (containerId === '') throw bad('CNI_CONTAINERID is not set');
    if (!CONTAINER_ID.test(containerId) || containerId.length > MAX_CONTAINER_ID) throw bad(`CNI_CONTAINERID ${JSON.stringify(containerId.length > 80 ? `${containerId.slice(0, 80)}...` : containerId)} is invalid: at most ${MAX_CONTAINER_ID} letters, digits, "_", "." and "-", starting with a letter or digit`);
    if (ifName === '') throw bad('CNI_IFNAME is not set');
    if (!isValidLinkName(ifName)) throw bad(`CNI_IFNAME ${JSON.stringify(ifName)} is invalid: at most 15 characters of letters, digits, "_", "." and "-"`);
    if (command !== 'DEL' && netns === '') throw bad('CNI_NETNS is not set');
    if (netns !== '' && (!NETNS_PATH.test(netns) || netns.split('/').includes('..'))) throw bad(`CNI_NETNS ${JSON.stringify(netns)} is not an absolute path to a network namespace`);
  }
  return { command, containerId, netns, ifName, args: parseCniArgs(env.CNI_ARGS ?? '') };
}

/** `K=V;K2=V2`, as kubelet sets it (K8S_POD_NAMESPACE, K8S_POD_NAME, ...). */
export function parseCniArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0) out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}
