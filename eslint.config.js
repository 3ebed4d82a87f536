// Lint: typescript-eslint's recommended rules, plus the layer rule: the pure core (common, net,
// ipam allocator, backends, policy, model, plan rendering) imports no process, file or network I/O.
import tseslint from 'typescript-eslint';

const io = ['node:child_process', 'child_process', 'node:fs', 'fs', 'node:fs/promises', 'node:net', 'net', 'node:dgram'];

export default tseslint.config(
  { ignores: ['dist/**', 'bin/**', 'node_modules/**', 'scripts/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: [
      'src/common/**/*.ts',
      'src/net/**/*.ts',
      'src/ipam/allocator.ts',
      'src/ipam/types.ts',
      'src/ipam/memory-store.ts',
      'src/cni/config.ts',
      'src/cni/env.ts',
      'src/cni/result.ts',
      'src/cni/pod-network.ts',
      'src/cni/add-plan.ts',
      'src/model/**/*.ts',
      'src/datastore/types.ts',
      'src/datastore/list-watch.ts',
      'src/datastore/async-queue.ts',
      'src/datastore/memory/**/*.ts',
      'src/dataplane/diff.ts',
      'src/dataplane/render-ip.ts',
      'src/dataplane/state.ts',
      'src/dataplane/fake-kernel.ts',
      'src/agent/nft-rules.ts',
      'src/agent/lease-set.ts',
      'src/cli/lab/topology.ts',
      'src/backends/**/*.ts',
      'src/policy/**/*.ts',
    ],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: io.map((name) => ({ name, message: 'pure core: no I/O here; use a port' })) }],
    },
  },
);
