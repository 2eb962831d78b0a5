import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { describeCreated } from '../../src/main/automations/service.js';
import { AutomationService } from '../../src/main/automations/service.js';
import { summarise } from '../../src/main/automations/summary.js';
import { Store } from '../../src/main/store/store.js';
import type { ScheduleRequest } from '../../src/main/agent/tools/types.js';
import { agentSession, scriptedApprover } from '../helpers/agent.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

describe('the schedule_automation tool', () => {
  let api: MockMessagesApi;
  let t: { dir: string; cleanup(): void };
  let store: Store;

  beforeAll(async () => {
    api = await startMessagesApi({ apiKey: 'test-key' });
  });
  afterAll(async () => {
    await api.close();
  });
  beforeEach(() => {
    t = tempDir();
    store = Store.open(path.join(t.dir, 'home'));
    api.requests.length = 0;
    return () => {
      store.dispose();
      t.cleanup();
    };
  });

  it('creates an automation through the host-given dependency, with the session’s folders', async () => {
    const work = path.join(t.dir, 'notes');
    fs.mkdirSync(work);
    const svc = new AutomationService(store, { dataDir: path.join(t.dir, 'home') });
    api.enqueue(
      {
        reply: {
          content: [
            {
              type: 'tool_use',
              id: 'toolu_s',
              name: 'schedule_automation',
              input: {
                name: 'Morning digest',
                prompt: 'Summarise the new files in this folder.',
                schedule: 'every weekday at 9:00',
                time_zone: 'Europe/Paris',
              },
            },
            {
              type: 'tool_use',
              id: 'toolu_bad',
              name: 'schedule_automation',
              input: { name: 'Bad', prompt: 'p', schedule: 'whenever you like' },
            },
          ],
          stop_reason: 'tool_use',
        },
      },
      { reply: { content: [{ type: 'text', text: 'Scheduled.' }], stop_reason: 'end_turn' } },
    );
    const input = (req: ScheduleRequest) => ({
      name: req.name,
      prompt: req.prompt,
      schedule: req.schedule,
      folders: [{ hostPath: work, readOnly: false }],
      ...(req.timeZone ? { tz: req.timeZone } : {}),
    });
    const { approver } = scriptedApprover();
    const { session } = agentSession(store, api, {
      // The person says yes to the plan (every automation is asked about).
      approver: { ...approver, approveAutomation: async () => ({ answer: 'allow' }) },
      scheduleAutomation: {
        plan: (req) => svc.plan(input(req)),
        create: async (req, sessionId) =>
          describeCreated(svc.create({ ...input(req), createdBySession: sessionId })),
      },
    });
    await session.run('every weekday morning, summarise my notes');
    const results = (
      api.requests[1]!.body.messages!.at(-1)!.content as {
        tool_use_id: string;
        content: string;
        is_error?: boolean;
      }[]
    ).map((b) => [b.tool_use_id, b.is_error ?? false, b.content]);
    expect(results[0]![1]).toBe(false);
    expect(results[0]![2]).toMatch(
      /^Scheduled “Morning digest” \(auto_\w+\) every weekday at 9:00; its first run is at .* \(Europe\/Paris\)/,
    );
    expect(results[1]![1]).toBe(true);
    expect(results[1]![2]).toMatch(/Could not schedule “Bad”: Paddock cannot read the schedule/);
    const [a] = store.automations.list();
    expect(a).toMatchObject({
      name: 'Morning digest',
      tzid: 'Europe/Paris',
      enabled: true,
      createdBySession: session.id,
      folders: [{ hostPath: fs.realpathSync(work), name: 'notes', readOnly: false }],
    });
    // The person sees it and can pause or remove it.
    expect(svc.pause(a!.id).enabled).toBe(false);
    svc.remove(a!.id);
    expect(store.automations.list()).toEqual([]);
  });
});

describe('inbox summaries', () => {
  it('keeps a short answer as it is, without Markdown', () => {
    expect(summarise('## Done\n\nFound **3** new files.')).toBe('Done Found 3 new files.');
  });
  it('cuts a long answer at a sentence or a word', () => {
    const long = 'First sentence here. ' + 'word '.repeat(200);
    const s = summarise(long);
    expect(s.length).toBeLessThanOrEqual(280);
    expect(s.endsWith('…') || s.endsWith('.')).toBe(true);
  });
});
