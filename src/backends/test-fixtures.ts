/** Shared fixtures for backend and dataplane unit tests (no test runner import: usable anywhere). */
import { parseCidr, parseIPv4, type Cidr } from '../net/ipv4.js';
import type { LocalNode } from './types.js';
import { vtepMacFor } from './vxlan.js';

export const ip = (s: string): number => {
  const v = parseIPv4(s);
  if (v === undefined) throw new Error(`fixture: bad address ${s}`);
  return v;
};

export const cidr = (s: string): Cidr => {
  const c = parseCidr(s, true);
  if (!c) throw new Error(`fixture: bad subnet ${s}`);
  return { network: c.network, prefix: c.prefix };
};

/** node1: 192.0.2.11 on 192.0.2.0/24 (eth0, MTU 1500), pod subnet 10.244.1.0/24. */
export const local: LocalNode = {
  name: 'node1',
  publicIP: ip('192.0.2.11'),
  subnet: cidr('10.244.1.0/24'),
  underlayMtu: 1500,
  underlayIface: 'eth0',
  underlayCidr: cidr('192.0.2.0/24'),
  vtepMac: vtepMacFor(ip('192.0.2.11')),
};
