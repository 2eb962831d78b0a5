import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paddockAsync } from '../helpers/cli.js';
import { connectApi, startServe, type Served, type ServedApi } from '../helpers/serve.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const KEY = 'sk-ant-one-core-0123456789wxyz';

interface AutomationView {
  id: string;
  name: string;
  folders: { hostPath: string; readOnly: boolean }[];
}
interface RunView {
  id: string;
  status: string;
  sessionId: string | null;
}

/** Polls `fn` until it returns something truthy (or fails the test after `ms`). */
async function until<T>(fn: () => Promise<T | undefined | null | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The CLI and `paddock serve` build one and the same core on one data folder: what one host
 * makes, the other sees and runs. (No VM is needed: the scripted model answers without tools.)
 */
describe('every host on one core', () => {
  let api: MockMessagesApi;
  let home: { dir: string; cleanup(): void };
  let work: { dir: string; cleanup(): void };
  let served: Served;
  let ui: ServedApi;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    api = await startMessagesApi({ apiKey: KEY });
    home = tempDir('paddock-one-core-home-');
    work = tempDir('paddock-one-core-work-');
    fs.writeFileSync(path.join(work.dir, 'notes.txt'), 'hello\n');
    env = {
      PADDOCK_HOME: home.dir,
      ANTHROPIC_API_KEY: KEY,
      ANTHROPIC_BASE_URL: api.url,
      // The scheduler of `serve` must not run these by itself in the test's minutes.
      TZ: 'UTC',
    };
    served = await startServe(env);
    ui = await connectApi(served.url);
  }, 60_000);

  afterAll(async () => {
    ui?.close();
    await served?.stop();
    await api?.close();
    work?.cleanup();
    home?.cleanup();
  });

  it('runs in serve’s core an automation that `paddock automations add` made', async () => {
    const added = await paddockAsync(
      [
        'automations',
        'add',
        '--name',
        'from the CLI',
        '--prompt',
        'Say hello from the CLI automation.',
        '--schedule',
        'once on 2099-01-01 at 08:00',
        '--folder',
        `${work.dir}:ro`,
        '--json',
      ],
      env,
    );
    expect(added.stderr).toBe('');
    expect(added.status).toBe(0);
    const { id } = JSON.parse(added.stdout) as { id: string };

    const seen = await ui.call<{ automations: AutomationView[] }>('automations:list');
    const a = seen.automations.find((x) => x.id === id);
    expect(a).toMatchObject({
      name: 'from the CLI',
      folders: [{ hostPath: fs.realpathSync(work.dir), readOnly: true }],
    });

    api.enqueue({
      reply: { content: [{ type: 'text', text: 'Hello from serve.' }], stop_reason: 'end_turn' },
    });
    const run = await ui.call<RunView>('automations:runNow', { id });
    const done = await until(async () => {
      const { runs } = await ui.call<{ runs: RunView[] }>('automations:runs', {
        automationId: id,
      });
      const r = runs.find((x) => x.id === run.id);
      return r && r.status !== 'running' ? r : null;
    });
    expect(done.status).toBe('succeeded');
    const last = api.requests.at(-1)!;
    expect(JSON.stringify(last.body.messages)).toContain('Say hello from the CLI automation.');
    // The run's session is a task like any other, in serve's task list.
    const { tasks } = await ui.call<{ tasks: { id: string }[] }>('tasks:list', {});
    expect(tasks.map((t) => t.id)).toContain(done.sessionId);
  });

  it('runs from the CLI an automation that serve’s core made', async () => {
    const grant = await ui.call<{ id: string }>('grants:add', { path: work.dir, readOnly: false });
    const created = await ui.call<AutomationView>('automations:create', {
      name: 'from the page',
      prompt: 'Say hello from the page automation.',
      schedule: 'once on 2099-01-02 at 08:00',
      folders: [{ id: grant.id, readOnly: false }],
    });

    const listed = await paddockAsync(['automations', 'list', '--json'], env);
    expect(listed.status).toBe(0);
    const rows = JSON.parse(listed.stdout) as { id: string; name: string }[];
    expect(rows.find((r) => r.id === created.id)?.name).toBe('from the page');

    api.enqueue({
      reply: { content: [{ type: 'text', text: 'Hello from the CLI.' }], stop_reason: 'end_turn' },
    });
    const ran = await paddockAsync(['automations', 'run-now', created.id, '--json'], env);
    expect(ran.stderr).toBe('');
    expect(ran.status).toBe(0);
    const { run } = JSON.parse(ran.stdout) as { run: RunView };
    expect(run.status).toBe('succeeded');
    expect(JSON.stringify(api.requests.at(-1)!.body.messages)).toContain(
      'Say hello from the page automation.',
    );

    // serve's core sees the CLI's run and its inbox item.
    const { runs } = await ui.call<{ runs: RunView[] }>('automations:runs', {
      automationId: created.id,
    });
    expect(runs.map((r) => [r.id, r.status])).toContainEqual([run.id, 'succeeded']);
    const inbox = await ui.call<{ items: { runId: string }[] }>('inbox:list', {});
    expect(inbox.items.map((i) => i.runId)).toContain(run.id);
  });
});
