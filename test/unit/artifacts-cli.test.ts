import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/main/store/store.js';
import { paddock } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('paddock artifacts', () => {
  let t: { dir: string; cleanup(): void };
  let env: NodeJS.ProcessEnv;
  let task: string;
  let chart: string;
  let notes: string;
  let loose: string;

  beforeAll(() => {
    t = tempDir();
    env = { PADDOCK_HOME: t.dir, ANTHROPIC_API_KEY: '' };
    const store = Store.open(t.dir);
    try {
      task = store.sessions.create({ title: 'Report', model: 'm', approvalMode: 'auto' }).id;
      chart = store.artifacts.create({
        sessionId: task,
        title: 'Sales chart',
        kind: 'svg',
        content: '<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>',
      }).id;
      notes = store.artifacts.create({
        sessionId: task,
        title: 'Notes',
        kind: 'markdown',
        content: '# Notes\n\n| a | b |\n|---|---|\n| 1 | 2 |\n',
      }).id;
      store.artifacts.addVersion(notes, '# Notes v2\n');
      loose = store.artifacts.create({
        sessionId: null,
        title: 'Loose',
        kind: 'code',
        content: 'print(1)',
      }).id;
    } finally {
      store.dispose();
    }
  });
  afterAll(() => t.cleanup());

  it('lists a task’s artifacts, and every artifact, as text and as JSON', () => {
    const text = paddock(['artifacts', 'list', '--task', task], env);
    expect(text.stderr).toBe('');
    expect(text.status).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^${chart}\\s+svg\\s+v1\\s+.*Sales chart$`));
    expect(lines[1]).toMatch(new RegExp(`^${notes}\\s+markdown\\s+v2\\s+.*Notes$`));

    const all = paddock(['artifacts', 'list', '--json'], env);
    expect(all.status).toBe(0);
    const list = JSON.parse(all.stdout) as { id: string; taskId: string | null }[];
    expect(list.map((a) => a.id).sort()).toEqual([chart, notes, loose].sort());
    expect(list.find((a) => a.id === loose)!.taskId).toBeNull();
  });

  it('prints the newest version, or the one asked for', () => {
    expect(paddock(['artifacts', 'show', notes], env).stdout).toBe('# Notes v2\n');
    const v1 = paddock(['artifacts', 'show', notes, '--version', '1'], env);
    expect(v1.stdout).toBe('# Notes\n\n| a | b |\n|---|---|\n| 1 | 2 |\n');
    expect(paddock(['artifacts', 'show', loose], env).stdout).toBe('print(1)\n');
  });

  it('exports a standalone HTML file that loads nothing from the network', () => {
    const file = path.join(t.dir, 'notes.html');
    const r = paddock(['artifacts', 'export', notes, file, '--version', '1'], env);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^Wrote .*notes\.html \(\d+ bytes\)\.\n$/);
    const html = fs.readFileSync(file, 'utf8');
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).toContain('Content-Security-Policy');
    expect(html).not.toMatch(/<(script|link)\b[^>]*\b(src|href)\s*=\s*["']?https?:/i);
  });

  it('says what is wrong in a sentence: an unknown id, a missing version, a bad --version', () => {
    const missing = paddock(['artifacts', 'show', 'art_nope'], env);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe('paddock: There is no artifact art_nope.\n');
    const noVersion = paddock(['artifacts', 'show', chart, '--version', '3'], env);
    expect(noVersion.stderr).toBe(
      `paddock: Artifact ${chart} has no version 3; its versions are 1 to 1.\n`,
    );
    const bad = paddock(
      ['artifacts', 'export', chart, path.join(t.dir, 'x.html'), '--version', 'two'],
      env,
    );
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe('paddock: --version must be a version number (1, 2, …), not two.\n');
    const task404 = paddock(['artifacts', 'list', '--task', 'ses_nope'], env);
    expect(task404.stderr).toBe('paddock: There is no task ses_nope.\n');
  });
});
