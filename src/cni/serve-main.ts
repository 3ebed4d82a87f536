/**
 * `twill-cni-server SOCKET`: serves twill-cni calls on SOCKET without the rest of the node agent
 * (twilld serves the same socket itself). For nodes where another agent owns routing, and for the
 * latency benchmark and tests. Runs until killed.
 */
import { startCniServer } from './server.js';

const socketPath = process.argv[2];
if (!socketPath || !socketPath.startsWith('/')) {
  process.stderr.write('usage: twill-cni-server /absolute/path/to/cni.sock\n');
  process.exit(2);
}
const server = await startCniServer({ socketPath, logSink: { write: (l) => process.stderr.write(l) } });
process.stdout.write(`serving twill-cni on ${socketPath}\n`);
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => server.close(() => process.exit(0)));
