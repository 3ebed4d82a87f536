/** STATUS (spec 1.1): can this plugin add a pod right now? Code 50 says why not. */
import { ErrorCode, TwillError, isTwillError } from '../../common/errors.js';
import { FsIpamStore } from '../../ipam/fs-store.js';
import type { NetConf } from '../config.js';
import type { CniDeps } from '../deps.js';
import { ipamDataDir } from '../pod-network.js';
import { resolveNetwork } from './context.js';

export function cmdStatus(conf: NetConf, deps: CniDeps): void {
  let net;
  try {
    net = resolveNetwork(conf, deps);
  } catch (e) {
    if (isTwillError(e) && e.code === ErrorCode.NoSubnet) throw new TwillError(ErrorCode.NotAvailable, e.message);
    throw e;
  }
  let store;
  try {
    store = FsIpamStore.open(ipamDataDir(conf), conf.name);
  } catch (e) {
    throw new TwillError(ErrorCode.NotAvailable, `IPAM store unusable: ${(e as Error).message}`);
  }
  const capacity = net.last - net.first + 1 - (net.gateway >= net.first && net.gateway <= net.last ? 1 : 0);
  const used = store.list().filter((r) => r.ip >= net.first && r.ip <= net.last).length;
  if (used >= capacity) throw new TwillError(ErrorCode.NotAvailable, `no free pod address: all ${capacity} are reserved`);
}
