/**
 * Whether the agent runs a call that came in on its CNI socket, from what the kernel says about the
 * caller (never from the request). Pure.
 */
import { ErrorCode, TwillError } from '../common/errors.js';
import type { PeerCred } from './peer.js';
import { isOtherWireVersion, parseRequest, type WireRequest } from './wire.js';

export interface CallerFacts {
  /** SO_PEERCRED of the connection; undefined when it could not be read. */
  peer: PeerCred | undefined;
  /** Network namespace of peer.pid (`net:[inode]`); undefined when not visible. */
  netns: string | undefined;
}

export type Decision =
  | { kind: 'run'; req: WireRequest }
  | { kind: 'standalone'; reason: string }
  | { kind: 'refuse'; error: TwillError };

export function notRootError(uid: number): TwillError {
  return new TwillError(ErrorCode.CallerNotRoot, `twill-cni serves root only: the caller runs as uid ${uid}`);
}

/**
 * Refuses a non-root caller (whatever it sent); declines (standalone) what the agent cannot or must
 * not run: a shim of another protocol version, a caller it cannot identify, a caller in another
 * network namespace. Refuses a malformed request. Runs the rest.
 */
export function decide(text: string, caller: CallerFacts, ownNetns: string): Decision {
  const { peer } = caller;
  if (peer !== undefined && peer.uid !== 0) return { kind: 'refuse', error: notRootError(peer.uid) };
  if (isOtherWireVersion(text)) return { kind: 'standalone', reason: 'a shim of another protocol version' };
  const req = parseRequest(text);
  if (!req) return { kind: 'refuse', error: new TwillError(ErrorCode.InvalidEnv, 'malformed request on the CNI socket') };
  if (peer === undefined) return { kind: 'standalone', reason: 'the caller could not be identified (SO_PEERCRED)' };
  if (caller.netns === undefined) return { kind: 'standalone', reason: `the caller (pid ${peer.pid}) is not visible in this PID namespace` };
  if (caller.netns !== ownNetns) return { kind: 'standalone', reason: `the caller runs in network namespace ${caller.netns}, the agent in ${ownNetns}` };
  return { kind: 'run', req };
}
