import type { AgentEvent } from '../../src/shared/agent-events.js';
import { createAnthropic } from '../../src/main/agent/model.js';
import {
  AgentSession,
  type AgentSessionOptions,
  type Approver,
} from '../../src/main/agent/session.js';
import type { ToolHost } from '../../src/main/agent/tools/types.js';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { Store } from '../../src/main/store/store.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';
import { tempDir } from './temp-dir.js';

/** An approver that answers from fixed lists and remembers what it was asked. */
export function scriptedApprover(
  answers: { tool?: 'allow' | 'deny'; network?: 'once' | 'session' | 'always' | 'deny' } = {},
) {
  const asked: string[] = [];
  const approver: Approver = {
    approveTool: async (c) => {
      asked.push(`tool:${c.name}`);
      return answers.tool ?? 'allow';
    },
    askNetwork: async (h, p) => {
      asked.push(`net:${h}:${p}`);
      return answers.network ?? 'deny';
    },
  };
  return { approver, asked };
}

/** An agent session on the real SDK pointed at the local Messages API. */
export function agentSession(
  store: Store,
  api: MockMessagesApi,
  opts: Partial<AgentSessionOptions> & { host?: () => ToolHost } = {},
): { session: AgentSession; events: AgentEvent[] } {
  const sessionId =
    opts.sessionId ??
    store.sessions.create({ title: 't', model: 'claude-opus-5-5', approvalMode: 'auto' }).id;
  const session = new AgentSession({
    store,
    client: createAnthropic({ apiKey: 'test-key', baseURL: api.url }),
    sessionId,
    host:
      opts.host ??
      (() => {
        throw new Error('this test has no VM');
      }),
    settings: {
      model: 'claude-opus-5-5',
      maxTokens: 4096,
      effort: 'high',
    },
    approvalMode: 'auto',
    approver: scriptedApprover().approver,
    prompt: { shares: [], allowlist: [], timeZone: 'Europe/Paris' },
    now: () => new Date('2026-11-27T10:00:00Z'),
    retry: { attempts: 4, baseMs: 5, maxMs: 50 },
    ...opts,
  });
  const events: AgentEvent[] = [];
  session.on('event', (e) => events.push(e));
  return { session, events };
}

/**
 * The usual frame of an agent test, registered in the calling describe: one local Messages API
 * for the file, a fresh store per test, and after each test no problem on the server's side and
 * no scripted step left unused.
 */
export function agentFixture(): { api: MockMessagesApi; store: Store } {
  const fx = {} as { api: MockMessagesApi; store: Store };
  let home: { dir: string; cleanup(): void };
  beforeAll(async () => {
    fx.api = await startMessagesApi({ apiKey: 'test-key' });
  });
  afterAll(() => fx.api.close());
  beforeEach(() => {
    home = tempDir();
    fx.store = Store.open(home.dir);
    fx.api.requests.length = 0;
  });
  afterEach(() => {
    expect(fx.api.problems).toEqual([]);
    expect(fx.api.remaining).toBe(0);
    fx.store.dispose();
    home.cleanup();
  });
  return fx;
}
