// Builds Twill: type-checks and compiles everything to dist/ (tests run from there), then bundles
// the CNI plugin into one file, bin/twill-cni, so a runtime's exec loads a single small module.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';

execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
mkdirSync('bin', { recursive: true });
await build({
  entryPoints: ['src/cni/main.ts'],
  outfile: 'bin/twill-cni.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  // CommonJS loads 6-9 ms faster than an ES module here (no async module graph), and an
  // extensionless CommonJS file runs wherever it is installed (/opt/cni/bin has no package.json).
  format: 'cjs',
  minify: true,
  legalComments: 'none',
  // NODE_EXTRA_CA_CERTS makes every Node start read a CA bundle (~70 ms here); the plugin opens no TLS.
  banner: { js: '#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node' },
});
chmodSync('bin/twill-cni.js', 0o755);
// bin/twill-cni, what runtimes execute: a POSIX sh shim that hands the call to the node agent's CNI
// socket when it listens, and runs twill-cni.js itself otherwise.
copyFileSync('src/cni/twill-cni.sh', 'bin/twill-cni');
chmodSync('bin/twill-cni', 0o755);
// bin/ sits inside this "type": "module" package: tell Node the extensionless bundle is CommonJS.
writeFileSync('bin/package.json', '{ "type": "commonjs" }\n');
// The CLI and the agent: thin launchers over the compiled ES modules.
writeFileSync('bin/twill', '#!/usr/bin/env node\nimport("../dist/src/cli/main.js");\n', { mode: 0o755 });
writeFileSync('bin/twilld', '#!/usr/bin/env node\nimport("../dist/src/agent/main.js");\n', { mode: 0o755 });
