import type { Command } from 'commander';
import { runDoctor } from '../core/doctor.js';
import { vmDoctorInputs } from '../core/vm-doctor.js';
import { dataDir } from '../platform/app-paths.js';

const MARK = { ok: '✓', warn: '!', fail: '✗' } as const;

/** `paddock doctor`: what works, what is missing, and the command that fixes each. */
export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('Check Node, the data folder, the database, QEMU, KVM, the image and the API key')
    .option('--json', 'print the checks as JSON')
    .action(async (opts: { json?: boolean }) => {
      const home = dataDir();
      const checks = await runDoctor({
        dataDir: home,
        env: process.env,
        ...(await vmDoctorInputs(home)),
      });
      if (opts.json) {
        process.stdout.write(JSON.stringify({ checks }) + '\n');
      } else {
        for (const c of checks) {
          process.stdout.write(`${MARK[c.status]} ${c.label}: ${c.detail}\n`);
          if (c.fix) process.stdout.write(`    fix: ${c.fix}\n`);
        }
      }
      if (checks.some((c) => c.status === 'fail')) process.exitCode = 1;
    });
}
