import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/main/core/events.js';
import { localKeySource } from '../../src/main/core/secrets/key-source.js';
import { SecretsService } from '../../src/main/core/secrets/service.js';
import { Store } from '../../src/main/store/store.js';
import { paddock, repoRoot } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A value no other test data contains, so finding its bytes anywhere is a leak. */
const distinctive = () => `cv-${crypto.randomBytes(18).toString('base64url')}`;

/** Every byte of every file under `dir`. */
function everything(dir: string): Buffer {
  return Buffer.concat(
    fs
      .readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => fs.readFileSync(path.join(e.parentPath, e.name))),
  );
}

/** The value stored under `name`, opened as the CLI's core would. */
function storedValue(dir: string, name: string): string {
  const store = Store.open(dir);
  const service = new SecretsService({ store, events: new EventBus(), keys: localKeySource(dir) });
  try {
    return service.forSession([name])[0]!.value;
  } finally {
    service.dispose();
    store.dispose();
  }
}

describe('paddock secrets', () => {
  let home: ReturnType<typeof tempDir>;
  let env: NodeJS.ProcessEnv;
  /** Every byte the CLI printed in this file's tests. */
  const printed: string[] = [];
  const run = (args: string[], input?: string) => {
    const r = paddock(args, env, input);
    printed.push(r.stdout, r.stderr);
    return r;
  };
  const values: string[] = [];

  beforeAll(() => {
    home = tempDir();
    env = { PADDOCK_HOME: home.dir, ANTHROPIC_API_KEY: '' };
  });
  afterAll(() => {
    // Nothing the CLI printed, and nothing in the data folder (database, WAL, key, logs), holds
    // a value.
    const disk = everything(home.dir);
    for (const v of values) {
      expect(disk.includes(Buffer.from(v))).toBe(false);
      for (const p of printed) expect(p).not.toContain(v);
    }
    home.cleanup();
  });

  it('has `secrets --help` and `secrets add --help`', () => {
    expect(run(['secrets', '--help']).stdout).toMatch(/Secrets the VM never sees/);
    const add = run(['secrets', 'add', '--help']);
    expect(add.status).toBe(0);
    expect(add.stdout).toMatch(/--host <host>/);
    expect(add.stdout).toMatch(/--no-pin/);
  });

  it('adds a secret piped on stdin and lists it without the value', () => {
    const value = distinctive();
    values.push(value);
    const r = run(
      ['secrets', 'add', 'github', '--host', 'API.github.com', '--host', 'uploads.github.com'],
      `${value}\n`,
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /^Added “github”: .*\$GITHUB.*api\.github\.com, uploads\.github\.com\.\n$/,
    );
    // One trailing newline is not part of the value.
    expect(storedValue(home.dir, 'github')).toBe(value);

    const json = run(['secrets', 'list', '--json']);
    expect(json.status).toBe(0);
    const listed = JSON.parse(json.stdout) as {
      secrets: Record<string, unknown>[];
      store: { kind: string; usable: boolean; detail: string };
    };
    expect(listed.secrets).toEqual([
      expect.objectContaining({
        name: 'github',
        envName: 'GITHUB',
        hosts: ['api.github.com', 'uploads.github.com'],
        inBody: false,
        pin: true,
        source: 'cli',
      }),
    ]);
    expect(Object.keys(listed.secrets[0]!).sort()).toEqual(
      ['createdAt', 'envName', 'hosts', 'inBody', 'name', 'pin', 'source', 'updatedAt'].sort(),
    );
    expect(listed.store).toMatchObject({ kind: 'file', usable: true });
    expect(listed.store.detail).toContain('a file only you can read');

    const text = run(['secrets', 'list']);
    expect(text.stdout).toMatch(
      /^github {2}\$GITHUB {2}api\.github\.com uploads\.github\.com {2}added in the CLI\n/,
    );
  });

  it('takes --env, --body, --no-pin and --replace; refuses a duplicate name', () => {
    const v1 = distinctive();
    const v2 = distinctive();
    values.push(v1, v2);
    expect(
      run(
        [
          'secrets',
          'add',
          'ci',
          '--host',
          'ci.example.com',
          '--env',
          'CI_TOKEN',
          '--body',
          '--no-pin',
        ],
        v1,
      ).status,
    ).toBe(0);
    const dup = run(['secrets', 'add', 'ci', '--host', 'ci.example.com'], v2);
    expect(dup.status).toBe(1);
    expect(dup.stderr).toMatch(/already a secret named “ci”.*--replace/);
    expect(storedValue(home.dir, 'ci')).toBe(v1);
    expect(run(['secrets', 'add', 'ci', '--host', 'ci.example.com', '--replace'], v2).status).toBe(
      0,
    );
    expect(storedValue(home.dir, 'ci')).toBe(v2);
    const { secrets } = JSON.parse(run(['secrets', 'list', '--json']).stdout) as {
      secrets: { name: string; envName: string; inBody: boolean; pin: boolean }[];
    };
    // Replacing keeps the variable the secret had (tasks use it by that name); the rest is new.
    expect(secrets.find((s) => s.name === 'ci')).toMatchObject({
      envName: 'CI_TOKEN',
      inBody: false,
      pin: true,
    });
  });

  it('refuses a value given as an argument, without repeating it', () => {
    const value = distinctive();
    values.push(value);
    const r = run(['secrets', 'add', 'leak', '--host', 'a.example.com', value], '');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /never taken from the command line.*pipe it in.*or type it at the prompt/,
    );
    expect(r.stderr).not.toContain(value);
    const { secrets } = JSON.parse(run(['secrets', 'list', '--json']).stdout) as {
      secrets: { name: string }[];
    };
    expect(secrets.map((s) => s.name)).not.toContain('leak');
  });

  it('refuses an empty value, a bad host and a missing --host with sentences', () => {
    expect(run(['secrets', 'add', 'empty', '--host', 'a.example.com'], '\n').stderr).toMatch(
      /The secret has no value\./,
    );
    expect(run(['secrets', 'add', 'wild', '--host', '*'], 'x').stderr).toMatch(/allowlist entry/);
    expect(run(['secrets', 'add', 'nohost'], 'x').stderr).toMatch(/Say which hosts/);
  });

  it('removes a secret, and says when there is none', () => {
    const value = distinctive();
    values.push(value);
    run(['secrets', 'add', 'gone', '--host', 'a.example.com'], value);
    const r = run(['secrets', 'remove', 'gone']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('Removed “gone”.\n');
    const again = run(['secrets', 'remove', 'gone']);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/There is no secret named “gone”/);
  });

  it('doctor says how secrets are kept', () => {
    const r = run(['doctor', '--json']);
    const { checks } = JSON.parse(r.stdout) as {
      checks: { id: string; status: string; detail: string }[];
    };
    expect(checks.find((c) => c.id === 'secrets')).toEqual({
      id: 'secrets',
      label: 'Secrets',
      status: 'ok',
      detail: `Secrets are encrypted with a key in a file only you can read (${path.join(home.dir, 'secrets', 'vault.key')}); this computer has no keychain Paddock can use.`,
    });
  });

  it('says what is wrong with a key file others can read, and how to fix it', () => {
    const key = path.join(home.dir, 'secrets', 'vault.key');
    fs.chmodSync(key, 0o644);
    try {
      const { store } = JSON.parse(run(['secrets', 'list', '--json']).stdout) as {
        store: { usable: boolean; detail: string };
      };
      expect(store.usable).toBe(false);
      expect(store.detail).toBe(
        `The secrets key ${key} can be read or changed by other users (mode 0644), so Paddock will not use it. Run: chmod 600 '${key}'`,
      );
      const doctor = run(['doctor']);
      expect(doctor.stdout).toContain(
        `! Secrets: The secrets key ${key} can be read or changed by other users`,
      );
      expect(doctor.stdout).toContain(`fix: Run: chmod 600 '${key}'`);
      const add = run(['secrets', 'add', 'more', '--host', 'a.example.com'], 'x');
      expect(add.status).toBe(1);
      expect(add.stderr).toContain('chmod 600');
    } finally {
      fs.chmodSync(key, 0o600);
    }
  });

  it('asks on a terminal without echoing what is typed', async () => {
    const value = distinctive();
    values.push(value);
    const cmd = [
      process.execPath,
      '--import',
      'tsx',
      path.join(repoRoot, 'src/main/cli/entry.ts'),
      'secrets',
      'add',
      'typed',
      '--host',
      'typed.example.com',
    ].join(' ');
    // `script` gives the command a pseudo-terminal; its output is everything the terminal showed.
    const proc = spawn('script', ['-qec', cmd, '/dev/null'], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let shown = '';
    proc.stdout.on('data', (d: Buffer) => {
      shown += d.toString();
      // Typed only once the prompt is up (before raw mode the terminal itself would echo).
      if (shown.includes('(not shown): ') && proc.stdin.writable) {
        proc.stdin.write(`${value}\r`);
        proc.stdin.end();
      }
    });
    const status = await new Promise<number | null>((resolve) => proc.on('close', resolve));
    printed.push(shown);
    expect(shown).toContain('Value of typed (not shown): ');
    expect(shown).toMatch(/Added “typed”/);
    expect(shown).not.toContain(value);
    expect(status).toBe(0);
    expect(storedValue(home.dir, 'typed')).toBe(value);
  }, 60_000);
});
