import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../src/shared/agent-events.js';
import { artifactFileName } from '../../src/shared/app-contract.js';
import { Core } from '../../src/main/core/core.js';
import { dispatch } from '../../src/main/core/dispatch.js';
import { displayEvents } from '../../src/main/core/task-history.js';
import { agentFixture, agentSession } from '../helpers/agent.js';
import { tempDir } from '../helpers/temp-dir.js';
import type { MockMessagesApi, Step } from '../support/messages-api/server.js';

const artifactCall = (id: string, input: Record<string, unknown>): Step => ({
  reply: {
    content: [{ type: 'tool_use' as const, id, name: 'create_artifact', input }],
    stop_reason: 'tool_use',
  },
});
const done: Step = {
  reply: { content: [{ type: 'text', text: 'Done.' }], stop_reason: 'end_turn' },
};

/** The tool results the model got back in the last request, in order. */
function lastResults(api: MockMessagesApi): { content: string; is_error?: boolean }[] {
  const messages = api.requests.at(-1)!.body.messages as {
    role: string;
    content: { type: string; content: string; is_error?: boolean }[] | string;
  }[];
  const last = messages.at(-1)!;
  return (last.content as { type: string; content: string; is_error?: boolean }[]).filter(
    (b) => b.type === 'tool_result',
  );
}

describe('artifacts: revising, events, the store and the contract', () => {
  const fx = agentFixture();

  it('revises its own artifact with artifact_id, emits and stores an artifact event each time', async () => {
    const { api, store } = fx;
    api.enqueue(artifactCall('toolu_1', { title: 'Plan', kind: 'markdown', content: '# v1\n' }));
    const { session, events } = agentSession(store, api);
    const first = new Promise<AgentEvent>((resolve) =>
      session.on('event', (e: AgentEvent) => e.type === 'artifact' && resolve(e)),
    );
    // The id is known only once it is made, so the revision is scripted after the first call.
    const run = session.run('plan it');
    const made = (await first) as Extract<AgentEvent, { type: 'artifact' }>;
    api.enqueue(
      artifactCall('toolu_2', {
        title: 'Plan, revised',
        kind: 'markdown',
        content: '# v2\nmoré\n',
        artifact_id: made.id,
      }),
      done,
    );
    await run;

    const artifactEvents = events.filter((e) => e.type === 'artifact');
    expect(artifactEvents).toEqual([
      { type: 'artifact', id: made.id, title: 'Plan', kind: 'markdown', version: 1 },
      { type: 'artifact', id: made.id, title: 'Plan, revised', kind: 'markdown', version: 2 },
    ]);
    expect(lastResults(api)[0]!.content).toBe(
      `Saved “Plan, revised” (markdown) as ${made.id}, version 2.`,
    );
    expect(store.artifacts.latest(made.id)).toMatchObject({
      title: 'Plan, revised',
      version: 2,
      content: '# v2\nmoré\n',
    });
    expect(store.artifacts.get(made.id, 1)).toMatchObject({ version: 1, content: '# v1\n' });
    expect(store.artifacts.versions(made.id)).toEqual([
      { version: 1, createdAt: expect.any(Number), size: 5 },
      { version: 2, createdAt: expect.any(Number), size: 11 },
    ]);

    // The stored history shows the same cards: each artifact event after its tool call's start
    // and before its result, as live.
    const shown = displayEvents(store.sessions.events(session.id)).map((e) =>
      e.type === 'artifact' ? `artifact:${e.version}` : e.type,
    );
    expect(shown).toEqual([
      'user',
      'assistant',
      'tool-start',
      'artifact:1',
      'tool-result',
      'assistant',
      'tool-start',
      'artifact:2',
      'tool-result',
      'assistant',
      'done',
    ]);
  });

  it("refuses another task's artifact, an unknown id and a change of kind, each in a sentence", async () => {
    const { api, store } = fx;
    const other = store.sessions.create({ title: 'o', model: 'm', approvalMode: 'auto' });
    const theirs = store.artifacts.create({
      sessionId: other.id,
      title: 'Theirs',
      kind: 'html',
      content: '<p>mine</p>',
    });
    const { session, events } = agentSession(store, api);
    const ours = store.artifacts.create({
      sessionId: session.id,
      title: 'Ours',
      kind: 'svg',
      content: '<svg/>',
    });
    api.enqueue(
      {
        reply: {
          content: [
            {
              type: 'tool_use',
              id: 'toolu_a',
              name: 'create_artifact',
              input: { title: 'T', kind: 'html', content: 'x', artifact_id: theirs.id },
            },
            {
              type: 'tool_use',
              id: 'toolu_b',
              name: 'create_artifact',
              input: { title: 'T', kind: 'html', content: 'x', artifact_id: 'art_nope' },
            },
            {
              type: 'tool_use',
              id: 'toolu_c',
              name: 'create_artifact',
              input: { title: 'Ours', kind: 'html', content: 'x', artifact_id: ours.id },
            },
          ],
          stop_reason: 'tool_use',
        },
      },
      done,
    );
    await session.run('revise');
    const [a, b, c] = lastResults(api);
    expect(a).toMatchObject({ is_error: true });
    expect(a!.content).toBe(
      `There is no artifact ${theirs.id} in this task; leave out artifact_id to make a new one.`,
    );
    expect(b!.content).toMatch(/There is no artifact art_nope in this task/);
    expect(c!.content).toMatch(/is svg, and a revision keeps its kind/);
    expect(store.artifacts.latest(theirs.id)).toMatchObject({ version: 1, content: '<p>mine</p>' });
    expect(store.artifacts.latest(ours.id)).toMatchObject({ version: 1 });
    expect(events.some((e) => e.type === 'artifact')).toBe(false);
  });

  it('lists by session in the order made, every one newest first, and bounds the list', () => {
    const { store } = fx;
    const s = store.sessions.create({ title: 's', model: 'm', approvalMode: 'auto' });
    const a = store.artifacts.create({ sessionId: s.id, title: 'A', kind: 'code', content: 'a' });
    const b = store.artifacts.create({ sessionId: s.id, title: 'B', kind: 'code', content: 'b' });
    store.artifacts.create({ sessionId: null, title: 'Loose', kind: 'code', content: 'c' });
    store.artifacts.addVersion(a.id, 'a2');
    expect(
      store.artifacts.list({ sessionId: s.id }).map((r) => [r.title, r.latestVersion]),
    ).toEqual([
      ['A', 2],
      ['B', 1],
    ]);
    expect(store.artifacts.list().map((r) => r.title)).toHaveLength(3);
    expect(store.artifacts.list({ limit: 1 })).toHaveLength(1);
    expect(store.artifacts.summary(b.id)).toMatchObject({ latestVersion: 1, sessionId: s.id });
    expect(store.artifacts.get(a.id, 3)).toBeUndefined();
  });
});

describe('the artifacts channels', () => {
  let home: { dir: string; cleanup(): void };
  let core: Core;

  beforeEach(() => {
    home = tempDir();
    core = new Core({ dataDir: path.join(home.dir, 'data'), host: 'web', env: {} });
  });
  afterEach(async () => {
    await core.close();
    home.cleanup();
  });

  it('lists a task’s artifacts, gets versions, lists versions and exports a standalone file', async () => {
    const s = core.store.sessions.create({ title: 't', model: 'm', approvalMode: 'auto' });
    const a = core.store.artifacts.create({
      sessionId: s.id,
      title: 'Sales chart: Q3!',
      kind: 'markdown',
      content: '# One\n',
    });
    core.store.artifacts.addVersion(a.id, '# Two\n');
    const d = (channel: string, req: unknown) => dispatch(core.handlers, channel, req);

    expect(await d('artifacts:list', { taskId: s.id })).toEqual({
      ok: true,
      value: {
        artifacts: [
          {
            id: a.id,
            taskId: s.id,
            title: 'Sales chart: Q3!',
            kind: 'markdown',
            latestVersion: 2,
            createdAt: expect.any(Number),
            updatedAt: expect.any(Number),
          },
        ],
      },
    });
    expect(await d('artifacts:get', { id: a.id })).toMatchObject({
      ok: true,
      value: { id: a.id, sessionId: s.id, version: 2, latestVersion: 2, content: '# Two\n' },
    });
    expect(await d('artifacts:get', { id: a.id, version: 1 })).toMatchObject({
      ok: true,
      value: { version: 1, latestVersion: 2, content: '# One\n' },
    });
    expect(await d('artifacts:versions', { id: a.id })).toMatchObject({
      ok: true,
      value: { versions: [{ version: 1 }, { version: 2 }] },
    });
    const exported = await d('artifacts:export', { id: a.id, version: 1 });
    expect(exported).toMatchObject({
      ok: true,
      value: {
        filename: 'sales-chart-q3-v1.html',
        html: expect.stringContaining('<!DOCTYPE html>'),
      },
    });
    const html = (exported as { value: { html: string } }).value.html;
    expect(html).toContain('Content-Security-Policy');
    expect(html).not.toMatch(/<(script|link)[^>]+(src|href)=["']?https?:/i);
  });

  it('answers NOT_FOUND in a sentence, and refuses unbounded or malformed ids', async () => {
    const s = core.store.sessions.create({ title: 't', model: 'm', approvalMode: 'auto' });
    const a = core.store.artifacts.create({
      sessionId: s.id,
      title: 'x',
      kind: 'code',
      content: '',
    });
    const d = (channel: string, req: unknown) => dispatch(core.handlers, channel, req);
    expect(await d('artifacts:get', { id: 'art_missing' })).toEqual({
      ok: false,
      error: { code: 'NOT_FOUND', message: 'There is no artifact art_missing.' },
    });
    expect(await d('artifacts:get', { id: a.id, version: 4 })).toEqual({
      ok: false,
      error: {
        code: 'NOT_FOUND',
        message: `Artifact ${a.id} has no version 4; its versions are 1 to 1.`,
      },
    });
    expect(await d('artifacts:versions', { id: 'art_missing' })).toMatchObject({
      error: { code: 'NOT_FOUND' },
    });
    expect(await d('artifacts:export', { id: 'art_missing' })).toMatchObject({
      error: { code: 'NOT_FOUND' },
    });
    expect(await d('artifacts:list', { taskId: 'ses_missing' })).toEqual({
      ok: false,
      error: { code: 'NOT_FOUND', message: 'There is no task ses_missing.' },
    });
    expect(await d('artifacts:get', { id: 'a'.repeat(101) })).toMatchObject({
      error: { code: 'BAD_REQUEST' },
    });
    expect(await d('artifacts:get', { id: a.id, version: 0 })).toMatchObject({
      error: { code: 'BAD_REQUEST' },
    });
    expect(await d('artifacts:list', { taskId: s.id, extra: 1 })).toMatchObject({
      error: { code: 'BAD_REQUEST' },
    });
  });

  it('names files from titles safely', () => {
    expect(artifactFileName('Q3 / Sales — Résumé', 2, 'md')).toBe('q3-sales-resume-v2.md');
    expect(artifactFileName('../../etc/passwd', 1, 'html')).toBe('etcpasswd-v1.html');
    expect(artifactFileName('!!!', 1, 'svg')).toBe('artifact-v1.svg');
  });
});
