/** Test fixture: a CommandRunner answering underlay detection's `ip -json -batch` like a node would. */
import type { CommandRunner } from '../dataplane/command.js';
import type { IpAddrLink, IpRoute } from './local-node.js';

/** node1: 192.0.2.11/24 on eth0, which holds the default route via 192.0.2.1. */
export const NODE1_ETH0: IpAddrLink[] = [{ ifname: 'eth0', mtu: 1500, flags: ['UP'], addr_info: [{ family: 'inet', local: '192.0.2.11', prefixlen: 24 }] }];
export const NODE1_DEFAULT: IpRoute[] = [{ dst: 'default', gateway: '192.0.2.1', dev: 'eth0' }];

export function underlayRunner(links: IpAddrLink[] = NODE1_ETH0, defaultRoutes: IpRoute[] = NODE1_DEFAULT): CommandRunner {
  return { run: () => ({ status: 0, stderr: '', stdout: `${JSON.stringify(defaultRoutes)}\n${JSON.stringify(links)}\n` }) };
}
