import { ESLint } from 'eslint';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const fixtures = path.join(root, 'test/fixtures/lint/src');

async function lint(rel: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: root, ignore: false });
  const [result] = await eslint.lintFiles([path.join(fixtures, rel)]);
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'paddock/layering')
    .map((m) => m.message);
}

describe('the layering lint rule', () => {
  it('rejects an import against the direction (store → agent)', async () => {
    const messages = await lint('main/store/imports-agent.ts');
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/store must not import agent/);
  });

  it('rejects electron outside the Electron host', async () => {
    expect(await lint('shared/imports-electron.ts')).toEqual([
      expect.stringMatching(/Only the Electron host .* may import 'electron'/),
    ]);
  });

  it('keeps the renderer to src/shared', async () => {
    expect(await lint('renderer/imports-store.ts')).toEqual([
      expect.stringMatching(/renderer may import only src\/shared/),
    ]);
  });

  it('keeps SQL in the store', async () => {
    expect(await lint('main/vm/imports-sqlite.ts')).toEqual([
      expect.stringMatching(/All SQL lives/),
    ]);
  });

  it('ranks the core above automations and below every host', async () => {
    expect(await lint('main/core/imports-cli.ts')).toEqual([
      expect.stringMatching(/core must not import host/),
    ]);
    expect(await lint('main/automations/imports-core.ts')).toEqual([
      expect.stringMatching(/automations must not import core/),
    ]);
  });

  it('keeps hosts from importing each other', async () => {
    expect(await lint('main/cli/imports-electron-host.ts')).toEqual([
      expect.stringMatching(
        /Hosts never import each other: the cli host must not import the electron host/,
      ),
    ]);
  });

  it('allows a host to import the layers below it', async () => {
    expect(await lint('main/cli/imports-down.ts')).toEqual([]);
  });
});
