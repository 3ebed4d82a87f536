/**
 * Registers Twill's route protocol numbers by name for iproute2, so `ip route` prints
 * `proto twill` (the agent's peer routes) and `proto twill-cni` (the plugin's pod routes) instead
 * of bare numbers. iproute2 reads every `*.conf` in /etc/iproute2/rt_protos.d. Written by twilld
 * at start (and by whatever installs the plugin); only a missing or different file is rewritten,
 * atomically (temp file + rename). Names are cosmetic: Twill itself always uses the numbers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CNI_ROUTE_PROTO, CNI_ROUTE_PROTO_NAME, ROUTE_PROTO, ROUTE_PROTO_NAME } from '../common/constants.js';

export const RT_PROTOS_DIR = '/etc/iproute2/rt_protos.d';
export const RT_PROTOS_FILE = 'twill.conf';

export function renderRtProtos(): string {
  return [
    '# Route protocols of Twill (written by twilld; do not edit).',
    `${ROUTE_PROTO}\t${ROUTE_PROTO_NAME}`,
    `${CNI_ROUTE_PROTO}\t${CNI_ROUTE_PROTO_NAME}`,
    '',
  ].join('\n');
}

export type RtProtosResult = { path: string; written: boolean } | { path: string; skipped: string };

/**
 * Writes `<dir>/twill.conf` when it is missing or differs. Skips (does not create /etc/iproute2)
 * when iproute2's configuration directory does not exist; throws on file-system errors.
 */
export function ensureRtProtos(dir = RT_PROTOS_DIR): RtProtosResult {
  const file = path.join(dir, RT_PROTOS_FILE);
  const want = renderRtProtos();
  if (!fs.existsSync(path.dirname(dir))) return { path: file, skipped: `${path.dirname(dir)} does not exist` };
  let have: string | undefined;
  try {
    have = fs.readFileSync(file, 'utf8');
  } catch {
    have = undefined;
  }
  if (have === want) return { path: file, written: false };
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  fs.writeFileSync(tmp, want, { mode: 0o644 });
  fs.renameSync(tmp, file);
  return { path: file, written: true };
}
