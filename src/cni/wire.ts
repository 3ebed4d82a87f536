/**
 * The framing between bin/twill-cni (a POSIX sh shim) and the agent's CNI socket. Pure.
 *
 * Request:  "TWILL-CNI 2\n" + one line per variable (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
 *           CNI_IFNAME, CNI_ARGS, CNI_PATH) + "\n" + the config exactly as read from stdin.
 *           Nothing in it says who the caller is: the agent learns that from the kernel (peer.ts).
 * Response: one of
 *   "standalone\n"                          the agent will not run this call (caller in another network
 *                                           namespace, or the caller could not be identified): the shim
 *                                           runs the plugin itself;
 *   "refused\n<exit status>\n<stdout>"      the agent rejects the call without running it (non-root
 *                                           caller, malformed request); the shim prints it, runs nothing;
 *   "accepted\n<exit status>\n<stdout>"     the agent runs the verb. "accepted" is sent (and reached the
 *                                           caller's socket) before the verb starts, so a shim that has
 *                                           seen it never runs the verb itself: a lost answer after it is
 *                                           a CNI error 11 (try again later).
 * Any other answer (an agent of another protocol version) means the agent ran nothing.
 */
export const WIRE_MAGIC = 'TWILL-CNI 2';
/** What every version of the request starts with; a request of another version is declined, not refused. */
export const WIRE_MAGIC_PREFIX = 'TWILL-CNI ';
export const WIRE_VARS = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'] as const;
export const WIRE_STANDALONE = 'standalone';
export const WIRE_REFUSED = 'refused';
export const WIRE_ACCEPTED = 'accepted';

export interface WireRequest {
  env: Record<string, string>;
  stdin: string;
}

export function parseRequest(text: string): WireRequest | undefined {
  const lines = text.split('\n');
  if (lines[0] !== WIRE_MAGIC || lines.length < WIRE_VARS.length + 2) return undefined;
  if (lines[WIRE_VARS.length + 1] !== '') return undefined;
  const env: Record<string, string> = {};
  WIRE_VARS.forEach((name, i) => {
    env[name] = lines[i + 1] ?? '';
  });
  return { env, stdin: lines.slice(WIRE_VARS.length + 2).join('\n') };
}

/** A request of the shim of another Twill version: the agent declines it (the shim then runs standalone). */
export function isOtherWireVersion(text: string): boolean {
  const nl = text.indexOf('\n');
  const first = nl < 0 ? text : text.slice(0, nl);
  return first.startsWith(WIRE_MAGIC_PREFIX) && first !== WIRE_MAGIC;
}

export function renderRequest(req: WireRequest): string {
  return [WIRE_MAGIC, ...WIRE_VARS.map((v) => req.env[v] ?? ''), '', req.stdin].join('\n');
}

export function renderResponse(exitCode: number, stdout: string): string {
  return `${exitCode}\n${stdout}`;
}
