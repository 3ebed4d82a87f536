/**
 * The framing between bin/twill-cni (a POSIX sh shim) and the agent's CNI socket. Pure.
 *
 * Request:  "TWILL-CNI 1\n" + one line per variable (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
 *           CNI_IFNAME, CNI_ARGS, CNI_PATH, then the caller's network namespace as
 *           `readlink /proc/self/ns/net` prints it) + "\n" + the config exactly as read from stdin.
 * Response: "<exit status>\n" + what the plugin prints on stdout, or "standalone\n" when the agent
 *           runs in another network namespace than the caller (the shim then runs the plugin itself).
 */
export const WIRE_MAGIC = 'TWILL-CNI 1';
export const WIRE_VARS = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH', 'TWILL_CALLER_NETNS'] as const;
export const WIRE_STANDALONE = 'standalone';

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

export function renderRequest(req: WireRequest): string {
  return [WIRE_MAGIC, ...WIRE_VARS.map((v) => req.env[v] ?? ''), '', req.stdin].join('\n');
}

export function renderResponse(exitCode: number, stdout: string): string {
  return `${exitCode}\n${stdout}`;
}
