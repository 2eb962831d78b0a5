#!/usr/bin/env node
// The `paddock` command. Runs the bundled CLI that `npm run build` (run by `npm ci`) writes.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
if (!existsSync(cli)) {
  process.stderr.write(
    'paddock: Paddock is not built yet: run `npm run build` in the checkout first.\n',
  );
  process.exit(1);
}
await import(cli);
