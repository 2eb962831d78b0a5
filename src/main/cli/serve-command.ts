import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { PaddockError } from '../../shared/result.js';
import { createCore } from '../core/core.js';
import { dataDir, packageRoot } from '../platform/app-paths.js';
import { startWebHost } from '../web/server.js';

/** `paddock serve`: the real UI in a browser, on 127.0.0.1 behind a per-launch token. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve the Paddock UI on 127.0.0.1 for a browser (prints the address with its token)',
    )
    .option('--port <n>', 'port to listen on; 0 picks a free one', '7860')
    .action(async (opts: { port: string }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new PaddockError(
          'BAD_PORT',
          `--port must be a whole number from 0 to 65535, not ${opts.port}.`,
        );
      }
      const staticDir = path.join(packageRoot(), 'dist', 'renderer');
      if (!fs.existsSync(path.join(staticDir, 'index.html'))) {
        throw new PaddockError('NOT_BUILT', 'The UI is not built yet: run `npm run build` first.');
      }
      const core = createCore({ dataDir: dataDir(), host: 'web' });
      let host;
      try {
        host = await startWebHost({ core, port, staticDir });
      } catch (e) {
        core.dispose();
        if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new PaddockError(
            'PORT_IN_USE',
            `Port ${port} is in use: pass --port 0 to pick a free one.`,
          );
        }
        throw e;
      }
      process.stdout.write(`Paddock is serving at ${host.url}\n`);
      const stop = () => {
        // Running tasks are stopped (their VMs too) before the process ends.
        void host
          .close()
          .then(() => core.close())
          .finally(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
