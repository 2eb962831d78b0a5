import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AutomationService } from '../../src/main/automations/service.js';
import { Store } from '../../src/main/store/store.js';
import { freshHome, onceIn, startDaemon, type Daemon } from '../helpers/daemon.js';
import { tempDir } from '../helpers/temp-dir.js';
import { ensureTestImage } from '../helpers/vm-image.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const KEY = 'test-key';

async function until<T>(fn: () => T | undefined, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('automations end to end: paddock daemon, a real VM, the local Messages API', () => {
  let api: MockMessagesApi;
  let t: { dir: string; cleanup(): void };
  let home: string;
  let store: Store;
  const daemons: Daemon[] = [];

  beforeAll(async () => {
    await ensureTestImage();
    api = await startMessagesApi({ apiKey: KEY });
  });
  afterAll(async () => {
    await api?.close();
  });
  beforeEach(() => {
    t = tempDir();
    home = freshHome(t.dir);
    store = Store.open(home);
    api.requests.length = 0;
    return async () => {
      for (const d of daemons.splice(0)) {
        if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill('SIGTERM');
        await d.exited;
      }
      store.dispose();
      expect(api.problems).toEqual([]);
      t.cleanup();
    };
  });

  it('runs a due automation as an agent session in the VM and puts its summary in the inbox', async () => {
    const work = path.join(t.dir, 'work');
    fs.mkdirSync(work);
    fs.writeFileSync(path.join(work, 'a.txt'), 'one\n');
    fs.writeFileSync(path.join(work, 'b.txt'), 'two\n');
    api.enqueue(
      {
        reply: {
          content: [{ type: 'tool_use', name: 'bash', input: { command: 'ls | wc -l' } }],
          stop_reason: 'tool_use',
        },
      },
      {
        handler: (body) => {
          const last = body.messages!.at(-1)!.content as { content: string }[];
          return {
            reply: {
              content: [
                {
                  type: 'text',
                  text: `## Daily count\n\nThere are **${/\d+/.exec(last[0]!.content)![0]}** files in the folder today.`,
                },
              ],
              stop_reason: 'end_turn',
            },
          };
        },
      },
    );
    const svc = new AutomationService(store, { dataDir: home });
    const a = svc.create({
      name: 'Count files',
      prompt: 'Count the files in this folder.',
      schedule: onceIn(4000),
      folders: [{ hostPath: work, readOnly: false }],
    });
    const d = await startDaemon(home, api);
    daemons.push(d);
    const finished = await d.waitFor((l) => l.event === 'run-finished', 150_000);
    expect(finished.status).toBe('succeeded');
    const [run] = store.runs.list(a.id);
    expect(run).toMatchObject({ status: 'succeeded', attempt: 1, trigger: 'schedule' });
    expect(run!.startedAt! - run!.slotAt).toBeLessThan(1000);
    const [item] = store.inbox.list();
    expect(item).toMatchObject({
      runId: run!.id,
      kind: 'succeeded',
      state: 'unread',
      title: 'Count files',
      summary: 'Daily count There are 2 files in the folder today.',
    });
    // The run is an ordinary session: auto approval, the folder granted, the tool ran in the VM.
    const session = store.sessions.get(run!.sessionId!)!;
    expect(session).toMatchObject({ approvalMode: 'auto', status: 'done' });
    const events = store.sessions.events(session.id).map((e) => e.type);
    expect(events).toEqual(['user', 'assistant', 'tool_result', 'assistant']);
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(d.lines.at(-1)!.message).toBe('stopped');
  });

  it('survives kill -9 mid-run: after a restart the run is recorded as interrupted and retried', async () => {
    // The first attempt's model call never answers; the daemon is killed while waiting for it.
    api.enqueue(
      { hang: true },
      {
        reply: {
          content: [{ type: 'text', text: 'Second attempt done.' }],
          stop_reason: 'end_turn',
        },
      },
    );
    const svc = new AutomationService(store, { dataDir: home });
    const a = svc.create({ name: 'Fragile', prompt: 'Do it.', schedule: onceIn(3000) });
    const first = await startDaemon(home, api, ['--lease-ms', '3000']);
    daemons.push(first);
    await first.waitFor((l) => l.event === 'run-started', 60_000);
    await until(() => (api.requests.length > 0 ? true : undefined), 30_000, 'the model call');
    first.proc.kill('SIGKILL');
    await first.exited;
    expect(store.runs.list(a.id)[0]).toMatchObject({ status: 'running', attempt: 1 });

    const second = await startDaemon(home, api, ['--lease-ms', '3000']);
    daemons.push(second);
    await second.waitFor((l) => l.event === 'interrupted', 30_000);
    await second.waitFor((l) => l.event === 'run-finished', 60_000);
    const runs = store.runs.list(a.id);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      status: 'succeeded',
      attempt: 2,
      summary: 'Second attempt done.',
    });
    const inbox = store.inbox.list().map((i) => [i.kind, i.summary]);
    expect(inbox).toEqual([
      ['succeeded', 'Second attempt done.'],
      [
        'interrupted',
        expect.stringMatching(
          /was interrupted: the process running it stopped. It will be tried again \(attempt 2 of 2\)/,
        ),
      ],
    ]);
  });
});
