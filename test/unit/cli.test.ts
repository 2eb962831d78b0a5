import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA_VERSION } from '../../src/main/store/migrations/index.js';
import { Store } from '../../src/main/store/store.js';
import { paddock } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('the paddock CLI', () => {
  let home: { dir: string; cleanup(): void };
  beforeAll(() => {
    home = tempDir();
  });
  afterAll(() => home.cleanup());

  it.each([
    ['doctor', /Check Node/],
    ['image', /guest VM image/],
    ['exec', /--folder <path\[:ro\|:direct\|:review\]>/],
    ['changes', /apply/],
    ['run', /--approve <mode>/],
    ['automations', /Scheduled tasks/],
    ['daemon', /scheduler without the GUI/],
    ['serve', /--port <n>/],
  ])('has `%s --help`', (cmd, pattern) => {
    const r = paddock([cmd, '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(pattern);
  });

  it('doctor reports node, data folder, schema, qemu, virtualisation and the API key without its value', () => {
    Store.open(home.dir).dispose();
    const r = paddock(['doctor', '--json'], {
      PADDOCK_HOME: home.dir,
      ANTHROPIC_API_KEY: 'sk-ant-secret-value',
    });
    const { checks } = JSON.parse(r.stdout) as {
      checks: { id: string; status: string; detail: string; fix?: string }[];
    };
    expect(checks.map((c) => c.id)).toEqual(
      expect.arrayContaining(['node', 'data-dir', 'schema', 'qemu', 'accel', 'api-key']),
    );
    expect(checks.find((c) => c.id === 'data-dir')?.detail).toBe(home.dir);
    expect(checks.find((c) => c.id === 'schema')?.detail).toContain(
      `Schema version ${LATEST_SCHEMA_VERSION}`,
    );
    expect(checks.find((c) => c.id === 'api-key')?.status).toBe('ok');
    expect(r.stdout).not.toContain('sk-ant-secret-value');
  });

  it('doctor names the fix for a missing API key', () => {
    const env = { PADDOCK_HOME: home.dir, ANTHROPIC_API_KEY: '' };
    const r = paddock(['doctor'], env);
    expect(r.stdout).toMatch(/API key: No API key is set\.\n\s+fix: export ANTHROPIC_API_KEY=/);
  });

  it('rejects a bad port with a sentence', () => {
    const r = paddock(['serve', '--port', 'abc'], { PADDOCK_HOME: home.dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--port must be a whole number from 0 to 65535, not abc/);
  });
});
