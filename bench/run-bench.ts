/**
 * The common tail of every benchmark entry point: cleanup on SIGINT/SIGTERM/SIGHUP and on exit,
 * errors reported with the benchmark's name and a non-zero exit status.
 */
export async function runBench(name: string, body: () => Promise<void>, cleanup: () => void): Promise<void> {
  const onSignal = (sig: NodeJS.Signals): void => {
    cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  process.on('exit', cleanup);
  try {
    await body();
  } catch (e) {
    process.stderr.write(`${name}: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  } finally {
    cleanup();
  }
}
