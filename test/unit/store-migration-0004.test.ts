import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Channel, Req, Res } from '../../src/shared/api.js';
import { Core } from '../../src/main/core/core.js';
import { dispatch } from '../../src/main/core/dispatch.js';
import { DB_FILE, inspectDatabase } from '../../src/main/store/open.js';
import { LATEST_SCHEMA_VERSION } from '../../src/main/store/migrations/index.js';
import { Store } from '../../src/main/store/store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

/**
 * `test/fixtures/db/release-0.1.0.db` is a database written by Paddock 0.1.0 (schema 3, commit
 * 7a90c0e), before automations kept their folders as shares. It was made with that release's
 * own code: `Store.open` and `AutomationService.create` with folders under {@link ROOT} (a
 * read-write one and a `:ro` one; two folders named `data`; paths holding a colon, one of them
 * `:ro`), an automation without folders, a manual run through `Scheduler.runNow` whose executor
 * made a session, and a queued slot skipped by `pause`; each run left an inbox item. The WAL was
 * checkpointed (TRUNCATE) so the file is the whole database.
 */
const FIXTURE = path.join(import.meta.dirname, '..', 'fixtures', 'db', 'release-0.1.0.db');
/** Where the release's folders were; made again here so runs can judge them. */
const ROOT = '/tmp/paddock-release-0.1.0';
const KEY = 'sk-ant-test-key-0123456789mig4';

const at = (p: string) => path.join(ROOT, p);

async function rpc<C extends Channel>(core: Core, channel: C, req: Req<C>): Promise<Res<C>> {
  const r = await dispatch(core.handlers, channel, req);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value as Res<C>;
}

async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

// The release's folders are POSIX paths.
describe.skipIf(process.platform === 'win32')('migration 0004 on a 0.1.0 database', () => {
  let home: { dir: string; cleanup(): void };

  beforeEach(() => {
    home = tempDir();
    fs.copyFileSync(FIXTURE, path.join(home.dir, DB_FILE));
    for (const d of ['notes', 'reports', 'a/data', 'b/data', 'x:y', 'c:d'])
      fs.mkdirSync(at(d), { recursive: true });
  });
  afterEach(() => home.cleanup());

  it('turns PATH[:ro] strings into shares and keeps runs and the inbox', () => {
    expect(fs.statSync(FIXTURE).size).toBeLessThan(200_000);
    expect(inspectDatabase(path.join(home.dir, DB_FILE)).version).toBe(3);
    const store = Store.open(home.dir);
    try {
      expect(store.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
      const byName = new Map(store.automations.list().map((a) => [a.name, a]));
      expect(byName.get('Daily notes')!.folders).toEqual([
        { hostPath: at('notes'), name: 'notes', readOnly: false, review: false },
        { hostPath: at('reports'), name: 'reports', readOnly: true },
      ]);
      expect(byName.get('Two data folders')!.folders).toEqual([
        { hostPath: at('a/data'), name: 'data', readOnly: false, review: false },
        { hostPath: at('b/data'), name: 'data-2', readOnly: true },
      ]);
      expect(byName.get('Colons')!.folders).toEqual([
        { hostPath: at('x:y'), name: 'x_y', readOnly: false, review: false },
        { hostPath: at('c:d'), name: 'c_d', readOnly: true },
      ]);
      expect(byName.get('No folders')!.folders).toEqual([]);
      expect(byName.get('Daily notes')).toMatchObject({
        allowlist: ['example.com'],
        tzid: 'Europe/London',
        enabled: true,
      });
      expect(byName.get('Two data folders')).toMatchObject({ enabled: false, missedPolicy: 'all' });

      const notes = byName.get('Daily notes')!;
      const datas = byName.get('Two data folders')!;
      const runs = store.runs.list();
      expect(runs).toHaveLength(2);
      const done = runs.find((r) => r.automationId === notes.id)!;
      expect(done).toMatchObject({
        status: 'succeeded',
        trigger: 'manual',
        late: false,
        attempt: 1,
        summary: 'Wrote reports/summary.md from 3 notes.',
        leaseOwner: null,
      });
      expect(store.sessions.get(done.sessionId!)).toMatchObject({
        folders: [
          { hostPath: at('notes'), name: 'notes', readOnly: false },
          { hostPath: at('reports'), name: 'reports', readOnly: true },
        ],
      });
      expect(store.sessions.events(done.sessionId!)).toHaveLength(1);
      expect(runs.find((r) => r.automationId === datas.id)).toMatchObject({
        status: 'skipped',
        attempt: 0,
        sessionId: null,
        error: 'Skipped: the automation was paused before this run started.',
      });

      const items = store.inbox.list();
      expect(items.map((i) => [i.kind, i.title, i.state])).toEqual([
        ['skipped', 'Two data folders', 'unread'],
        ['succeeded', 'Daily notes', 'unread'],
      ]);
      expect(items[1]).toMatchObject({ runId: done.id, automationId: notes.id });
      expect(store.inbox.unreadCount()).toBe(2);
    } finally {
      store.dispose();
    }
  });

  describe('through the app core', () => {
    let api: MockMessagesApi;
    let core: Core;

    beforeAll(async () => {
      api = await startMessagesApi({ apiKey: KEY });
    });
    afterAll(() => api.close());
    beforeEach(() => {
      core = new Core({
        dataDir: home.dir,
        host: 'web',
        env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
        // No scheduler: the release's slots are long past and would be recorded as missed.
        runScheduler: false,
      });
    });
    afterEach(async () => {
      await core.close();
      expect(api.problems).toEqual([]);
    });

    it('shows the folders as the page always had them, and the runs and inbox', async () => {
      const { automations } = await rpc(core, 'automations:list', {});
      const folders = Object.fromEntries(automations.map((a) => [a.name, a.folders]));
      expect(folders).toEqual({
        'Daily notes': [
          { hostPath: at('notes'), readOnly: false, review: false },
          { hostPath: at('reports'), readOnly: true, review: false },
        ],
        'Two data folders': [
          { hostPath: at('a/data'), readOnly: false, review: false },
          { hostPath: at('b/data'), readOnly: true, review: false },
        ],
        Colons: [
          { hostPath: at('x:y'), readOnly: false, review: false },
          { hostPath: at('c:d'), readOnly: true, review: false },
        ],
        'No folders': [],
      });
      const notes = automations.find((a) => a.name === 'Daily notes')!;
      expect(notes.lastRun).toMatchObject({ status: 'succeeded', trigger: 'manual' });
      expect(Object.keys(notes.lastRun!)).not.toContain('leaseOwner');
      const inbox = await rpc(core, 'inbox:list', {});
      expect(inbox.unread).toBe(2);
      expect(inbox.items[1]).toMatchObject({
        kind: 'succeeded',
        sessionId: notes.lastRun!.sessionId,
      });
    });

    it('a run shares the folders judged again, with the names the release gave them', async () => {
      const { automations } = await rpc(core, 'automations:list', {});
      const expected: Record<string, { hostPath: string; name: string; readOnly: boolean }[]> = {
        'Daily notes': [
          { hostPath: fs.realpathSync(at('notes')), name: 'notes', readOnly: false },
          { hostPath: fs.realpathSync(at('reports')), name: 'reports', readOnly: true },
        ],
        'Two data folders': [
          { hostPath: fs.realpathSync(at('a/data')), name: 'data', readOnly: false },
          { hostPath: fs.realpathSync(at('b/data')), name: 'data-2', readOnly: true },
        ],
        Colons: [
          { hostPath: fs.realpathSync(at('x:y')), name: 'x_y', readOnly: false },
          { hostPath: fs.realpathSync(at('c:d')), name: 'c_d', readOnly: true },
        ],
      };
      for (const [name, shares] of Object.entries(expected)) {
        const a = automations.find((x) => x.name === name)!;
        api.enqueue({
          reply: { content: [{ type: 'text', text: 'Done.' }], stop_reason: 'end_turn' },
        });
        const run = await rpc(core, 'automations:runNow', { id: a.id });
        await until(() => core.store.runs.get(run.id)!.status !== 'running');
        expect(core.store.runs.get(run.id)).toMatchObject({ status: 'succeeded', error: null });
        const session = core.store.sessions.get(core.store.runs.get(run.id)!.sessionId!)!;
        expect(session.folders).toMatchObject(shares);
        expect(session.folders).toHaveLength(shares.length);
      }
      // The old history is still there, under the new runs.
      expect(core.store.runs.list()).toHaveLength(5);
    });
  });
});
