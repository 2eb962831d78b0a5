import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import Anthropic from '@anthropic-ai/sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';
import { parseScript } from '../support/messages-api/script.js';

const MODEL = 'claude-opus-5-5';
const ask = (text: string) => ({
  model: MODEL,
  max_tokens: 1024,
  messages: [{ role: 'user' as const, content: text }],
});

let api: MockMessagesApi;
let client: Anthropic;

beforeEach(async () => {
  api = await startMessagesApi({ apiKey: 'k' });
  client = new Anthropic({ baseURL: api.url, apiKey: 'k', maxRetries: 0 });
});
afterEach(async () => {
  await api.close();
});

describe('mock Messages API with the real SDK', () => {
  it('streams a text reply that the SDK assembles into the scripted content', async () => {
    const text = 'Hello there! I will sort your photos by date — 📷 first, then the rest.';
    api.enqueue({
      reply: {
        content: [{ type: 'text', text }],
        stop_reason: 'end_turn',
        usage: { input_tokens: 12, output_tokens: 34 },
      },
    });
    const stream = client.messages.stream(ask('hi'));
    const deltas: string[] = [];
    stream.on('text', (d) => deltas.push(d));
    const msg = await stream.finalMessage();

    expect(msg.content).toEqual([{ type: 'text', text, citations: null }]);
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(text);
    expect(msg.stop_reason).toBe('end_turn');
    expect(msg.model).toBe(MODEL);
    expect(msg.id).toMatch(/^msg_/);
    expect(msg.usage).toMatchObject({ input_tokens: 12, output_tokens: 34 });
    expect(api.requests[0]!.body).toMatchObject({ model: MODEL, stream: true, max_tokens: 1024 });
    expect(api.problems).toEqual([]);
  });

  it('streams tool_use input as several partial_json pieces parsed back to the object', async () => {
    const input = {
      command: 'ls -la "/work/my folder" && echo \\"done\\"',
      timeout_ms: 1.5e4,
      nested: { list: [1, -2.25, true, null, 'é'], empty: {} },
    };
    api.enqueue({
      reply: {
        content: [
          { type: 'text', text: 'Let me look.' },
          { type: 'tool_use', name: 'bash', input },
        ],
        stop_reason: 'tool_use',
      },
    });
    const stream = client.messages.stream(ask('list files'));
    const pieces: string[] = [];
    stream.on('inputJson', (partial) => pieces.push(partial));
    const msg = await stream.finalMessage();

    expect(pieces.length).toBeGreaterThan(1);
    expect(msg.stop_reason).toBe('tool_use');
    const block = msg.content[1]!;
    expect(block.type).toBe('tool_use');
    if (block.type !== 'tool_use') return;
    expect(block.name).toBe('bash');
    expect(block.id).toMatch(/^toolu_/);
    expect(block.input).toEqual(input);
  });

  it('round-trips thinking with its signature and redacted thinking', async () => {
    api.enqueue({
      reply: {
        content: [
          {
            type: 'thinking',
            thinking: 'The user wants a summary; read the file first.',
            signature: 'sig-abc==',
          },
          { type: 'redacted_thinking', data: 'ENCRYPTED' },
          { type: 'tool_use', id: 'toolu_fixed', name: 'read_file', input: { path: 'a.txt' } },
        ],
        stop_reason: 'tool_use',
      },
    });
    const signatures: string[] = [];
    const stream = client.messages.stream({
      ...ask('summarise a.txt'),
      thinking: { type: 'adaptive' },
    });
    stream.on('signature', (s) => signatures.push(s));
    const msg = await stream.finalMessage();

    expect(msg.content).toEqual([
      {
        type: 'thinking',
        thinking: 'The user wants a summary; read the file first.',
        signature: 'sig-abc==',
      },
      { type: 'redacted_thinking', data: 'ENCRYPTED' },
      {
        type: 'tool_use',
        id: 'toolu_fixed',
        name: 'read_file',
        input: { path: 'a.txt' },
        caller: { type: 'direct' },
      },
    ]);
    expect(signatures).toEqual(['sig-abc==']);
    expect(api.requests[0]!.body.thinking).toEqual({ type: 'adaptive' });

    // The blocks go back unchanged in the next turn, paired with the tool result.
    api.enqueue({
      reply: { content: [{ type: 'text', text: 'It says hi.' }], stop_reason: 'end_turn' },
    });
    const next = await client.messages
      .stream({
        ...ask('summarise a.txt'),
        messages: [
          { role: 'user', content: 'summarise a.txt' },
          { role: 'assistant', content: msg.content },
          {
            role: 'user',
            content: [{ type: 'tool_result', tool_use_id: 'toolu_fixed', content: 'hi' }],
          },
        ],
      })
      .finalMessage();
    expect(next.content).toEqual([{ type: 'text', text: 'It says hi.', citations: null }]);
    const sent = api.requests[1]!.body.messages![1]!.content as Array<{ type: string }>;
    expect(sent[0]).toEqual({
      type: 'thinking',
      thinking: 'The user wants a summary; read the file first.',
      signature: 'sig-abc==',
    });
  });

  it('answers a non-streaming create with one JSON Message and a request id', async () => {
    api.enqueue({
      reply: {
        content: [
          { type: 'text', text: 'Done.' },
          {
            type: 'tool_use',
            id: 'toolu_1',
            name: 'write_file',
            input: { path: 'x', content: 'y' },
          },
        ],
        stop_reason: 'tool_use',
        usage: { input_tokens: 5, output_tokens: 6, cache_read_input_tokens: 100 },
      },
    });
    const { data: msg, response } = await client.messages.create(ask('go')).withResponse();
    expect(response.headers.get('request-id')).toMatch(/^req_/);
    expect(msg.content).toEqual([
      { type: 'text', text: 'Done.', citations: null },
      {
        type: 'tool_use',
        id: 'toolu_1',
        name: 'write_file',
        input: { path: 'x', content: 'y' },
        caller: { type: 'direct' },
      },
    ]);
    expect(msg.usage).toMatchObject({
      input_tokens: 5,
      output_tokens: 6,
      cache_read_input_tokens: 100,
      cache_creation_input_tokens: 0,
    });
    expect((msg as { _request_id?: string })._request_id).toBe(response.headers.get('request-id'));
    expect(api.requests[0]!.body.stream).toBeUndefined();
  });

  it('surfaces a 529 as an APIError, and with SDK retries succeeds on the next step', async () => {
    api.enqueue({ status: 529, errorType: 'overloaded_error' });
    const err = await client.messages.create(ask('hi')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    const apiErr = err as InstanceType<typeof Anthropic.APIError>;
    expect(apiErr.status).toBe(529);
    expect(apiErr.type).toBe('overloaded_error');
    expect(apiErr.apiMessage).toBe('Overloaded');
    expect(apiErr.requestID).toMatch(/^req_/);

    const retrying = new Anthropic({ baseURL: api.url, apiKey: 'k', maxRetries: 2 });
    api.enqueue(
      { status: 529, errorType: 'overloaded_error', headers: { 'retry-after-ms': '5' } },
      { status: 429, errorType: 'rate_limit_error', headers: { 'retry-after-ms': '5' } },
      { reply: { content: [{ type: 'text', text: 'third time lucky' }], stop_reason: 'end_turn' } },
    );
    const msg = await retrying.messages.stream(ask('hi')).finalMessage();
    expect(msg.content).toEqual([{ type: 'text', text: 'third time lucky', citations: null }]);
    expect(api.requests.slice(1).map((r) => r.outcome)).toEqual([529, 429, 200]);
    expect(api.requests.at(-1)!.headers['x-stainless-retry-count']).toBe('2');
  });

  it('rejects a wrong key with 401 authentication_error and accepts a bearer token', async () => {
    const wrong = new Anthropic({ baseURL: api.url, apiKey: 'nope', maxRetries: 0 });
    const err = await wrong.messages.create(ask('hi')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(401);
    expect((err as InstanceType<typeof Anthropic.APIError>).type).toBe('authentication_error');
    expect(api.remaining).toBe(0);

    api.enqueue({ reply: { content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn' } });
    const token = new Anthropic({ baseURL: api.url, authToken: 'k', maxRetries: 0 });
    await expect(token.messages.create(ask('hi'))).resolves.toMatchObject({
      stop_reason: 'end_turn',
    });
    expect(api.requests[1]!.headers['authorization']).toBe('Bearer k');

    // x-api-key is accepted too, for clients that send the key that way.
    const res = await fetch(`${api.url}/v1/messages/count_tokens`, {
      method: 'POST',
      headers: { 'x-api-key': 'k', 'content-type': 'application/json' },
      body: JSON.stringify(ask('12345678')),
    });
    expect(res.status).toBe(200);
  });

  it('surfaces a mid-stream error event as an APIError from the stream', async () => {
    api.enqueue({
      streamError: { afterEvents: 4, errorType: 'overloaded_error', message: 'Overloaded' },
    });
    const stream = client.messages.stream(ask('hi'));
    const texts: string[] = [];
    stream.on('text', (t) => texts.push(t));
    const err = await stream.finalMessage().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    const apiErr = err as InstanceType<typeof Anthropic.APIError>;
    expect(apiErr.status).toBeUndefined();
    expect(apiErr.type).toBe('overloaded_error');
    expect(apiErr.apiMessage).toBe('Overloaded');
    // message_start, ping, content_block_start, one text delta arrived before the error.
    expect(texts).toHaveLength(1);
  });

  it('lets the client abort a hanging request, and sees the abort', async () => {
    api.enqueue({ hang: true });
    const controller = new AbortController();
    const pending = client.messages.create(ask('hi'), { signal: controller.signal });
    await waitFor(() => api.requests.length === 1);
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(Anthropic.APIUserAbortError);
    await waitFor(() => api.requests[0]!.aborted);

    // Mid-stream: headers and some events, then silence until the stream is aborted.
    api.enqueue({ hang: true, afterEvents: 4 });
    const stream = client.messages.stream(ask('hi'));
    const first = new Promise<string>((resolve) => stream.on('text', resolve));
    expect(await first).not.toBe('');
    stream.abort();
    await expect(stream.finalMessage()).rejects.toBeInstanceOf(Anthropic.APIUserAbortError);
    await waitFor(() => api.requests[1]!.aborted);
  });

  it('paces events with delayMs so streaming is observable', async () => {
    api.enqueue({
      delayMs: 20,
      reply: { content: [{ type: 'text', text: 'slow and steady' }], stop_reason: 'end_turn' },
    });
    const times: number[] = [];
    const stream = client.messages.stream(ask('hi'));
    stream.on('text', () => times.push(Date.now()));
    await stream.finalMessage();
    expect(times.length).toBe(3);
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(30);
  });

  it('records requests and lets a handler answer from the request', async () => {
    api.enqueue(
      {
        reply: {
          content: [{ type: 'tool_use', id: 'toolu_a', name: 'bash', input: { command: 'pwd' } }],
          stop_reason: 'tool_use',
        },
      },
      {
        handler: (body) => {
          const last = body.messages!.at(-1)!.content as Array<{ type: string; content: string }>;
          return {
            reply: {
              content: [{ type: 'text', text: `got: ${last[0]!.content}` }],
              stop_reason: 'end_turn',
            },
          };
        },
      },
    );
    const tools: Anthropic.Tool[] = [
      { name: 'bash', description: 'run', input_schema: { type: 'object', properties: {} } },
    ];
    const first = await client.messages.create({ ...ask('where?'), system: 'be brief', tools });
    const second = await client.messages.create({
      ...ask('where?'),
      system: 'be brief',
      tools,
      messages: [
        { role: 'user', content: 'where?' },
        { role: 'assistant', content: first.content },
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: 'toolu_a', content: '/work' }],
        },
      ],
    });
    expect(second.content).toEqual([{ type: 'text', text: 'got: /work', citations: null }]);
    expect(api.requests).toHaveLength(2);
    expect(api.requests[0]!.body).toMatchObject({ system: 'be brief', tools, model: MODEL });
    expect(api.requests[0]!.headers['anthropic-version']).toBeTruthy();
    expect(api.problems).toEqual([]);
  });

  it('fails loudly when no step is left, and when the request pairs tools wrongly', async () => {
    const err = await client.messages.create(ask('hi')).catch((e: unknown) => e);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(500);
    expect(String(err)).toContain('no scripted reply left');
    expect(api.problems[0]).toContain('no scripted reply left');

    api.enqueue({
      reply: { content: [{ type: 'text', text: 'unused' }], stop_reason: 'end_turn' },
    });
    const bad = await client.messages
      .create({
        ...ask('x'),
        messages: [
          { role: 'user', content: 'x' },
          {
            role: 'assistant',
            content: [{ type: 'tool_use', id: 'toolu_z', name: 'bash', input: {} }],
          },
          { role: 'user', content: 'forgot the result' },
        ],
      })
      .catch((e: unknown) => e);
    expect((bad as InstanceType<typeof Anthropic.APIError>).status).toBe(400);
    expect((bad as InstanceType<typeof Anthropic.APIError>).apiMessage).toContain('toolu_z');
    expect(api.remaining).toBe(1);
  });

  it('answers count_tokens and lists models through the SDK', async () => {
    const count = await client.messages.countTokens({
      model: MODEL,
      messages: [{ role: 'user', content: 'x'.repeat(400) }],
    });
    expect(count.input_tokens).toBeGreaterThanOrEqual(100);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toContain(MODEL);
    const one = await client.models.retrieve(MODEL);
    expect(one.id).toBe(MODEL);
    expect(api.sideRequests.map((r) => r.status)).toEqual([200, 200, 200]);
  });
});

describe('mock Messages API CLI', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'messages-api-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a JSON script, prints its URL, and records requests', async () => {
    const script = path.join(dir, 'script.json');
    const record = path.join(dir, 'requests.jsonl');
    writeFileSync(
      script,
      JSON.stringify([
        { status: 529, errorType: 'overloaded_error', headers: { 'retry-after': '0' } },
        { reply: { content: [{ type: 'text', text: 'from the cli' }], stop_reason: 'end_turn' } },
      ]),
    );
    const proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'test/support/messages-api/cli.ts',
        '--script',
        script,
        '--api-key',
        'ck',
        '--record',
        record,
      ],
      { cwd: path.resolve(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let stderr = '';
        proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        proc.on('exit', (code) => reject(new Error(`cli exited ${code}: ${stderr}`)));
        readline.createInterface({ input: proc.stdout }).on('line', (line) => {
          const m = /^MESSAGES_API_URL=(http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
          if (m) resolve(m[1]!);
        });
      });
      const cli = new Anthropic({ baseURL: url, apiKey: 'ck', maxRetries: 0 });
      await expect(cli.messages.create(ask('a'))).rejects.toMatchObject({ status: 529 });
      const msg = await cli.messages.stream(ask('b')).finalMessage();
      expect(msg.content).toEqual([{ type: 'text', text: 'from the cli', citations: null }]);
      const lines = readFileSync(record, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => l.body.messages[0].content)).toEqual(['a', 'b']);
    } finally {
      const exited = new Promise((resolve) => proc.on('exit', resolve));
      proc.kill('SIGTERM');
      await exited;
    }
  });

  it('rejects a script with a malformed step', () => {
    expect(() => parseScript('[{"reply":{"content":[]}}]')).toThrow(/stop_reason/);
    expect(() =>
      parseScript(
        '[{"reply":{"content":[{"type":"tool_use","input":{}}],"stop_reason":"tool_use"}}]',
      ),
    ).toThrow(/needs name/);
    expect(() => parseScript('{}')).toThrow(/array/);
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
