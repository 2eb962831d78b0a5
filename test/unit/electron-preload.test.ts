import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { channels, eventNames, hostChannels } from '../../src/shared/api.js';
import * as fake from '../helpers/fake-electron.js';

vi.mock('electron', () => import('../helpers/fake-electron.js'));

type Api = Record<string, (...args: unknown[]) => unknown>;
let api: Api;

beforeAll(async () => {
  fake.resetFake();
  // The preload runs on import, as Electron runs it before the page.
  await import('../../src/preload/index.js');
  api = fake.contextBridge.exposed.get('paddock') as Api;
});

beforeEach(() => {
  fake.calls.length = 0;
  fake.config.droppedPath = '';
});

describe('the preload', () => {
  it('exposes exactly window.paddock and nothing else', () => {
    expect([...fake.contextBridge.exposed.keys()]).toEqual(['paddock']);
  });

  it('gives one function per contract and host channel, plus on and dropFolder, and nothing generic', () => {
    expect(Object.keys(api).sort()).toEqual(
      [...channels, ...hostChannels, 'dropFolder', 'on'].sort(),
    );
    for (const key of Object.keys(api)) expect(typeof api[key], key).toBe('function');
    for (const generic of ['send', 'invoke', 'sendSync', 'ipcRenderer', 'readFile', 'require'])
      expect(api).not.toHaveProperty(generic);
  });

  it('sends each channel’s request on that channel only', async () => {
    await api['tasks:get']!({ id: 't1' });
    await api['app:info']!();
    expect(fake.calls).toEqual([
      ['ipcRenderer.invoke', 'tasks:get', { id: 't1' }],
      ['ipcRenderer.invoke', 'app:info', {}],
    ]);
  });

  it('throws on subscribing to an event that is not in the contract', () => {
    for (const bad of ['tasks:get', 'paddock:drop-folder', 'ELECTRON_BROWSER_WINDOW_ALERT', ''])
      expect(() => api.on!(bad, () => undefined), bad).toThrow(/Unknown event/);
    expect(fake.ipcRenderer.listeners.size).toBe(0);
  });

  it('hands listeners only the payload, never the IPC event, and unsubscribes', () => {
    const event = eventNames[0]!;
    const got: unknown[] = [];
    const off = api.on!(event, (...args: unknown[]) => got.push(args)) as () => void;
    const wrapped = fake.ipcRenderer.only(event) as (e: unknown, p: unknown) => void;
    wrapped({ sender: 'the IpcRendererEvent' }, { hello: 1 });
    expect(got).toEqual([[{ hello: 1 }]]);
    off();
    expect(fake.calls).toContainEqual(['off', event, wrapped]);
  });

  it('dropFolder sends the path Electron resolved for the dropped File, nothing from the page', async () => {
    fake.config.droppedPath = '/home/me/Projects';
    const file = { name: 'Projects', path: '/etc' };
    await api.dropFolder!(file, { path: '/etc' });
    expect(fake.calls).toEqual([
      ['webUtils.getPathForFile', file],
      ['ipcRenderer.invoke', 'paddock:drop-folder', { path: '/home/me/Projects' }],
    ]);
  });

  it('dropFolder refuses a File with no path (not from the file manager) without calling main', async () => {
    fake.config.droppedPath = '';
    const r = await api.dropFolder!({ name: 'made-up.txt' });
    expect(r).toMatchObject({ ok: false, error: { code: 'BAD_DROP' } });
    expect(fake.calls.filter((c) => c[0] === 'ipcRenderer.invoke')).toEqual([]);
  });
});
