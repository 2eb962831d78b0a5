/**
 * `npm run bench [-- --json] [-- --only NAME]`: measures Paddock's speed targets and prints them.
 * With --json the last line is one JSON object of named figures. Each suite adds its own figures.
 */
import os from 'node:os';
import { suites } from './suites.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1] : undefined;

const figures: Record<string, number | string> = {};
const machine = `${os.cpus().length} cpus, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model ?? 'unknown cpu'}`;
process.stdout.write(`paddock bench on ${machine}\n`);

for (const suite of suites) {
  if (only && suite.name !== only) continue;
  process.stdout.write(`\n## ${suite.name}\n`);
  try {
    const got = await suite.run((line) => process.stdout.write(`  ${line}\n`));
    for (const [k, v] of Object.entries(got)) {
      // A figure already named for its suite (`agent_cache_ratio`) keeps its name.
      figures[k.startsWith(`${suite.name}_`) ? k : `${suite.name}.${k}`] = v;
      process.stdout.write(`  ${k}: ${v}\n`);
    }
  } catch (e) {
    process.stdout.write(`  skipped: ${(e as Error).message}\n`);
    figures[`${suite.name}.error`] = (e as Error).message;
  }
}
if (json) process.stdout.write(JSON.stringify(figures) + '\n');
