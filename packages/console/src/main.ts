/** The console's process: parse the environment (fail fast, naming what is missing), then serve. */
import { loadConsoleConfig } from './config';
import { startConsole } from './server';

async function main(): Promise<void> {
  const config = loadConsoleConfig();
  const running = await startConsole(config);
  const stop = () => void running.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  console.error(`[console] ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
