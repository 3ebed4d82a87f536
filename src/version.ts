/** Twill's version, from package.json (read once, on first use: no cost for a start that never asks). */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function twillVersion(): string {
  if (cached === undefined) {
    try {
      // dist/src/version.js -> the repository (or install) root.
      cached = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
