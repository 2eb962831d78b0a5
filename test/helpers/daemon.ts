import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { MockMessagesApi } from '../support/messages-api/server.js';
import { repoRoot } from './cli.js';
import { vmTestHome } from './vm-image.js';

/** A `paddock daemon --json` process; `lines` fills as it logs. */
export interface Daemon {
  proc: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<number | null>;
  waitFor(
    pred: (l: Record<string, unknown>) => boolean,
    ms?: number,
  ): Promise<Record<string, unknown>>;
}

/** Starts `paddock daemon` on `home` against the local Messages API and waits for its ready line. */
export async function startDaemon(
  home: string,
  api: MockMessagesApi,
  args: string[] = [],
): Promise<Daemon> {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'src/main/cli/entry.ts'), 'daemon', '--json', ...args],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        PADDOCK_HOME: home,
        ANTHROPIC_API_KEY: 'test-key',
        ANTHROPIC_BASE_URL: api.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: Record<string, unknown>[] = [];
  const waiters: {
    pred: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    const l = JSON.parse(line) as Record<string, unknown>;
    lines.push(l);
    for (const w of waiters.filter((w) => w.pred(l))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(l);
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const d: Daemon = {
    proc,
    lines,
    stderr: () => stderr,
    exited,
    waitFor: (pred, ms = 60_000) =>
      new Promise((resolve, reject) => {
        const found = lines.find(pred);
        if (found) return resolve(found);
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `daemon did not log the expected line; stderr: ${stderr}; lines: ${JSON.stringify(lines)}`,
              ),
            ),
          ms,
        );
        waiters.push({
          pred,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      }),
  };
  await d.waitFor((l) => String(l.message).startsWith('paddock daemon ready'));
  return d;
}

/** iCalendar text for one slot `inMs` from now, in UTC, to the second. */
export function onceIn(inMs: number): string {
  const at = new Date(Math.ceil((Date.now() + inMs) / 1000) * 1000);
  const s = at.toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `DTSTART;TZID=UTC:${s}\nRRULE:FREQ=DAILY;COUNT=1`;
}

/** A fresh data folder that shares the test image (so the database starts empty). */
export function freshHome(dir: string): string {
  const home = path.join(dir, 'home');
  fs.mkdirSync(home);
  fs.symlinkSync(path.join(vmTestHome, 'images'), path.join(home, 'images'));
  return home;
}
