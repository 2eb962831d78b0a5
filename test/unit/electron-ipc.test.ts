import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Core } from '../../src/main/core/core.js';
import { dispatch } from '../../src/main/core/dispatch.js';
import {
  DROP_FOLDER_CHANNEL,
  forwardEvents,
  registerDropFolder,
  registerIpc,
  type HostHandlers,
} from '../../src/main/ipc/router.js';
import { channels, hostChannels } from '../../src/shared/api.js';
import type { Grant } from '../../src/shared/app-contract.js';
import { err, ok, PaddockError, type Result } from '../../src/shared/result.js';
import * as fake from '../helpers/fake-electron.js';
import { tempDir } from '../helpers/temp-dir.js';

vi.mock('electron', () => import('../helpers/fake-electron.js'));

let home: ReturnType<typeof tempDir>;
let core: Core;

beforeEach(() => {
  fake.resetFake();
  home = tempDir();
  // The real core on a real SQLite file; only Electron is faked.
  core = new Core({ dataDir: path.join(home.dir, 'data'), host: 'electron', env: {} });
});

afterEach(() => {
  core.dispose();
  home.cleanup();
});

/**
 * What the core bridge offers the router, over a real in-process Core (the bridge itself, with a
 * real core process, is tested in electron-core-process.test.ts).
 */
function inProcess(c: Core) {
  return {
    call: (channel: string, raw: unknown) => dispatch(c.handlers, channel, raw),
    grantFolder: async (p: string, readOnly: boolean): Promise<Result<Grant>> => {
      try {
        return ok(c.grantFolder(p, readOnly));
      } catch (e) {
        if (e instanceof PaddockError) return err(e.code, e.message);
        throw e;
      }
    },
    onEvent: c.events.onAny.bind(c.events),
  };
}
const host: HostHandlers = { 'core:restart': () => ({ restarted: true }) };

const trustedEvent = { who: 'our window' };
const isTrusted = (event: unknown) => event === trustedEvent;

async function invoke(channel: string, event: unknown, raw: unknown): Promise<Result<unknown>> {
  const handler = fake.ipcHandlers.get(channel);
  if (!handler) throw new Error(`no handler for ${channel}`);
  return (await handler(event, raw)) as Result<unknown>;
}

describe('registerIpc', () => {
  it('registers one handler per contract and host channel and removes them all again', () => {
    const unregister = registerIpc(inProcess(core), isTrusted, host);
    expect([...fake.ipcHandlers.keys()].sort()).toEqual([...channels, ...hostChannels].sort());
    unregister();
    expect(fake.ipcHandlers.size).toBe(0);
  });

  it('answers FORBIDDEN to an untrusted sender and never runs the handler', async () => {
    registerIpc(inProcess(core), isTrusted, host);
    const spy = vi.spyOn(core.handlers, 'settings:update');
    const before = core.store.settings.get();
    const r = await invoke('settings:update', { who: 'an iframe' }, { vmCpus: 7 });
    expect(r).toEqual({
      ok: false,
      error: { code: 'FORBIDDEN', message: expect.stringMatching(/Paddock window/) },
    });
    expect(spy).not.toHaveBeenCalled();
    expect(core.store.settings.get()).toEqual(before);
  });

  it('asks the trust check about the exact event it got', async () => {
    const seen: unknown[] = [];
    registerIpc(inProcess(core), (e) => (seen.push(e), false), host);
    const event = { sender: 'x' };
    await invoke('app:info', event, {});
    expect(seen).toEqual([event]);
  });

  it('answers BAD_REQUEST to a malformed request, through the schema, without the handler', async () => {
    registerIpc(inProcess(core), isTrusted, host);
    const spy = vi.spyOn(core.handlers, 'settings:update');
    for (const raw of [{ vmCpus: 'lots' }, { vmCpus: 4, extra: true }, 'settings', [1]]) {
      const r = await invoke('settings:update', trustedEvent, raw);
      expect(r.ok, JSON.stringify(raw)).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('BAD_REQUEST');
    }
    expect(spy).not.toHaveBeenCalled();
  });

  it('dispatches a good request from our window to the core', async () => {
    registerIpc(inProcess(core), isTrusted, host);
    const r = await invoke('settings:update', trustedEvent, { vmCpus: 3 });
    expect(r.ok).toBe(true);
    expect(core.store.settings.get().vmCpus).toBe(3);
    const info = await invoke('app:info', trustedEvent, undefined);
    expect(info).toMatchObject({ ok: true, value: { host: 'electron' } });
  });

  it('keeps the Electron rule that typed paths cannot grant a folder', async () => {
    const c = new Core({
      dataDir: path.join(home.dir, 'data2'),
      host: 'electron',
      env: {},
      typedPaths: false,
    });
    try {
      registerIpc(inProcess(c), isTrusted, host);
      const r = await invoke('grants:add', trustedEvent, { path: home.dir, readOnly: false });
      expect(r).toMatchObject({ ok: false, error: { code: 'USE_PICKER' } });
      expect(c.store.grants.list()).toEqual([]);
    } finally {
      c.dispose();
    }
  });
});

describe('the host channels', () => {
  it('answers core:restart in main, after the same sender check, and checks its schema', async () => {
    const restart = vi.fn(() => ({ restarted: true }));
    registerIpc(inProcess(core), isTrusted, { 'core:restart': restart });
    expect(await invoke('core:restart', { who: 'an iframe' }, {})).toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN' },
    });
    expect(await invoke('core:restart', trustedEvent, { now: true })).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST' },
    });
    expect(restart).not.toHaveBeenCalled();
    expect(await invoke('core:restart', trustedEvent, undefined)).toEqual({
      ok: true,
      value: { restarted: true },
    });
    expect(restart).toHaveBeenCalledTimes(1);
  });
});

describe('the drop-folder channel', () => {
  it('is the channel name the preload uses', () => {
    const preload = fs.readFileSync(path.resolve('src/preload/index.ts'), 'utf8');
    expect(preload).toContain(`import { DROP_FOLDER_CHANNEL } from '../shared/ipc-channels.js';`);
  });

  it('refuses an untrusted sender without granting anything', async () => {
    registerDropFolder(inProcess(core), isTrusted);
    const folder = fs.mkdtempSync(path.join(home.dir, 'dropped-'));
    const spy = vi.spyOn(core, 'grantFolder');
    const r = await invoke(DROP_FOLDER_CHANNEL, { who: 'an iframe' }, { path: folder });
    expect(r).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(spy).not.toHaveBeenCalled();
    expect(core.store.grants.list()).toEqual([]);
  });

  it('refuses a malformed payload', async () => {
    registerDropFolder(inProcess(core), isTrusted);
    const spy = vi.spyOn(core, 'grantFolder');
    for (const raw of [
      undefined,
      null,
      '/tmp',
      { path: '' },
      { path: 42 },
      { path: '/tmp', readOnly: false },
      { path: 'x'.repeat(4097) },
    ]) {
      const r = await invoke(DROP_FOLDER_CHANNEL, trustedEvent, raw);
      expect(r, JSON.stringify(raw)?.slice(0, 40)).toMatchObject({
        ok: false,
        error: { code: 'BAD_REQUEST' },
      });
    }
    expect(spy).not.toHaveBeenCalled();
  });

  it('grants a dropped folder from our window, read-write, and reuses the grant', async () => {
    registerDropFolder(inProcess(core), isTrusted);
    const folder = fs.mkdtempSync(path.join(home.dir, 'dropped-'));
    const r = await invoke(DROP_FOLDER_CHANNEL, trustedEvent, { path: folder });
    expect(r).toMatchObject({ ok: true, value: { hostPath: folder, readOnly: false } });
    const again = await invoke(DROP_FOLDER_CHANNEL, trustedEvent, { path: folder });
    expect(again).toEqual(r);
    expect(core.store.grants.list()).toHaveLength(1);
  });

  it('unregisters', () => {
    const unregister = registerDropFolder(inProcess(core), isTrusted);
    unregister();
    expect(fake.ipcHandlers.has(DROP_FOLDER_CHANNEL)).toBe(false);
  });
});

describe('forwardEvents', () => {
  it('sends contract events to every live window and stops when disposed', () => {
    const win = new fake.BrowserWindow({});
    const stop = forwardEvents(inProcess(core), () => [win as never]);
    const settings = core.store.settings.get();
    core.events.emit('settings:changed', settings);
    expect(fake.calls).toContainEqual(['webContents.send', 'settings:changed', settings]);
    stop();
    fake.calls.length = 0;
    core.events.emit('settings:changed', settings);
    expect(fake.calls).toEqual([]);
  });
});
