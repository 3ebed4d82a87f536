/**
 * This host's identity for the lease (Lease.hostId): a random id created once and kept in a file
 * next to the subnet file (`/run/twill/host-id` by default, one per lab node). /etc/machine-id is not
 * used: containers and the lab's node namespaces share it. An agent restarted on the same host reads
 * the same id; a lost file (e.g. /run after a reboot) is covered by the lease's public IP (sameHost).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { HOST_ID_PATTERN } from '../model/lease.js';

export function hostIdFile(subnetFile: string): string {
  return path.join(path.dirname(subnetFile), 'host-id');
}

/** Reads the id, or creates it (atomically) when missing or malformed. */
export function loadHostId(file: string): string {
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (HOST_ID_PATTERN.test(id)) return id;
  } catch {
    /* missing: create it */
  }
  const id = randomUUID();
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${id}\n`, { mode: 0o644 });
  renameSync(tmp, file);
  return id;
}
