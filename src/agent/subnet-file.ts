/** Writes the CNI plugin's subnet file atomically (temp file + rename) and only when it changes. */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { renderSubnetEnv, type SubnetEnv } from '../common/subnet-env.js';

export function writeSubnetFile(file: string, env: SubnetEnv): boolean {
  const text = renderSubnetEnv(env);
  try {
    if (readFileSync(file, 'utf8') === text) return false;
  } catch {
    /* missing: write it */
  }
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
  return true;
}
