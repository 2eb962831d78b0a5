import { main } from './main.js';

/** Process entry for `paddock`: sets the exit code and lets servers keep the process alive. */
const code = await main(process.argv.slice(2));
if (code !== 0) process.exitCode = code;
