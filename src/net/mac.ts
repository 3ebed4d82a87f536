/**
 * VTEP MACs: the MAC of a node's VXLAN device, published in its lease and programmed into every
 * peer's neighbour and FDB tables. Pure, no I/O.
 *
 * It must be stable (same node, same MAC across agent restarts, device re-creation and upgrades: a
 * changed MAC re-programs every peer's FDB and drops traffic until they resync) and unique among the
 * cluster's VTEPs. Every node has a name and at least one underlay address, so the MAC is derived
 * from those, per underlay family (one VXLAN device per underlay family needs one MAC each):
 *
 * - IPv4 underlay: `0e:54:a:b:c:d`, the four octets of the node's IPv4 address, exactly as Twill
 *   always did (`0x0e`: locally administered unicast; `0x54` = 'T'). Running clusters keep their MACs.
 *   Unique as long as the underlay addresses are.
 * - IPv6 underlay (IPv6-only nodes, or the IPv6 device of a dual-underlay node): SHA-256 of
 *   `twill-vtep-v6\0<node name>\0<RFC 5952 address>`, 46 bits of it: the first octet gets the locally
 *   administered bit set and the multicast bit cleared. 46 bits make a collision in a 5,000-node
 *   cluster about 1 in 5 million (n²/2⁴⁷). The two fixed prefixes Twill uses elsewhere (`0e:54` VTEPs from IPv4,
 *   `0a:58` pod MACs) are steered away from (second octet's top bit flipped), so a hashed MAC never
 *   equals an IPv4-derived one. The host id (src/agent/host-id.ts) is not used: it lives in /run
 *   and is recreated after a reboot, which would change the MAC.
 */
import { createHash } from 'node:crypto';
import { formatIp, type Family, type Ip } from './ip.js';

/** `aa:bb:cc:dd:ee:ff` from six bytes. */
export function formatMac(bytes: readonly number[]): string {
  if (bytes.length !== 6 || bytes.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) throw new RangeError('a MAC has six bytes');
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The six bytes of `aa:bb:cc:dd:ee:ff` (either case), or undefined. */
export function parseMac(text: string): number[] | undefined {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) return undefined;
  return text.split(':').map((h) => parseInt(h, 16));
}

/** Locally administered (bit 1 of the first octet) and unicast (bit 0 clear). */
export function isLocalUnicastMac(text: string): boolean {
  const b = parseMac(text);
  return b !== undefined && (b[0]! & 0x03) === 0x02;
}

/** Today's VTEP MAC of an IPv4 underlay address (the unsigned 32-bit number): 0e:54 + the octets. */
export function vtepMacForIPv4(publicIP: number): string {
  const v = publicIP >>> 0;
  return formatMac([0x0e, 0x54, (v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
}

/** What a VTEP MAC is derived from: the node's name and its underlay address(es). */
export interface VtepMacSource {
  readonly name: string;
  /** IPv4 underlay address: the number the IPv4 code uses, or an `Ip` of family 4. */
  readonly publicIP?: number | Ip;
  /** IPv6 underlay address. */
  readonly publicIP6?: Ip;
}

/**
 * The MAC of the node's VXLAN device on the underlay of family `underlay` (default: IPv4 when the
 * node has an IPv4 underlay address, else IPv6). Throws RangeError when the node has no address of
 * that family (or an address of the wrong family in a field).
 */
export function vtepMacForNode(node: VtepMacSource, underlay?: Family): string {
  const family = underlay ?? (node.publicIP !== undefined ? 4 : 6);
  if (family === 4) {
    const a = node.publicIP;
    if (a === undefined) throw new RangeError(`node ${node.name} has no IPv4 underlay address`);
    if (typeof a === 'number') {
      if (!Number.isInteger(a) || a < 0 || a > 0xffffffff) throw new RangeError(`${a} is not an IPv4 address value`);
      return vtepMacForIPv4(a);
    }
    if (a.family !== 4) throw new RangeError(`node ${node.name}: publicIP must be IPv4`);
    return vtepMacForIPv4(Number(a.value));
  }
  const a6 = node.publicIP6;
  if (a6 === undefined) throw new RangeError(`node ${node.name} has no IPv6 underlay address`);
  if (a6.family !== 6) throw new RangeError(`node ${node.name}: publicIP6 must be IPv6`);
  const h = createHash('sha256').update(`twill-vtep-v6\0${node.name}\0${formatIp(a6)}`).digest();
  const b = [(h[0]! & 0xfc) | 0x02, h[1]!, h[2]!, h[3]!, h[4]!, h[5]!];
  if ((b[0] === 0x0e && b[1] === 0x54) || (b[0] === 0x0a && b[1] === 0x58)) b[1] = b[1]! ^ 0x80;
  return formatMac(b);
}
