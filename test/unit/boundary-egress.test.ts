import Database from 'better-sqlite3';
import { createServer, type Server } from 'node:http';
import { connect as netConnect } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AgentSession } from '../../src/main/agent/session.js';
import { Core } from '../../src/main/core/core.js';
import { dispatch } from '../../src/main/core/dispatch.js';
import { cliApprover } from '../../src/main/cli/run-command.js';
import * as m0001 from '../../src/main/store/migrations/0001-initial.js';
import * as m0002 from '../../src/main/store/migrations/0002-automations.js';
import { DB_FILE } from '../../src/main/store/open.js';
import { Store } from '../../src/main/store/store.js';
import type { VmBackend } from '../../src/main/vm/backend.js';
import {
  Allowlist,
  parseAllowlistEntry,
  type Resolver,
} from '../../src/main/vm/egress/allowlist.js';
import {
  EgressProxy,
  type PersonAnswer,
  type UpstreamConnector,
} from '../../src/main/vm/egress/proxy.js';
import { Sandbox } from '../../src/main/vm/sandbox.js';
import type { Approval } from '../../src/shared/app-contract.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';
import { tableResolver } from '../helpers/table-resolver.js';

const KEY = 'sk-ant-test-key-0123456789abcd';
const PUBLIC_IP = '93.184.215.14';

async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** CONNECT through the proxy; resolves with the status line's code. */
function connectStatus(port: number, target: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`CONNECT ${target} timed out; got ${text}`));
    }, 5000);
    socket.on('error', () => {});
    socket.on('data', (c: Buffer) => {
      text += c.toString('utf8');
      if (/^HTTP\/1\.1 200/.test(text) && text.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

let target: Server;
let targetPort: number;
const proxies: EgressProxy[] = [];

beforeAll(async () => {
  target = createServer((_req, res) => res.end('target'));
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  targetPort = (target.address() as { port: number }).port;
});
afterAll(async () => {
  target.closeAllConnections();
  await new Promise((r) => target.close(r));
});
afterEach(async () => {
  for (const p of proxies.splice(0)) await p.close();
});

/** A proxy whose upstream connects record the checked address and reach the local target. */
async function startProxy(
  list: Allowlist,
  resolve: Resolver,
  answers: PersonAnswer[] = [],
): Promise<{ port: number; asked: string[]; dialled: string[]; proxy: EgressProxy }> {
  const asked: string[] = [];
  const dialled: string[] = [];
  const connect: UpstreamConnector = async (t) => {
    dialled.push(t.address);
    return netConnect(targetPort, '127.0.0.1');
  };
  const proxy = new EgressProxy({
    allowlist: list,
    onDecision: () => {},
    resolve,
    connect,
    askPerson: async (h, p) => {
      asked.push(`${h}:${p}`);
      return answers.shift() ?? 'deny';
    },
  });
  proxies.push(proxy);
  const { port } = await proxy.listen();
  return { port, asked, dialled, proxy };
}

describe('host.paddock.internal: the host’s loopback, only when configured', () => {
  it('a configured host.paddock.internal:PORT reaches the host loopback without asking DNS', async () => {
    const dns = tableResolver({ 'host.paddock.internal': [PUBLIC_IP] });
    const list = new Allowlist(['host.paddock.internal:5432']);
    for (const spelling of ['host.paddock.internal', 'HOST.Paddock.Internal.']) {
      const v = await list.decide(spelling, 5432, dns);
      expect(v).toMatchObject({ allowed: true, rule: 'host.paddock.internal:5432' });
      expect(v.addresses[0]).toBe('127.0.0.1');
      expect(v.addresses.every((a) => a === '127.0.0.1' || a === '::1')).toBe(true);
    }
    // SECURITY: the name is Paddock's own; no resolver is asked what it means.
    expect(dns.calls).toEqual([]);
    const { port, dialled } = await startProxy(list, dns);
    expect((await connectStatus(port, 'host.paddock.internal:5432')).status).toBe(200);
    expect(dialled).toEqual(['127.0.0.1']);
  });

  it('needs its exact port: no bare entry, no wildcard, no other port', async () => {
    expect(() => parseAllowlistEntry('host.paddock.internal')).toThrow(/port/);
    expect(() => parseAllowlistEntry('*.paddock.internal')).toThrow(/paddock\.internal/);
    expect(() => parseAllowlistEntry('*.paddock.internal:8080')).toThrow(/paddock\.internal/);
    const list = new Allowlist(['host.paddock.internal:5432']);
    const v = await list.decide('host.paddock.internal', 5433, tableResolver({}));
    expect(v).toMatchObject({ allowed: false, problem: 'internal' });
  });

  it('other names under paddock.internal do not exist and are never resolved', async () => {
    expect(() => parseAllowlistEntry('db.paddock.internal:5432')).toThrow(
      /only host\.paddock\.internal/,
    );
    const dns = tableResolver({ 'db.paddock.internal': ['127.0.0.1'] });
    const v = await new Allowlist([]).decide('db.paddock.internal', 5432, dns);
    expect(v.allowed).toBe(false);
    expect(dns.calls).toEqual([]);
  });

  it('prompt answers never open it: nobody is asked, and a prompt-sourced entry does not open it', async () => {
    const dns = tableResolver({});
    const { port, asked } = await startProxy(new Allowlist([]), dns, ['always', 'session']);
    const r = await connectStatus(port, 'host.paddock.internal:5432');
    expect(r.status).toBe(403);
    expect(r.text).toMatch(/host\.paddock\.internal:5432/);
    expect(asked).toEqual([]);
    const list = new Allowlist([]);
    list.add('host.paddock.internal:5432', { source: 'prompt' });
    expect(await list.decide('host.paddock.internal', 5432, dns)).toMatchObject({
      allowed: false,
      problem: 'internal',
    });
  });

  it('other spellings of the host’s loopback are never asked about and stay refused', async () => {
    const { port, asked } = await startProxy(new Allowlist([]), tableResolver({}), [
      'always',
      'always',
      'always',
    ]);
    for (const spelling of [
      '127.0.0.1',
      '127.0.0.2',
      '127.1',
      '2130706433',
      '0x7f000001',
      '[::1]',
      '[::ffff:127.0.0.1]',
      '0.0.0.0',
      '[::]',
      'localhost',
      'LOCALHOST.',
      'app.localhost',
    ]) {
      expect((await connectStatus(port, `${spelling}:${targetPort}`)).status, spelling).toBe(403);
    }
    expect(asked).toEqual([]);
  });

  it('an exact loopback entry typed in Settings or on the command line still opens it, as before', async () => {
    const list = new Allowlist([`127.0.0.1:${targetPort}`, `localhost:${targetPort}`]);
    const { port } = await startProxy(list, tableResolver({}));
    expect((await connectStatus(port, `127.0.0.1:${targetPort}`)).status).toBe(200);
    expect((await connectStatus(port, `localhost:${targetPort}`)).status).toBe(200);
    expect((await connectStatus(port, `127.0.0.2:${targetPort}`)).status).toBe(403);
  });

  it('the proxy never forwards to itself through host.paddock.internal', async () => {
    const list = new Allowlist([]);
    const { port } = await startProxy(list, tableResolver({}));
    list.add(`host.paddock.internal:${port}`);
    const r = await connectStatus(port, `host.paddock.internal:${port}`);
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/own network proxy/);
  });
});

describe('prompt answers never open internal addresses', () => {
  it.each([
    [['127.0.0.1']],
    [['::1']],
    [['::ffff:127.0.0.1']],
    [['0.0.0.0']],
    [[PUBLIC_IP, '127.0.0.1']],
    [['169.254.169.254']],
    [['192.168.1.10']],
  ])('a name allowed from a prompt is refused when its DNS answer is %j', async (answer) => {
    const dns = tableResolver({ 'rebind.test': answer });
    for (const reply of ['once', 'session', 'always'] as PersonAnswer[]) {
      const list = new Allowlist([]);
      const { port, asked, dialled } = await startProxy(list, dns, [reply]);
      const r = await connectStatus(port, `rebind.test:${targetPort}`);
      expect(r.status, reply).toBe(403);
      expect(asked).toEqual([`rebind.test:${targetPort}`]);
      expect(dialled).toEqual([]);
    }
  });

  it('a prompt entry never downgrades or upgrades: the configured one opens, the prompt one does not', async () => {
    const dns = tableResolver({ 'db.corp.test': ['10.0.0.5'] });
    const list = new Allowlist([]);
    list.add('db.corp.test:5432', { source: 'prompt' });
    expect((await list.decide('db.corp.test', 5432, dns)).allowed).toBe(false);
    list.add('db.corp.test:5432', { source: 'configured' });
    expect((await list.decide('db.corp.test', 5432, dns)).allowed).toBe(true);
    list.add('db.corp.test:5432', { source: 'prompt' });
    expect(list.entries()[0]?.source).toBe('configured');
  });
});

describe('an “always” answer keeps where it came from', () => {
  let api: MockMessagesApi;
  beforeAll(async () => {
    api = await startMessagesApi({ apiKey: KEY });
  });
  afterAll(() => api.close());

  it('in the app: saved as from a prompt, and the next task cannot reach loopback through it', async () => {
    const home = tempDir();
    const core = new Core({
      dataDir: path.join(home.dir, 'data'),
      host: 'web',
      env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    });
    const asked: Approval[] = [];
    core.events.onAny((event, payload) => {
      if (event === 'approval:requested') asked.push(payload as Approval);
    });
    try {
      api.enqueue({ reply: { content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn' } });
      const first = await core.tasks.create({ prompt: 'first', folders: [] });
      await until(() => core.tasks.get(first.id).task.status === 'done');
      // What the task's egress proxy calls for a host off the allowlist.
      const live = (
        core.tasks as unknown as { live: Map<string, { live: { session: AgentSession } }> }
      ).live;
      const answer = live.get(first.id)!.live.session.askNetwork('rebind.test', 8080);
      await until(() => asked.length === 1);
      core.tasks.answer(asked[0]!.id, 'always');
      expect(await answer).toBe('always');

      api.enqueue({ reply: { content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn' } });
      const second = await core.tasks.create({ prompt: 'second', folders: [] });
      await until(() => core.tasks.get(second.id).task.status === 'done');
      const row = core.store.sessions.get(second.id)!;
      expect(core.tasks.get(second.id).task.allowlist).toContain('rebind.test:8080');
      // The sandbox the next task gets, built from its stored row as TaskManager builds it.
      const sandbox = new Sandbox({
        backend: {} as VmBackend,
        imageDir: home.dir,
        sessionDir: home.dir,
        runDir: home.dir,
        shares: [],
        allowHosts: row.allowlist,
        promptHosts: row.promptAllowlist,
        memoryMb: 256,
        cpus: 1,
      });
      const dns = tableResolver({ 'rebind.test': ['127.0.0.1'], 'public.test': [PUBLIC_IP] });
      const v = await sandbox.allowlist.decide('rebind.test', 8080, dns);
      await sandbox.stop();
      expect(v).toMatchObject({ allowed: false, problem: 'internal' });
      const settings = core.store.settings.get();
      expect(settings.networkAllowlist).toEqual([]);
      expect(settings.promptAllowlist).toEqual(['rebind.test:8080']);
    } finally {
      await core.close();
      home.cleanup();
    }
  });

  it('an automation made from a task, and its runs, keep prompt entries as prompt entries', async () => {
    const home = tempDir();
    const core = new Core({
      dataDir: path.join(home.dir, 'data'),
      host: 'web',
      env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    });
    const asked: Approval[] = [];
    core.events.onAny((event, payload) => {
      if (event === 'approval:requested') asked.push(payload as Approval);
    });
    try {
      core.store.settings.update({ promptAllowlist: ['rebind.test:8080'] });
      api.enqueue(
        {
          reply: {
            content: [
              {
                type: 'tool_use',
                name: 'schedule_automation',
                input: { name: 'Nightly', prompt: 'p', schedule: 'every day at 2:00' },
              },
            ],
            stop_reason: 'tool_use',
          },
        },
        { reply: { content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn' } },
      );
      const task = await core.tasks.create({ prompt: 'p', folders: [], allowlist: ['pypi.org'] });
      expect(core.store.sessions.get(task.id)).toMatchObject({
        allowlist: ['pypi.org'],
        promptAllowlist: ['rebind.test:8080'],
      });
      await until(() => asked.length === 1);
      expect(asked[0]!.automation!.hosts).toEqual(['pypi.org', 'rebind.test:8080']);
      // The person takes the "always" answer back before saying yes to the automation.
      core.store.settings.update({ promptAllowlist: [] });
      core.tasks.answer(asked[0]!.id, 'once');
      await until(() => core.tasks.get(task.id).task.status === 'done');
      const [a] = core.store.automations.list();
      expect(a).toMatchObject({ allowlist: ['pypi.org'], promptAllowlist: ['rebind.test:8080'] });

      // A run of it: the session it gets keeps both apart too.
      core.store.settings.update({ promptAllowlist: ['docs.example.com'] });
      api.enqueue({ reply: { content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn' } });
      const run = core.automations.runNow(a!.id);
      await until(() => ['succeeded', 'failed'].includes(core.store.runs.get(run.id)!.status));
      const row = core.store.sessions.get(core.store.runs.get(run.id)!.sessionId!)!;
      expect(row.allowlist).toEqual(['pypi.org']);
      expect(row.promptAllowlist.sort()).toEqual(['docs.example.com', 'rebind.test:8080']);
    } finally {
      await core.close();
      home.cleanup();
    }
  });

  it('on the command line: saved as from a prompt', async () => {
    const home = tempDir();
    const store = Store.open(home.dir);
    try {
      const approver = cliApprover(false, store, () => {}, { tty: true, ask: async () => 'a' });
      expect(await approver.askNetwork('rebind.test', 8080)).toBe('always');
      expect(await approver.askNetwork('docs.example.com', 443)).toBe('always');
      expect(store.settings.get()).toMatchObject({
        networkAllowlist: [],
        promptAllowlist: ['rebind.test:8080', 'docs.example.com'],
      });
    } finally {
      store.dispose();
      home.cleanup();
    }
  });

  it('an entry typed in Settings is configured, and moves out of the prompt list', async () => {
    const home = tempDir();
    const core = new Core({ dataDir: home.dir, host: 'web', env: {} });
    try {
      core.store.settings.update({ promptAllowlist: ['db.corp.test:5432', 'docs.example.com'] });
      const r = await dispatch(core.handlers, 'settings:update', {
        networkAllowlist: ['DB.corp.test.:5432'],
      });
      expect(r).toMatchObject({
        ok: true,
        value: { networkAllowlist: ['db.corp.test:5432'], promptAllowlist: ['docs.example.com'] },
      });
    } finally {
      await core.close();
      home.cleanup();
    }
  });
});

describe('saved entries from before provenance (migration 0003)', () => {
  it('keeps what only a person could have typed, and treats name:port entries as prompt answers', () => {
    const home = tempDir();
    try {
      const db = new Database(path.join(home.dir, DB_FILE));
      m0001.up(db);
      m0002.up(db);
      db.pragma('user_version = 2');
      const old = [
        'example.com',
        'rebind.test:8080',
        '127.0.0.1:5432',
        '[::1]:8080',
        'localhost:3000',
        'app.localhost:3000',
        '*.example.org:8443',
        'api.example.com:443',
        '93.184.215.14:8443',
      ];
      db.prepare('INSERT INTO settings (key, value) VALUES (?, ?)').run(
        'networkAllowlist',
        JSON.stringify(old),
      );
      db.prepare(
        `INSERT INTO sessions (id, title, status, model, approval_mode, allowlist, created_at, updated_at)
         VALUES ('ses_old', 't', 'done', 'm', 'auto', ?, 0, 0)`,
      ).run(JSON.stringify(old));
      db.prepare(
        `INSERT INTO automations (id, name, prompt, rrule, missed_policy, allowlist, enabled, created_at, updated_at)
         VALUES ('auto_old', 'n', 'p', 'FREQ=DAILY', 'once', ?, 1, 0, 0)`,
      ).run(JSON.stringify(old));
      db.close();

      const store = Store.open(home.dir);
      const configured = [
        'example.com',
        '127.0.0.1:5432',
        '[::1]:8080',
        'localhost:3000',
        'app.localhost:3000',
        '*.example.org:8443',
        '93.184.215.14:8443',
      ];
      const prompt = ['rebind.test:8080', 'api.example.com:443'];
      expect(store.settings.get()).toMatchObject({
        networkAllowlist: configured,
        promptAllowlist: prompt,
      });
      expect(store.sessions.get('ses_old')).toMatchObject({
        allowlist: configured,
        promptAllowlist: prompt,
      });
      expect(store.automations.get('auto_old')).toMatchObject({
        allowlist: configured,
        promptAllowlist: prompt,
      });
      store.dispose();
    } finally {
      home.cleanup();
    }
  });
});
