/**
 * Checks every backend applies to the peer list before computing objects: drops this node's own
 * lease, rejects peers that announce another backend, that reuse this node's address, or whose
 * subnet overlaps this node's or an earlier peer's. The output order is deterministic (by subnet),
 * so the same peers always give the same DesiredState.
 */
import { broadcast, formatCidr, formatIPv4, overlaps } from '../net/ipv4.js';
import type { LocalNode, Peer, PeerError } from './types.js';

export interface ScreenedPeers {
  readonly accepted: readonly Peer[];
  readonly errors: readonly PeerError[];
}

export function screenPeers(local: LocalNode, peers: readonly Peer[], backendType: string): ScreenedPeers {
  const sorted = [...peers].sort(
    (a, b) => a.subnet.network - b.subnet.network || a.subnet.prefix - b.subnet.prefix || compare(a.name, b.name),
  );
  const accepted: Peer[] = [];
  const errors: PeerError[] = [];
  // Peers come sorted by network address, so a subnet overlaps an accepted one exactly when it starts
  // at or before the furthest end accepted so far: one comparison instead of a scan (O(n log n)).
  let furthest: { peer: Peer; end: number } | undefined;
  const byAddress = new Map<number, Peer>();
  const reject = (peer: Peer, code: PeerError['code'], message: string): void => {
    errors.push({ peer: peer.name, code, message: `${peer.name}: ${message}` });
  };
  for (const peer of sorted) {
    if (peer.name === local.name) continue;
    if (peer.backendType !== backendType) {
      reject(peer, 'backend-mismatch', `announces backend '${peer.backendType}', this node runs '${backendType}'`);
    } else if (peer.publicIP === local.publicIP) {
      reject(peer, 'subnet-conflict', `uses this node's address ${formatIPv4(local.publicIP)}`);
    } else if (overlaps(peer.subnet, local.subnet)) {
      reject(peer, 'subnet-conflict', `subnet ${formatCidr(peer.subnet)} overlaps this node's ${formatCidr(local.subnet)}`);
    } else {
      const clash = furthest && furthest.end >= peer.subnet.network ? furthest.peer : byAddress.get(peer.publicIP);
      if (clash) {
        reject(peer, 'subnet-conflict', `subnet ${formatCidr(peer.subnet)} or address conflicts with ${clash.name}`);
      } else {
        accepted.push(peer);
        byAddress.set(peer.publicIP, peer);
        const end = broadcast(peer.subnet);
        if (!furthest || end > furthest.end) furthest = { peer, end };
      }
    }
  }
  return { accepted, errors };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
