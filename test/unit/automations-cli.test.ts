import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paddock } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('paddock automations', () => {
  let t: { dir: string; cleanup(): void };
  let env: NodeJS.ProcessEnv;
  const json = (args: string[]) => {
    const r = paddock([...args, '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return JSON.parse(r.stdout) as unknown;
  };

  beforeAll(() => {
    t = tempDir();
    env = { PADDOCK_HOME: t.dir, ANTHROPIC_API_KEY: '' };
  });
  afterAll(() => t.cleanup());

  it('gives the right local times across both DST changes of 2027 in Europe/Paris', () => {
    const a = json([
      'automations',
      'add',
      '--name',
      'Sunday review',
      '--prompt',
      'Review the week',
      '--schedule',
      'every sunday at 9:00',
      '--tz',
      'Europe/Paris',
    ]) as { id: string };
    const spring = json([
      'automations',
      'next',
      a.id,
      '--count',
      '3',
      '--from',
      '2027-03-20T00:00:00Z',
    ]);
    expect(spring).toEqual([
      { at: '2027-03-21T08:00:00.000Z', local: '2027-03-21 09:00 +01:00 (Europe/Paris)' },
      { at: '2027-03-28T07:00:00.000Z', local: '2027-03-28 09:00 +02:00 (Europe/Paris)' },
      { at: '2027-04-04T07:00:00.000Z', local: '2027-04-04 09:00 +02:00 (Europe/Paris)' },
    ]);
    const fall = paddock(
      ['automations', 'next', a.id, '--count', '3', '--from', '2027-10-20T00:00:00Z'],
      env,
    );
    expect(fall.stdout).toBe(
      '2027-10-24 09:00 +02:00 (Europe/Paris)\n' +
        '2027-10-31 09:00 +01:00 (Europe/Paris)\n' +
        '2027-11-07 09:00 +01:00 (Europe/Paris)\n',
    );
  });

  it('adds, lists, shows, pauses, resumes and removes, each with --json', () => {
    const work = tempDir('paddock-work-');
    try {
      const a = json([
        'automations',
        'add',
        '--name',
        'Digest',
        '--prompt',
        'Summarise the new files',
        '--schedule',
        'every weekday at 9:00',
        '--folder',
        `${work.dir}:ro`,
        '--allow-host',
        'example.com',
        '--missed',
        'skip',
      ]) as { id: string; folders: string[]; missedPolicy: string; nextSlot: string };
      expect(a.id).toMatch(/^auto_/);
      expect(a.folders).toHaveLength(1);
      expect(a.folders[0]).toMatch(/:ro$/);
      expect(a.missedPolicy).toBe('skip');
      expect(a.nextSlot).toMatch(/ 09:00 /);

      const list = json(['automations', 'list']) as { id: string }[];
      expect(list.map((x) => x.id)).toContain(a.id);
      expect(paddock(['automations', 'list'], env).stdout).toMatch(
        /Digest\s+every weekday at 9:00/,
      );

      const shown = json(['automations', 'show', a.id]) as { allowlist: string[]; runs: unknown[] };
      expect(shown.allowlist).toEqual(['example.com']);
      expect(shown.runs).toEqual([]);

      expect(json(['automations', 'pause', a.id])).toMatchObject({ enabled: false });
      expect(json(['automations', 'resume', a.id])).toMatchObject({ enabled: true });
      expect(json(['automations', 'runs', a.id])).toEqual([]);
      expect(json(['automations', 'inbox'])).toEqual([]);
      expect(json(['automations', 'remove', a.id])).toEqual({ id: a.id, removed: true });
      expect((json(['automations', 'list']) as { id: string }[]).map((x) => x.id)).not.toContain(
        a.id,
      );
    } finally {
      work.cleanup();
    }
  }, 60_000);

  it('grants folders reviewed, read-only or direct, and says what becomes of the changes', () => {
    const work = tempDir('paddock-modes-');
    try {
      const [notes, refs, drafts, more] = ['notes', 'refs', 'drafts', 'more'].map((d) => {
        fs.mkdirSync(path.join(work.dir, d));
        return fs.realpathSync(path.join(work.dir, d));
      });
      const a = json([
        'automations',
        'add',
        '--name',
        'Modes',
        '--prompt',
        'Tidy',
        '--schedule',
        'every day at 9:00',
        '--folder',
        notes!,
        '--folder',
        `${refs}:ro`,
        '--folder',
        `${drafts}:direct`,
        '--apply-changes',
        'auto',
      ]) as { id: string; folders: string[]; applyChanges: string };
      // A folder without a mode is reviewed.
      expect(a.folders).toEqual([`${notes}:review`, `${refs}:ro`, `${drafts}:direct`]);
      expect(a.applyChanges).toBe('auto');
      const shown = paddock(['automations', 'show', a.id], env).stdout;
      expect(shown).toContain(
        `folders:  ${notes} (read-write, changes reviewed), ${refs} (read-only), ${drafts} (read-write, written directly)`,
      );
      expect(shown).toContain('changes:  applied as each run ends (undo within 30 days');

      // Edit: a folder it has keeps its mode unless one is given; a new one is reviewed.
      const b = json([
        'automations',
        'edit',
        a.id,
        '--folder',
        drafts!,
        '--folder',
        `${notes}:direct`,
        '--folder',
        more!,
        '--apply-changes',
        'review',
      ]) as { folders: string[]; applyChanges: string };
      expect(b.folders).toEqual([`${drafts}:direct`, `${notes}:direct`, `${more}:review`]);
      expect(b.applyChanges).toBe('review');
      expect(paddock(['automations', 'show', a.id], env).stdout).toContain(
        'changes:  wait for your review',
      );
      const bad = paddock(['automations', 'edit', a.id, '--apply-changes', 'sometimes'], env);
      expect(bad.status).not.toBe(0);
      expect(bad.stderr).toMatch(/Allowed choices are review, auto/);
      json(['automations', 'remove', a.id]);
    } finally {
      work.cleanup();
    }
  }, 60_000);

  it('says plainly what is wrong', () => {
    const bad = paddock(
      ['automations', 'add', '--name', 'x', '--prompt', 'p', '--schedule', 'whenever'],
      env,
    );
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/cannot read the schedule “whenever”. Write it like/);
    const policy = paddock(
      [
        'automations',
        'add',
        '--name',
        'x',
        '--prompt',
        'p',
        '--schedule',
        'every hour',
        '--missed',
        'never',
      ],
      env,
    );
    expect(policy.status).not.toBe(0);
    expect(policy.stderr).toMatch(/Allowed choices are skip, once, all/);
    const missing = paddock(['automations', 'show', 'auto_nope'], env);
    expect(missing.stderr).toMatch(/There is no automation auto_nope/);
    const daemon = paddock(['daemon'], env);
    expect(daemon.status).toBe(1);
    expect(daemon.stderr).toMatch(/ANTHROPIC_API_KEY is not set/);
  }, 60_000);
});
