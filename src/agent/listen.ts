/** The health server's listen address. Pure. */
import { isLoopback, parseIpOf } from '../net/ip.js';

/** `host:port` of the health server: IPv4, `[IPv6]` or `localhost`; port 0 (any) to 65535. */
export function parseListen(text: string): { host: string; port: number; loopback: boolean } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)|(localhost)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[4]);
  if (port > 65535) return undefined;
  if (m[3] !== undefined) return { host: 'localhost', port, loopback: true };
  const a = m[2] !== undefined ? parseIpOf(4, m[2]) : parseIpOf(6, m[1] as string);
  return a === undefined ? undefined : { host: (m[2] ?? m[1]) as string, port, loopback: isLoopback(a) };
}
