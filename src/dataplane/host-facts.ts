/**
 * Facts about the plugin's own network namespace read from /proc without spawning anything.
 * /proc/net and /proc/sys/net follow the reading task's namespace, and Node never changes it.
 */
import * as fs from 'node:fs';
import { DEFAULT_UNDERLAY_MTU } from '../common/constants.js';

/** Link names present in this namespace. */
export function listLinks(): Set<string> {
  const out = new Set<string>();
  const text = fs.readFileSync('/proc/net/dev', 'utf8');
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon > 0) out.add(line.slice(0, colon).trim());
  }
  return out;
}

/** MTU of the interface that holds the IPv4 default route; 1500 when unknown. */
export function underlayMtu(): number {
  try {
    const routes = fs.readFileSync('/proc/net/route', 'utf8').split('\n').slice(1);
    for (const line of routes) {
      const f = line.trim().split(/\s+/);
      if (f.length > 7 && f[1] === '00000000' && f[7] === '00000000') {
        const mtu = Number(fs.readFileSync(`/sys/class/net/${f[0]}/mtu`, 'utf8').trim());
        if (Number.isInteger(mtu) && mtu >= 576) return mtu;
      }
    }
  } catch {
    // fall through to the default
  }
  return DEFAULT_UNDERLAY_MTU;
}

function readSysctl(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Sets a /proc/sys value when it differs; returns true when it wrote. */
export function ensureSysctl(p: string, value: string): boolean {
  if (readSysctl(p) === value) return false;
  fs.writeFileSync(p, value);
  return true;
}

export const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
export function proxyArpPath(link: string): string {
  return `/proc/sys/net/ipv4/conf/${link}/proxy_arp`;
}

/**
 * IPv6 forwarding, set when the node has an IPv6 pod subnet. Note: with forwarding on, the kernel
 * ignores router advertisements unless accept_ra=2 (a node that takes its IPv6 underlay address
 * from SLAAC needs accept_ra=2 on that interface, as with every IPv6 router).
 */
export const IPV6_FORWARD = '/proc/sys/net/ipv6/conf/all/forwarding';
