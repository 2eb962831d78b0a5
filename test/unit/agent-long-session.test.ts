import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/main/store/store.js';
import { repoRoot } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dir.js';
import { billedInput, enqueueLongSession, longSession } from '../support/long-session.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const TURNS = 200;

/** Runs the long session in a child process; resolves with its output when it exits. */
function child(
  home: string,
  url: string,
  id: string,
  onLine: (line: string, kill: () => void) => void = () => {},
) {
  const p = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(repoRoot, 'test/support/long-session.ts'),
      home,
      url,
      id,
      String(TURNS),
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  let pending = '';
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    pending += d.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const l of lines) onLine(l, () => p.kill('SIGKILL'));
  });
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise<{ code: number | null; signal: string | null; out: string; err: string }>(
    (resolve) => p.on('exit', (code, signal) => resolve({ code, signal, out, err })),
  );
}

describe('a 200-turn session of 30,000-character tool outputs', () => {
  let api: MockMessagesApi;
  let home: { dir: string; cleanup(): void };
  beforeAll(async () => {
    api = await startMessagesApi();
    home = tempDir('paddock-long-');
  });
  afterAll(async () => {
    await api.close();
    home.cleanup();
  });

  it('bills at most a quarter of the uncached input with prompt caching, and never overflows', async () => {
    const store = Store.open(home.dir);
    try {
      const billed: number[] = [];
      for (const promptCaching of [true, false]) {
        enqueueLongSession(api, TURNS);
        const id = store.sessions.create({
          title: 'long',
          model: 'claude-opus-5-5',
          approvalMode: 'auto',
        }).id;
        const before = api.requests.length;
        const outcome = await longSession({
          store,
          apiUrl: api.url,
          sessionId: id,
          promptCaching,
        }).run('Run the job.');
        expect(outcome.stopReason).toBe('end_turn');
        expect(api.requests.slice(before).every((r) => r.outcome === 200)).toBe(true);
        const row = store.sessions.get(id)!;
        if (!promptCaching) expect(row.cacheReadTokens + row.cacheWriteTokens).toBe(0);
        billed.push(billedInput(row));
      }
      expect(billed[0]! / billed[1]!).toBeLessThanOrEqual(0.25);
      expect(api.problems).toEqual([]);
    } finally {
      store.dispose();
    }
  }, 120_000);

  it('survives kill -9 in the middle, resumes from the compacted state and finishes', async () => {
    enqueueLongSession(api, TURNS);
    let sessionId = '';
    const first = await child(home.dir, api.url, 'new', (line, kill) => {
      if (line.startsWith('session ')) sessionId = line.slice('session '.length);
      if (line === 'turn 120') kill();
    });
    expect(first.signal).toBe('SIGKILL');
    expect(sessionId).toMatch(/^ses_/);
    const requestsBefore = api.requests.length;
    // It was compacted before it died (the window holds about 25 of these outputs).
    const store = Store.open(home.dir);
    try {
      const events = store.sessions.events(sessionId);
      expect(events.some((e) => e.type === 'context')).toBe(true);
    } finally {
      store.dispose();
    }

    const second = await child(home.dir, api.url, sessionId);
    expect(second.err).toBe('');
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/outcome end_turn/);
    expect(api.problems).toEqual([]);
    // Every request stayed inside the window: none was refused as too long.
    expect(api.requests.every((r) => r.outcome === 200)).toBe(true);
    // The resumed run started from the compaction: its first request does not carry the
    // outputs of the early turns again.
    const resumedFirst = JSON.stringify(api.requests[requestsBefore]!.body.messages);
    expect(resumedFirst).not.toContain('turn 1\n');
    expect(resumedFirst.length / 4).toBeLessThan(200_000);

    const after = Store.open(home.dir);
    try {
      const results = after.sessions
        .events(sessionId)
        .filter((e) => e.type === 'tool_result')
        .map((e) => (e.payload as { content: string }).content.split('\n')[0]);
      // Each of the 200 turns has its output (the one cut by the kill was run again).
      for (let t = 1; t <= TURNS; t++) expect(results, `turn ${t}`).toContain(`turn ${t}`);
      expect(after.sessions.get(sessionId)!.status).toBe('done');
    } finally {
      after.dispose();
    }
  }, 600_000);
});
