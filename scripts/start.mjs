// `npm start`: runs the desktop app when the Electron binary is installed, and says what to do
// instead when it is not (it cannot be downloaded on every machine).
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';

const require = createRequire(import.meta.url);
let electronPath;
try {
  electronPath = require('electron');
} catch {
  electronPath = undefined;
}
if (typeof electronPath !== 'string' || !fs.existsSync(electronPath)) {
  process.stderr.write(
    'The Electron binary is not installed on this machine, so the desktop window cannot open; run `npx paddock serve` and open the address it prints in a browser instead.\n',
  );
  process.exit(1);
}
const built = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);
const child = spawn(electronPath, ['.'], { stdio: 'inherit' });
child.on('exit', (code) => process.exit(code ?? 1));
