import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  Changeset,
  ChangesetSummary,
  ChangeOutcome,
} from '../../src/shared/changes-contract.js';
import { paddock } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dir.js';
import { FakeOverlay, setup, writeTree } from '../helpers/changes-fake.js';

describe('paddock changes', () => {
  let t: { dir: string; cleanup(): void };
  let env: NodeJS.ProcessEnv;
  let lower: string;
  let task: string;
  let id: string;

  beforeAll(async () => {
    t = tempDir('paddock-changes-cli-');
    const home = path.join(t.dir, 'home');
    env = { PADDOCK_HOME: home, ANTHROPIC_API_KEY: '' };
    fs.mkdirSync(path.join(t.dir, 'folder'));
    lower = fs.realpathSync(path.join(t.dir, 'folder'));
    writeTree(lower, {
      'notes.md': 'one\ntwo\nthree\n',
      'old.txt': 'old\n',
      'img.bin': Buffer.from([0, 1, 2]),
    });
    const o = new FakeOverlay('work', lower, path.join(t.dir, 'upper'));
    o.write('notes.md', 'one\nTWO\nthree\n').write('new.txt', 'new\n').remove('old.txt');
    const s = setup(home, lower);
    try {
      task = s.task;
      id = (await s.service.stage(task, o.source())).changesets[0]!.id;
    } finally {
      s.close();
    }
  });
  afterAll(() => t.cleanup());

  it('lists changesets, by task and waiting ones, as text and JSON', () => {
    const text = paddock(['changes', 'list', '--task', task], env);
    expect(text.stderr).toBe('');
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(
      new RegExp(`^${id}  pending    .*  work  \\(1 added, 1 modified, 1 deleted\\)  ${lower}\\n$`),
    );
    const json = paddock(['changes', 'list', '--json'], env);
    const list = JSON.parse(json.stdout) as ChangesetSummary[];
    expect(list.map((c) => c.id)).toEqual([id]);
  });

  it('shows the files, and the text diff of one', () => {
    const show = paddock(['changes', 'show', id], env);
    expect(show.status).toBe(0);
    const lines = show.stdout.trim().split('\n');
    expect(lines[0]).toBe(`${id}  pending  work  ${lower}  task ${task}`);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual([
      'pending added',
      'pending modified',
      'pending deleted',
    ]);
    const diff = paddock(['changes', 'show', id, 'notes.md'], env);
    expect(diff.stdout).toBe(
      '--- notes.md (before)\n+++ notes.md (after)\n one\n-two\n+TWO\n three\n',
    );
    const json = JSON.parse(paddock(['changes', 'show', id, '--json'], env).stdout) as Changeset;
    expect(json.files.map((f) => f.path)).toEqual(['new.txt', 'notes.md', 'old.txt']);
  });

  it('applies, undoes and discards, by path or all, with JSON outcomes', () => {
    const a = paddock(['changes', 'apply', id, 'notes.md', '--json'], env);
    expect(a.status).toBe(0);
    const outcome = JSON.parse(a.stdout) as ChangeOutcome;
    expect(outcome.refused).toEqual([]);
    expect(outcome.changeset.status).toBe('partial');
    expect(fs.readFileSync(path.join(lower, 'notes.md'), 'utf8')).toBe('one\nTWO\nthree\n');

    const rest = paddock(['changes', 'apply', id], env);
    expect(rest.stdout).toBe(`Applied. ${id} is applied: 3 applied.\n`);
    expect(fs.readFileSync(path.join(lower, 'new.txt'), 'utf8')).toBe('new\n');
    expect(fs.existsSync(path.join(lower, 'old.txt'))).toBe(false);

    const u = paddock(['changes', 'undo', id, 'old.txt'], env);
    expect(u.stdout).toBe(`Undone. ${id} is partial: 2 applied, 1 undone.\n`);
    expect(fs.readFileSync(path.join(lower, 'old.txt'), 'utf8')).toBe('old\n');

    const again = paddock(['changes', 'undo', id, 'old.txt'], env);
    expect(again.status).toBe(1);
    expect(again.stdout).toContain('Refused 1:\n  old.txt: old.txt is already undone.\n');
    const d = paddock(['changes', 'discard', id, '--json'], env);
    expect((JSON.parse(d.stdout) as ChangeOutcome).refused).toEqual([]);
  });

  it('says what is wrong in a sentence: an unknown changeset, path or task', () => {
    const noId = paddock(['changes', 'show', 'chg_nope'], env);
    expect(noId.status).toBe(1);
    expect(noId.stderr).toBe('paddock: There is no changeset chg_nope.\n');
    const noPath = paddock(['changes', 'apply', id, 'missing.txt'], env);
    expect(noPath.stderr).toBe(`paddock: Changeset ${id} has no file missing.txt.\n`);
    const noTask = paddock(['changes', 'list', '--task', 'ses_nope'], env);
    expect(noTask.stderr).toBe('paddock: There is no task ses_nope.\n');
  });
});
