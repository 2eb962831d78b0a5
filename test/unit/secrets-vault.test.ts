import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  appKeySource,
  FILE_KEY_FILE,
  localKeySource,
  MacKeychainHolder,
  SAFE_KEY_FILE,
  SECRETS_DIR,
  type VaultKeySource,
} from '../../src/main/core/secrets/key-source.js';
import { SecretsService } from '../../src/main/core/secrets/service.js';
import { localSecretsStatus } from '../../src/main/core/secrets/vault.js';
import { EventBus } from '../../src/main/core/events.js';
import { Store } from '../../src/main/store/store.js';
import type { EventName } from '../../src/shared/api.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A value no other test data contains, so finding its bytes anywhere is a leak. */
const distinctive = () => `sv-${crypto.randomBytes(18).toString('base64url')}`;

/** Every file under `dir`, as [path, bytes]. */
function filesUnder(dir: string): [string, Buffer][] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const p = path.join(e.parentPath, e.name);
      return [p, fs.readFileSync(p)];
    });
}

/** The files under `dir` whose bytes contain `needle` (utf8, utf16le and base64 spellings). */
function leaks(dir: string, needle: string): string[] {
  const spellings = [
    Buffer.from(needle, 'utf8'),
    Buffer.from(needle, 'utf16le'),
    Buffer.from(Buffer.from(needle).toString('base64').slice(0, 16)),
  ];
  return filesUnder(dir)
    .filter(([, bytes]) => spellings.some((s) => bytes.includes(s)))
    .map(([p]) => p);
}

let home: ReturnType<typeof tempDir>;
let open: {
  store: Store;
  service: SecretsService;
  events: { event: EventName; payload: unknown }[];
}[];

/** A store and service on the data folder, as the CLI's core builds them. */
function start(keys: VaultKeySource = localKeySource(home.dir, 'linux')) {
  const store = Store.open(home.dir);
  const bus = new EventBus();
  const events: { event: EventName; payload: unknown }[] = [];
  bus.onAny((event, payload) => events.push({ event, payload }));
  const service = new SecretsService({ store, events: bus, keys });
  const s = { store, service, events };
  open.push(s);
  return s;
}

function stop(s: { store: Store; service: SecretsService }): void {
  s.service.dispose();
  s.store.dispose();
  open = open.filter((o) => o !== s);
}

const keyFile = () => path.join(home.dir, SECRETS_DIR, FILE_KEY_FILE);

beforeEach(() => {
  home = tempDir();
  open = [];
});
afterEach(() => {
  for (const s of open) stop(s);
  home.cleanup();
});

describe('the secrets vault (file key)', () => {
  it('round-trips through a real SQLite file, and again after a restart', async () => {
    const value = distinctive();
    const a = start();
    const info = await a.service.add(
      { name: 'github', hosts: ['API.GitHub.com.', 'uploads.github.com:8443'], value },
      'cli',
    );
    expect(info).toMatchObject({
      name: 'github',
      envName: 'GITHUB',
      hosts: ['api.github.com', 'uploads.github.com:8443'],
      inBody: false,
      pin: true,
      source: 'cli',
    });
    expect(info).not.toHaveProperty('value');
    expect(info).not.toHaveProperty('ciphertext');
    expect(a.events).toEqual([{ event: 'secrets:changed', payload: { names: ['github'] } }]);
    const [s] = a.service.forSession(['github']);
    expect(s).toMatchObject({ name: 'github', envName: 'GITHUB', value, pin: true, inBody: false });
    expect(s!.hosts).toEqual(['api.github.com', 'uploads.github.com:8443']);

    // While the store is open the row may sit in the WAL: neither file holds the value.
    const db = path.join(home.dir, 'paddock.db');
    const both = Buffer.concat(
      [db, `${db}-wal`].filter(fs.existsSync).map((f) => fs.readFileSync(f)),
    );
    expect(both.includes(Buffer.from('github'))).toBe(true);
    expect(leaks(home.dir, value)).toEqual([]);
    stop(a);

    // A new process on the same data folder opens it.
    const b = start();
    expect(b.service.forSession(['github'])[0]!.value).toBe(value);
    expect(b.service.list().map((x) => x.name)).toEqual(['github']);
    expect(JSON.stringify(b.service.list())).not.toContain(value);
    stop(b);
    expect(leaks(home.dir, value)).toEqual([]);
  });

  it('keeps the key in a 0600 file in a 0700 folder, and says so', async () => {
    const a = start();
    expect(a.service.status()).toMatchObject({ kind: 'file', usable: true });
    expect(a.service.status().detail).toMatch(/^No secret is stored yet\./);
    await a.service.add({ name: 'x', hosts: ['example.com'], value: distinctive() }, 'cli');
    expect(fs.statSync(keyFile()).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(keyFile())).mode & 0o777).toBe(0o700);
    expect(fs.statSync(keyFile()).size).toBe(32);
    expect(fs.readdirSync(path.dirname(keyFile()))).toEqual([FILE_KEY_FILE]);
    expect(a.service.status()).toEqual({
      kind: 'file',
      usable: true,
      detail: `Secrets are encrypted with a key in a file only you can read (${keyFile()}); this computer has no keychain Paddock can use.`,
    });
  });

  it('refuses a key file others can read, saying how to fix it', async () => {
    const value = distinctive();
    const a = start();
    await a.service.add({ name: 'x', hosts: ['example.com'], value }, 'cli');
    stop(a);
    fs.chmodSync(keyFile(), 0o644);
    const b = start();
    const status = b.service.status();
    expect(status).toMatchObject({ kind: 'file', usable: false });
    expect(status.detail).toContain('can be read or changed by other users (mode 0644)');
    expect(status.fix).toBe(`Run: chmod 600 '${keyFile()}'`);
    expect(() => b.service.forSession(['x'])).toThrow(
      expect.objectContaining({
        code: 'SECRETS_LOCKED',
        message: expect.stringContaining('chmod 600'),
      }),
    );
    await expect(
      b.service.add({ name: 'y', hosts: ['example.com'], value: 'v' }, 'cli'),
    ).rejects.toMatchObject({ code: 'SECRETS_LOCKED' });
    // Listing still works; nothing was changed.
    expect(b.service.list().map((s) => s.name)).toEqual(['x']);
    expect(localSecretsStatus(home.dir)).toMatchObject({ usable: false, fix: status.fix });
    stop(b);

    fs.chmodSync(keyFile(), 0o600);
    expect(start().service.forSession(['x'])[0]!.value).toBe(value);
  });

  it('refuses a too-open key file even before any secret is stored', async () => {
    const a = start();
    await a.service.add({ name: 'x', hosts: ['example.com'], value: 'v' }, 'cli');
    a.service.remove('x');
    stop(a);
    fs.chmodSync(keyFile(), 0o640);
    const b = start();
    expect(b.service.status()).toMatchObject({ usable: false });
    await expect(
      b.service.add({ name: 'y', hosts: ['example.com'], value: 'v' }, 'cli'),
    ).rejects.toMatchObject({ code: 'SECRETS_LOCKED' });
  });

  it.runIf(process.getuid?.() === 0)('refuses a key file another user owns', async () => {
    const a = start();
    await a.service.add({ name: 'x', hosts: ['example.com'], value: 'v' }, 'cli');
    stop(a);
    fs.chownSync(keyFile(), 12345, 12345);
    const b = start();
    expect(b.service.status().detail).toContain('belongs to another user (uid 12345)');
    expect(() => b.service.forSession(['x'])).toThrow(
      expect.objectContaining({ code: 'SECRETS_LOCKED' }),
    );
  });

  it('refuses a symlink in place of the key file', async () => {
    const a = start();
    await a.service.add({ name: 'x', hosts: ['example.com'], value: 'v' }, 'cli');
    stop(a);
    const elsewhere = path.join(home.dir, 'elsewhere.key');
    fs.renameSync(keyFile(), elsewhere);
    fs.symlinkSync(elsewhere, keyFile());
    const b = start();
    expect(() => b.service.forSession(['x'])).toThrow(
      expect.objectContaining({
        code: 'SECRETS_LOCKED',
        message: expect.stringContaining('symbolic link'),
      }),
    );
  });

  it('fails clearly on a tampered ciphertext or a row renamed to another name', async () => {
    const a = start();
    const one = distinctive();
    const two = distinctive();
    await a.service.add({ name: 'one', hosts: ['one.example.com'], value: one }, 'cli');
    await a.service.add({ name: 'two', hosts: ['two.example.com'], value: two }, 'cli');
    const db = a.store.db;

    // One flipped bit in the data.
    const row = db.prepare('SELECT ciphertext FROM secrets WHERE name = ?').get('one') as {
      ciphertext: Buffer;
    };
    const tampered = Buffer.from(row.ciphertext);
    tampered[tampered.length - 1] = tampered[tampered.length - 1]! ^ 1;
    db.prepare('UPDATE secrets SET ciphertext = ? WHERE name = ?').run(tampered, 'one');
    expect(() => a.service.forSession(['one'])).toThrow(
      expect.objectContaining({
        code: 'SECRET_UNREADABLE',
        message: expect.stringMatching(
          /“one” could not be decrypted.*Remove it and add it again\./,
        ),
      }),
    );
    // The other one still opens.
    expect(a.service.forSession(['two'])[0]!.value).toBe(two);

    // `two`'s sealed value copied onto `one` (a swap of rows) does not open under `one`'s name.
    db.prepare(
      'UPDATE secrets SET ciphertext = (SELECT ciphertext FROM secrets WHERE name = ?) WHERE name = ?',
    ).run('two', 'one');
    expect(() => a.service.forSession(['one'])).toThrow(
      expect.objectContaining({ code: 'SECRET_UNREADABLE' }),
    );
    // A row renamed does not open either.
    db.prepare("UPDATE secrets SET name = 'three' WHERE name = 'two'").run();
    let message = '';
    try {
      a.service.forSession(['three']);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/“three” could not be decrypted/);
    expect(message).not.toContain(two);
    expect(message).not.toContain(one);
  });

  it('gives a fresh placeholder on every call, never the value', async () => {
    const a = start();
    const value = distinctive();
    await a.service.add({ name: 'api', hosts: ['api.example.com'], value }, 'cli');
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const [s] = a.service.forSession(['api', 'api']);
      expect(s!.placeholder).toMatch(/^paddock_ph_[0-9a-f]{32}$/);
      expect(s!.placeholder).not.toContain(value);
      seen.add(s!.placeholder);
    }
    expect(seen.size).toBe(50);
    expect(a.service.forSession(['api', 'api'])).toHaveLength(1);
  });

  it('validates what is added: hosts, names, duplicates, replace, defaults', async () => {
    const a = start();
    const add = (req: Parameters<SecretsService['add']>[0]) => a.service.add(req, 'settings');
    await expect(add({ name: 'x', hosts: ['*'], value: 'v' })).rejects.toMatchObject({
      code: 'BAD_ALLOW_HOST',
    });
    await expect(add({ name: 'x', hosts: ['*.github.io'], value: 'v' })).rejects.toMatchObject({
      code: 'BAD_ALLOW_HOST',
    });
    await expect(add({ name: 'Bad Name', hosts: ['a.com'], value: 'v' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    const secret = distinctive();
    const lines = add({ name: 'x', hosts: ['a.com'], value: `${secret}\n${secret}` });
    await expect(lines).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await lines.catch((e: Error) => expect(e.message).not.toContain(secret));
    expect(a.service.list()).toEqual([]);
    expect(a.events).toEqual([]);

    const first = await add({ name: 'my-ci.token', hosts: ['a.com', 'A.com'], value: 'v1' }).catch(
      (e: Error) => e,
    );
    expect(first).toMatchObject({ code: 'BAD_REQUEST' });
    const made = await add({ name: 'my-ci_1', hosts: ['a.com', 'A.com'], value: 'v1' });
    expect(made).toMatchObject({ envName: 'MY_CI_1', hosts: ['a.com'], source: 'settings' });
    expect((await add({ name: '1pass', hosts: ['b.com'], value: 'v' })).envName).toBe('_1PASS');

    await expect(add({ name: 'my-ci_1', hosts: ['c.com'], value: 'v2' })).rejects.toMatchObject({
      code: 'SECRET_EXISTS',
    });
    const replaced = await add({
      name: 'my-ci_1',
      hosts: ['c.com'],
      value: 'v2',
      envName: 'CI_TOKEN',
      inBody: true,
      pin: false,
      replace: true,
    });
    expect(replaced).toMatchObject({
      envName: 'CI_TOKEN',
      hosts: ['c.com'],
      inBody: true,
      pin: false,
    });
    expect(replaced.createdAt).toBe(made.createdAt);
    expect(a.service.forSession(['my-ci_1'])[0]!.value).toBe('v2');
  });

  it('says which secret is missing, and refuses two on one variable', async () => {
    const a = start();
    await a.service.add({ name: 'a', hosts: ['a.com'], value: 'v', envName: 'TOKEN' }, 'cli');
    await a.service.add(
      { name: 'b', hosts: ['b.com', 'a.com'], value: 'w', envName: 'TOKEN' },
      'cli',
    );
    expect(() => a.service.forSession(['a', 'nope'])).toThrow(
      expect.objectContaining({
        code: 'SECRET_NOT_FOUND',
        message: expect.stringMatching(/no secret named “nope”.*paddock secrets add nope --host/),
      }),
    );
    expect(() => a.service.hostsOf(['nope'])).toThrow(
      expect.objectContaining({ code: 'SECRET_NOT_FOUND' }),
    );
    expect(a.service.hostsOf(['a', 'b', 'a'])).toEqual(['a.com', 'b.com']);
    expect(() => a.service.forSession(['a', 'b'])).toThrow(
      expect.objectContaining({ code: 'SECRET_ENV_CLASH' }),
    );
    expect(a.service.remove('a')).toBe(true);
    expect(a.service.remove('a')).toBe(false);
    expect(a.events.map((e) => e.payload)).toEqual([
      { names: ['a'] },
      { names: ['b'] },
      { names: ['a'] },
    ]);
    expect(JSON.stringify(a.events)).not.toMatch(/"v"|"w"/);
  });
});

describe('keys another host keeps', () => {
  it('lists the app’s secrets from the CLI, but says why it cannot use or add them', async () => {
    const appKey = crypto.randomBytes(32);
    const value = distinctive();
    // The app: its key from main (safeStorage).
    const app = start(
      appKeySource(
        home.dir,
        { key: null, keychain: true, make: async () => Buffer.from(appKey) },
        'linux',
      ),
    );
    await app.service.add({ name: 'gh', hosts: ['api.github.com'], value }, 'settings');
    expect(app.service.status()).toMatchObject({ kind: 'safe-storage', usable: true });
    stop(app);
    // Main wrote it there (this test stands in for main).
    fs.mkdirSync(path.join(home.dir, SECRETS_DIR), { recursive: true });
    fs.writeFileSync(path.join(home.dir, SECRETS_DIR, SAFE_KEY_FILE), 'wrapped');

    const cli = start();
    expect(cli.service.list().map((s) => s.name)).toEqual(['gh']);
    expect(cli.service.status()).toMatchObject({ kind: 'safe-storage', usable: false });
    const said =
      /The Paddock app keeps these secrets’ key in the system keychain.*add them again here\./;
    expect(cli.service.status().detail + ' ' + cli.service.status().fix).toMatch(said);
    expect(() => cli.service.forSession(['gh'])).toThrow(
      expect.objectContaining({ code: 'SECRETS_LOCKED', message: expect.stringMatching(said) }),
    );
    await expect(
      cli.service.add({ name: 'other', hosts: ['a.com'], value: 'v' }, 'cli'),
    ).rejects.toMatchObject({ code: 'SECRETS_LOCKED' });
    expect(fs.existsSync(keyFile())).toBe(false);

    // Removed here and added again here: the CLI's own key.
    expect(cli.service.remove('gh')).toBe(true);
    await cli.service.add({ name: 'gh', hosts: ['api.github.com'], value }, 'cli');
    expect(cli.service.forSession(['gh'])[0]!.value).toBe(value);
    stop(cli);

    // The app uses the CLI's key file for what the CLI added.
    const again = start(
      appKeySource(
        home.dir,
        { key: Buffer.from(appKey), keychain: true, make: async () => Buffer.from(appKey) },
        'linux',
      ),
    );
    expect(again.service.forSession(['gh'])[0]!.value).toBe(value);
    expect(again.service.status().kind).toBe('file');
  });

  it('in the app without a keychain, refuses to add unless a key file exists', async () => {
    const noKeychain = () =>
      appKeySource(
        home.dir,
        { key: null, keychain: false, make: () => Promise.reject(new Error('not asked')) },
        'linux',
      );
    const app = start(noKeychain());
    expect(app.service.status()).toMatchObject({ usable: false });
    await expect(
      app.service.add({ name: 'x', hosts: ['a.com'], value: 'v' }, 'settings'),
    ).rejects.toMatchObject({
      code: 'SECRETS_LOCKED',
      message: expect.stringContaining('no keychain to protect secrets'),
    });
    stop(app);
    const cli = start();
    await cli.service.add({ name: 'x', hosts: ['a.com'], value: 'from-cli' }, 'cli');
    stop(cli);
    const app2 = start(noKeychain());
    expect(app2.service.status()).toMatchObject({ kind: 'file', usable: true });
    await app2.service.add({ name: 'y', hosts: ['b.com'], value: 'from-app' }, 'settings');
    expect(app2.service.forSession(['x', 'y']).map((s) => s.value)).toEqual([
      'from-cli',
      'from-app',
    ]);
  });
});

describe('the macOS login keychain', () => {
  it('keeps the key through /usr/bin/security, passing it on stdin, never in argv', async () => {
    const calls: { args: string[]; input?: string }[] = [];
    let stored: string | undefined;
    const holder = new MacKeychainHolder(home.dir, (args, input) => {
      calls.push({ args, ...(input !== undefined ? { input } : {}) });
      if (args[0] === '-i') {
        stored = /-w (\S+)\n$/.exec(input ?? '')![1];
        return { status: 0, stdout: '', stderr: '' };
      }
      if (!stored)
        return { status: 44, stdout: '', stderr: 'The specified item could not be found.' };
      return { status: 0, stdout: args.includes('-w') ? `${stored}\n` : 'attributes', stderr: '' };
    });
    expect(holder.exists()).toBe(false);
    const key = await holder.create();
    expect(key).toHaveLength(32);
    expect(holder.read().equals(key)).toBe(true);
    expect(await holder.create()).toEqual(key);
    const b64 = key.toString('base64');
    for (const c of calls) expect(c.args.join(' ')).not.toContain(b64);
    const add = calls.find((c) => c.args[0] === '-i')!;
    expect(add.input).toMatch(/^add-generic-password -s "Paddock secrets" -a [0-9a-f]{32} /);
    expect(add.input).not.toContain(' -U');
    expect(calls.filter((c) => c.args[0] === '-i')).toHaveLength(1);
  });
});
