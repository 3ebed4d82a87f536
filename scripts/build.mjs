// Builds Twill: type-checks and compiles everything to dist/ (tests run from there), then bundles
// the CNI plugin into one file, bin/twill-cni, so a runtime's exec loads a single small module.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';

execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
mkdirSync('bin', { recursive: true });
await build({
  entryPoints: ['src/cni/main.ts'],
  outfile: 'bin/twill-cni',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minify: true,
  legalComments: 'none',
  // NODE_EXTRA_CA_CERTS makes every Node start read a CA bundle (~70 ms here); the plugin opens no TLS.
  banner: { js: '#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node' },
});
chmodSync('bin/twill-cni', 0o755);
// The CLI: a thin launcher over the compiled modules.
import { writeFileSync } from 'node:fs';
writeFileSync('bin/twill', '#!/usr/bin/env node\nimport "../dist/src/cli/main.js";\n', { mode: 0o755 });
writeFileSync('bin/twilld', '#!/usr/bin/env node\nimport "../dist/src/agent/main.js";\n', { mode: 0o755 });
