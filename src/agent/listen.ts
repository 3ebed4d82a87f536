/** The health server's listen address. Pure. */
import { isIPv6 } from 'node:net';
import { parseIPv4 } from '../net/ipv4.js';

/** `host:port` of the health server: IPv4, `[IPv6]` or `localhost`; port 0 (any) to 65535. */
export function parseListen(text: string): { host: string; port: number; loopback: boolean } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)|(localhost)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[4]);
  if (port > 65535) return undefined;
  if (m[3] !== undefined) return { host: 'localhost', port, loopback: true };
  if (m[2] !== undefined) {
    const ip = parseIPv4(m[2]);
    return ip === undefined ? undefined : { host: m[2], port, loopback: ip >>> 24 === 127 };
  }
  const v6 = m[1] as string;
  if (!isIPv6(v6)) return undefined;
  // The URL parser prints IPv6 in canonical form (::1, ::ffff:7f00:1 for a mapped 127.0.0.1).
  const canonical = new URL(`http://[${v6}]/`).hostname.slice(1, -1);
  return { host: v6, port, loopback: canonical === '::1' || /^::ffff:7f[0-9a-f]{2}:/.test(canonical) };
}
