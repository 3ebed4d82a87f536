/**
 * Asynchronous program runner for the long-running agent (the CNI plugin's CommandRunner in
 * command.ts is synchronous, which is right for a one-shot process but would stall the agent's
 * event loop). Argument arrays only, never a shell; input goes on stdin.
 */
import { spawn } from 'node:child_process';
import { COMMAND_TIMEOUT_MS, type CommandResult, type CommandRunner } from './command.js';
import { DataplaneError } from './errors.js';

export interface AsyncCommandRunner {
  run(argv: readonly string[], input?: string): Promise<CommandResult>;
}

/** Runs programs asynchronously; each run is killed (SIGKILL) after `timeoutMs` and reported as status 124. */
export function createSpawnAsyncRunner(timeoutMs: number): AsyncCommandRunner {
  return {
    run(argv, input) {
      const [file, ...args] = argv;
      if (file === undefined) return Promise.reject(new DataplaneError('spawn-failed', 'empty command'));
      return new Promise((resolve, reject) => {
        const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on('data', (b: Buffer) => out.push(b));
        child.stderr.on('data', (b: Buffer) => err.push(b));
        child.on('error', (e) => reject(new DataplaneError('spawn-failed', `cannot run ${file}: ${e.message}`, { cause: e })));
        const t0 = Date.now();
        child.on('close', (code, signal) => {
          const timedOut = signal === 'SIGKILL' && Date.now() - t0 >= timeoutMs;
          resolve({
            status: timedOut ? 124 : (code ?? (signal ? 128 : 1)),
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: timedOut ? `${file} did not finish within ${timeoutMs / 1000} s` : Buffer.concat(err).toString('utf8'),
          });
        });
        child.stdin.on('error', () => {
          /* the program exited before reading all input; its status says why */
        });
        child.stdin.end(input ?? '');
      });
    },
  };
}

export const spawnAsyncRunner: AsyncCommandRunner = createSpawnAsyncRunner(COMMAND_TIMEOUT_MS);

/** Adapts a synchronous CommandRunner (e.g. a test double written for the CNI side). */
export function fromSyncRunner(runner: CommandRunner): AsyncCommandRunner {
  return { run: async (argv, input) => runner.run(argv, input) };
}
