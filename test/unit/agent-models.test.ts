import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createAnthropic } from '../../src/main/agent/model.js';
import {
  BUILT_IN_MODELS,
  builtInProfile,
  EFFORTS,
  ModelCatalog,
  nearestEffort,
  profileFromInfo,
  shapeRequest,
} from '../../src/main/agent/models.js';
import { billedUsage } from '../../src/main/agent/pricing.js';
import type { Tool } from '../../src/main/agent/tools/types.js';
import { agentFixture, agentSession } from '../helpers/agent.js';
import { tempDir } from '../helpers/temp-dir.js';

/** Every model the Models API of `api` lists, as the SDK reads them. */
async function listModels(url: string) {
  const client = createAnthropic({ apiKey: 'test-key', baseURL: url });
  const out = [];
  for await (const m of client.models.list()) out.push(m);
  return out;
}

describe('shaping a request from what the model accepts', () => {
  it('sends adaptive thinking and the effort to the 5.5 models, never a budget or "off"', () => {
    const p = builtInProfile('claude-opus-5-5');
    for (const effort of EFFORTS) {
      expect(shapeRequest(p, effort, 32_000)).toEqual({
        max_tokens: 32_000,
        thinking: { type: 'adaptive' },
        output_config: { effort },
      });
    }
  });

  it('turns effort into a thinking budget for models that take one, and no effort parameter', () => {
    const p = builtInProfile('claude-sonnet-4-5');
    expect(shapeRequest(p, 'low', 32_000)).toEqual({
      max_tokens: 32_000,
      thinking: { type: 'disabled' },
    });
    expect(shapeRequest(p, 'high', 32_000).thinking).toEqual({
      type: 'enabled',
      budget_tokens: 16_000,
    });
    // The budget stays below max_tokens, as the API requires.
    expect(shapeRequest(p, 'max', 8_000).thinking).toEqual({
      type: 'enabled',
      budget_tokens: 7_999,
    });
  });

  it('keeps max_tokens within the model and picks the nearest effort the model has', () => {
    expect(shapeRequest(builtInProfile('claude-haiku-5-5'), 'high', 128_000).max_tokens).toBe(
      32_000,
    );
    expect(nearestEffort(['low', 'medium', 'high'], 'max')).toBe('high');
    expect(nearestEffort(['high', 'max'], 'low')).toBe('high');
    expect(nearestEffort([], 'low')).toBeUndefined();
  });

  it('treats a dated id as its family and an unknown model as the newest generation', () => {
    expect(builtInProfile('claude-sonnet-4-5-20250929').thinking.enabled).toBe(true);
    expect(builtInProfile('claude-next-1').thinking).toEqual({
      adaptive: true,
      enabled: false,
      disabled: false,
    });
  });
});

describe('what a reply bills', () => {
  it('adds a compaction pass, which the API reports only in usage.iterations', () => {
    expect(
      billedUsage({
        input_tokens: 10,
        output_tokens: 20,
        cache_read_input_tokens: 100,
        cache_creation_input_tokens: null,
        iterations: [
          {
            type: 'compaction',
            input_tokens: 1,
            output_tokens: 2,
            cache_read_input_tokens: 3000,
            cache_creation_input_tokens: 4,
          },
          { type: 'message', input_tokens: 10, output_tokens: 20, cache_read_input_tokens: 100 },
        ],
      }),
    ).toEqual({
      input_tokens: 11,
      output_tokens: 22,
      cache_read_input_tokens: 3100,
      cache_creation_input_tokens: 4,
    });
  });
});

describe('the model catalog and the scripted Messages API', () => {
  const fx = agentFixture();

  it('reads the same capabilities from GET /v1/models as the built-in table says', async () => {
    const infos = await listModels(fx.api.url);
    for (const built of BUILT_IN_MODELS) {
      const info = infos.find((i) => i.id === built.id);
      expect(info, built.id).toBeDefined();
      expect(profileFromInfo(info!)).toEqual({ ...built, source: 'api' });
    }
  });

  it('keeps the list on disk, uses it offline, and falls back to the built-in table', async () => {
    const home = tempDir('paddock-models-');
    try {
      const cacheFile = path.join(home.dir, 'cache', 'models.json');
      let now = 1_000_000;
      let calls = 0;
      const online = new ModelCatalog({
        list: async () => {
          calls++;
          return listModels(fx.api.url);
        },
        cacheFile,
        now: () => now,
      });
      expect((await online.profile('claude-sonnet-4-5')).source).toBe('api');
      await online.profile('claude-opus-5-5');
      expect(calls).toBe(1); // asked once, then kept
      expect(fs.existsSync(cacheFile)).toBe(true);

      // A new process with no network: the copy on disk is used.
      const offline = new ModelCatalog({
        list: () => Promise.reject(new Error('offline')),
        cacheFile,
        now: () => (now += 2 * 24 * 3600_000),
      });
      expect((await offline.profile('claude-haiku-4-5')).source).toBe('api');
      // Nothing kept and no network: the built-in table.
      const bare = new ModelCatalog({ list: () => Promise.reject(new Error('offline')) });
      expect(await bare.profile('claude-sonnet-4-5')).toEqual(builtInProfile('claude-sonnet-4-5'));
      // A corrupt file is ignored, not trusted.
      fs.writeFileSync(cacheFile, '{"fetchedAt": "soon", "models": 3}');
      const corrupt = new ModelCatalog({
        list: () => Promise.reject(new Error('offline')),
        cacheFile,
      });
      expect((await corrupt.profile('claude-opus-5-5')).source).toBe('built-in');
    } finally {
      home.cleanup();
    }
  });

  it('sends, for every model in the built-in table and every effort, only what the API accepts', async () => {
    const echo: Tool = {
      name: 'echo',
      description: 'echoes',
      input: z.object({ text: z.string() }),
      run: async ({ text }) => ({ content: text, isError: false }),
    };
    for (const model of BUILT_IN_MODELS.map((m) => m.id)) {
      for (const effort of EFFORTS) {
        fx.api.enqueue(
          {
            reply: {
              content: [
                { type: 'thinking', thinking: 'plan', signature: 'sig' },
                {
                  type: 'tool_use',
                  id: `toolu_${model}_${effort}`,
                  name: 'echo',
                  input: { text: 'hi' },
                },
              ],
              stop_reason: 'tool_use',
            },
          },
          { reply: { content: [{ type: 'text', text: 'done' }], stop_reason: 'end_turn' } },
        );
        const { session } = agentSession(fx.store, fx.api, {
          tools: [echo],
          settings: { model, maxTokens: 16_000, effort },
        });
        const before = fx.api.requests.length;
        await expect(session.run('say hi'), `${model} at ${effort}`).resolves.toMatchObject({
          stopReason: 'end_turn',
        });
        for (const r of fx.api.requests.slice(before))
          expect(r.outcome, `${model} ${effort}`).toBe(200);
      }
    }
    expect(fx.api.problems).toEqual([]);
  }, 60_000);

  it('stops a run at its spend limit with a sentence, and records the cost', async () => {
    const echo: Tool = {
      name: 'echo',
      description: 'echoes',
      input: z.object({ text: z.string() }),
      run: async ({ text }) => ({ content: text, isError: false }),
    };
    const toolTurn = (i: number) => ({
      reply: {
        content: [
          { type: 'tool_use' as const, id: `toolu_${i}`, name: 'echo', input: { text: 'x' } },
        ],
        stop_reason: 'tool_use' as const,
        // $4 per million input tokens on Opus 5.5: each turn costs $0.40.
        usage: { input_tokens: 100_000, output_tokens: 0 },
      },
    });
    fx.api.enqueue(toolTurn(1), toolTurn(2), toolTurn(3));
    const { session, events } = agentSession(fx.store, fx.api, {
      tools: [echo],
      spendLimitUsd: 1,
    });
    const outcome = await session.run('spend');
    expect(outcome.stopReason).toBe('spend_limit');
    expect(fx.api.requests).toHaveLength(3);
    const error = events.find((e) => e.type === 'error');
    expect(error).toMatchObject({ code: 'SPEND_LIMIT' });
    expect(error && 'message' in error && error.message).toMatch(
      /spend limit of \$1\.00 \(spent \$1\.20\) and was stopped/,
    );
    expect(fx.store.sessions.get(session.id)!.costUsd).toBeCloseTo(1.2, 5);
  });
});
