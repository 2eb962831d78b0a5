import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagesDir, imageVersion } from '../../src/main/vm/image.js';
import { paddockAsync } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const KEY = 'test-key';

/**
 * `paddock run` needs a guest image before it starts, though a reply without tool calls never
 * boots it: these files stand in for one (no VM runs in these tests).
 */
async function placeholderImage(dataDir: string): Promise<void> {
  const dir = path.join(imagesDir(dataDir), await imageVersion());
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['vmlinux', 'initrd.img', 'rootfs.img']) fs.writeFileSync(path.join(dir, f), '');
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ version: 'placeholder' }));
}

describe('usage and spend limits on the command line', () => {
  let api: MockMessagesApi;
  let home: { dir: string; cleanup(): void };
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    api = await startMessagesApi({ apiKey: KEY });
    home = tempDir('paddock-usage-cli-');
    await placeholderImage(home.dir);
    env = { PADDOCK_HOME: home.dir, ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: api.url };
  });
  afterAll(async () => {
    expect(api.problems).toEqual([]);
    await api.close();
    home.cleanup();
  });

  it('paddock run --json: assistant events carry cache tokens; the last line sums up the run', async () => {
    api.enqueue({
      reply: {
        content: [{ type: 'text', text: 'Hello.' }],
        stop_reason: 'end_turn',
        usage: {
          input_tokens: 120,
          output_tokens: 30,
          cache_read_input_tokens: 9000,
          cache_creation_input_tokens: 400,
        },
      },
    });
    const r = await paddockAsync(['run', '--json', 'Say hello'], env);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((e) => e.type === 'assistant')).toMatchObject({
      inputTokens: 120,
      outputTokens: 30,
      cacheReadTokens: 9000,
      cacheWriteTokens: 400,
    });
    const last = lines.at(-1)!;
    // 120 + 400 × 1.25 + 9,000 × 0.1 = 1,520 input at $4/M, and 30 output at $20/M.
    expect(last).toEqual({
      type: 'summary',
      sessionId: expect.stringMatching(/^ses_/),
      stopReason: 'end_turn',
      inputTokens: 120,
      outputTokens: 30,
      cacheReadTokens: 9000,
      cacheWriteTokens: 400,
      costUsd: 0.00668,
    });
  }, 60_000);

  it('paddock run ends with a line of what the run used, cache reads included (only that run)', async () => {
    api.enqueue(
      {
        reply: {
          content: [{ type: 'text', text: 'First.' }],
          stop_reason: 'end_turn',
          usage: { input_tokens: 5000, output_tokens: 10 },
        },
      },
      {
        reply: {
          content: [{ type: 'text', text: 'Second.' }],
          stop_reason: 'end_turn',
          usage: {
            input_tokens: 1234,
            output_tokens: 56,
            cache_read_input_tokens: 12_345,
            cache_creation_input_tokens: 0,
          },
        },
      },
    );
    const first = await paddockAsync(['run', '--json', 'One'], env);
    const { sessionId } = JSON.parse(first.stdout.trim().split('\n').at(-1)!) as {
      sessionId: string;
    };
    const r = await paddockAsync(['run', '--resume', sessionId, 'Two'], env);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('Second.\n');
    // $0.010994 for this run alone; the first run's $0.0202 is not counted again.
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(
      'Usage: 1,234 input · 56 output · 12,345 cache read · 0 cache write tokens · $0.01',
    );
  }, 60_000);

  it('paddock automations add/edit --spend-limit: dollars, none, or a sentence', async () => {
    const cli = async (args: string[]) => {
      const r = await paddockAsync(args, env);
      return { ...r, json: () => JSON.parse(r.stdout) as Record<string, unknown> };
    };
    const add = await cli([
      'automations',
      'add',
      '--name',
      'Digest',
      '--prompt',
      'Summarise',
      '--schedule',
      'every day at 9:00',
      '--spend-limit',
      '$2.50',
      '--json',
    ]);
    expect(add.stderr).toBe('');
    const a = add.json();
    expect(a.spendLimitUsd).toBe(2.5);
    const id = a.id as string;

    const shown = await cli(['automations', 'show', id]);
    expect(shown.stdout).toMatch(/limit: {4}\$2\.50 per run/);
    expect(shown.stdout).toMatch(
      /used: {5}0 input · 0 output · 0 cache read · 0 cache write tokens · \$0\.00 \(all runs\)/,
    );
    const shownJson = (await cli(['automations', 'show', id, '--json'])).json();
    expect(shownJson).toMatchObject({ spendLimitUsd: 2.5, usage: { costUsd: 0 }, runs: [] });

    const edited = await cli(['automations', 'edit', id, '--spend-limit', '0.75']);
    expect(edited.stdout).toMatch(
      /^Changed auto_\w+ “Digest”; next run .*; spend limit \$0\.75 per run\.\n$/,
    );
    const cleared = await cli(['automations', 'edit', id, '--spend-limit', 'none', '--json']);
    expect(cleared.json()).toMatchObject({ spendLimitUsd: null, name: 'Digest' });
    const renamed = await cli(['automations', 'edit', id, '--name', 'Daily digest', '--json']);
    expect(renamed.json()).toMatchObject({ name: 'Daily digest', spendLimitUsd: null });

    for (const bad of ['0', '-1', 'lots', '$']) {
      const r = await cli(['automations', 'edit', id, '--spend-limit', bad]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        'The spend limit must be a positive number of dollars, such as 2 or 0.50, or none for no limit.',
      );
    }
    const missing = await cli(['automations', 'edit', 'auto_nope', '--spend-limit', '1']);
    expect(missing.stderr).toMatch(/There is no automation auto_nope/);
  }, 120_000);
});
