import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Result } from '../../src/shared/result.js';
import type * as FakeElectron from '../helpers/fake-electron.js';
import { tempDir } from '../helpers/temp-dir.js';

vi.mock('electron', () => import('../helpers/fake-electron.js'));

/**
 * The composition root (src/main/index.ts) runs on import, as Electron runs it. Each test loads
 * a fresh copy of it and of the fake, so the single-instance branch and the window wiring can be
 * seen from the outside without changing index.ts.
 */
type Fake = typeof FakeElectron;

async function boot(setup: (fake: Fake) => void): Promise<Fake> {
  vi.resetModules();
  // The same (mocked) instance index.ts is about to get.
  const fake = (await import('electron')) as unknown as Fake;
  fake.resetFake();
  setup(fake);
  await import('../../src/main/index.js');
  return fake;
}

/** src/main/index.ts resolves the bundle from its own folder: here, src/. */
const APP_URL = pathToFileURL(path.resolve('src/renderer/index.html')).href;

const savedHome = process.env.PADDOCK_HOME;
let home: ReturnType<typeof tempDir>;
beforeEach(() => {
  home = tempDir();
  delete process.env.PADDOCK_HOME;
});
afterEach(() => {
  if (savedHome === undefined) delete process.env.PADDOCK_HOME;
  else process.env.PADDOCK_HOME = savedHome;
  home.cleanup();
});

describe('single instance', () => {
  it('a second copy of the app quits at once and sets nothing up', async () => {
    const fake = await boot((f) => (f.config.singleInstanceLock = false));
    expect(fake.calls).toEqual([['app.quit']]);
    expect(fake.app.listeners.size).toBe(0);
    expect(fake.windows).toEqual([]);
    expect(fake.ipcHandlers.size).toBe(0);
  });

  it('the first copy brings its window forward when a second one starts', async () => {
    const fake = await boot((f) => (f.config.windowMinimized = true));
    // Hardened before anything else: every web contents gets the rules.
    expect(fake.app.listeners.has('web-contents-created')).toBe(true);
    const secondInstance = fake.app.only('second-instance') as () => void;
    secondInstance(); // no window yet: nothing to do, nothing thrown
    expect(fake.calls).toEqual([]);

    (fake.app.only('activate') as () => void)(); // macOS dock click with no window opens one
    expect(fake.windows).toHaveLength(1);
    secondInstance();
    expect(
      fake.calls.filter((c) => String(c[0]).startsWith('win.') && c[0] !== 'win.loadFile'),
    ).toEqual([['win.restore'], ['win.show'], ['win.focus']]);
  });
});

describe('once ready', () => {
  async function ready(setup: (fake: Fake) => void = () => undefined): Promise<Fake> {
    const fake = await boot((f) => {
      f.config.whenReady = () => Promise.resolve();
      f.config.userData = path.join(home.dir, 'userData');
      setup(f);
    });
    await vi.waitFor(() => expect(fake.windows).toHaveLength(1));
    return fake;
  }

  /** Quits the way the app does, so the real core closes. */
  async function quit(fake: Fake) {
    const event = { preventDefault: vi.fn() };
    (fake.app.only('will-quit') as (e: unknown) => void)(event);
    expect(event.preventDefault).toHaveBeenCalled();
    await vi.waitFor(() => expect(fake.calls).toContainEqual(['app.quit']));
  }

  async function call(fake: Fake, channel: string, event: unknown, raw: unknown) {
    return (await fake.ipcHandlers.get(channel)!(event, raw)) as Result<unknown>;
  }

  it('answers IPC only from the top frame of our own window showing our own page', async () => {
    const fake = await ready();
    try {
      const win = fake.windows[0]!;
      const topFrame = { url: APP_URL, parent: null };
      const ours = { sender: win.webContents, senderFrame: topFrame };
      expect(await call(fake, 'app:info', ours, {})).toMatchObject({
        ok: true,
        value: { host: 'electron', dataDir: path.join(home.dir, 'userData') },
      });
      expect(
        await call(
          fake,
          'app:info',
          { ...ours, senderFrame: { url: `${APP_URL}#/x`, parent: null } },
          {},
        ),
      ).toMatchObject({ ok: true });

      const untrusted = {
        'another web contents': { sender: new fake.FakeWebContents(), senderFrame: topFrame },
        'a subframe': { sender: win.webContents, senderFrame: { url: APP_URL, parent: topFrame } },
        'a foreign page': {
          sender: win.webContents,
          senderFrame: { url: 'https://evil.example/', parent: null },
        },
        'a frame already gone': { sender: win.webContents, senderFrame: null },
      };
      for (const [who, event] of Object.entries(untrusted)) {
        for (const channel of ['app:info', 'core:restart', 'paddock:drop-folder']) {
          const r = await call(
            fake,
            channel,
            event,
            channel === 'paddock:drop-folder' ? { path: home.dir } : {},
          );
          expect(r, `${who} on ${channel}`).toMatchObject({
            ok: false,
            error: { code: 'FORBIDDEN' },
          });
        }
      }
    } finally {
      await quit(fake);
    }
  });

  it('opens one hardened window and wires the menu, power events and notifications', async () => {
    const fake = await ready();
    try {
      const prefs = fake.windows[0]!.options.webPreferences as Record<string, unknown>;
      expect(prefs).toMatchObject({
        sandbox: true,
        contextIsolation: true,
        nodeIntegration: false,
      });
      expect(fake.calls).toContainEqual(['win.loadFile', path.resolve('src/renderer/index.html')]);
      expect(fake.calls.some((c) => c[0] === 'Menu.setApplicationMenu')).toBe(true);
      expect([...fake.powerMonitor.listeners.keys()].sort()).toEqual(['resume', 'suspend']);
      // The drop channel and every contract channel are registered.
      expect(fake.ipcHandlers.has('paddock:drop-folder')).toBe(true);
      expect(fake.ipcHandlers.has('tasks:create')).toBe(true);
    } finally {
      await quit(fake);
    }
  });

  it('runs the core in its own process and grants dropped or picked folders through it', async () => {
    const folder = fs.mkdtempSync(path.join(home.dir, 'picked-'));
    const fake = await ready((f) => (f.config.pickedFolder = folder));
    try {
      // The core runs in the child the bridge forked, from the entry next to index.ts.
      expect(fake.calls).toContainEqual([
        'utilityProcess.fork',
        path.resolve('src/main/electron/core-process-entry.ts'),
      ]);
      expect(fake.utilityProcesses).toHaveLength(1);
      expect(fake.utilityProcesses[0]!.pid).not.toBe(process.pid);

      const win = fake.windows[0]!;
      const ours = { sender: win.webContents, senderFrame: { url: APP_URL, parent: null } };
      expect(await call(fake, 'paddock:drop-folder', ours, { path: folder })).toMatchObject({
        ok: true,
        value: { hostPath: fs.realpathSync(folder), readOnly: false },
      });
      // A core that runs is not restarted by the window's button.
      expect(await call(fake, 'core:restart', ours, {})).toEqual({
        ok: true,
        value: { restarted: false },
      });

      // The menu's Open Folder…: the OS picker, a grant in the core, then the page is told.
      const menu = fake.calls.find((c) => c[0] === 'Menu.setApplicationMenu')![1] as {
        template: { label?: string; submenu?: { label?: string; click?: () => void }[] }[];
      };
      const file = menu.template.find((m) => m.label === 'File')!;
      file.submenu!.find((i) => i.label === 'Open Folder…')!.click!();
      await vi.waitFor(() =>
        expect(fake.calls).toContainEqual([
          'webContents.send',
          'ui:command',
          {
            command: 'new-task',
            grant: expect.objectContaining({ hostPath: fs.realpathSync(folder) }),
          },
        ]),
      );
    } finally {
      await quit(fake);
    }
    // Quitting closed the core process cleanly: not a crash.
    expect(fake.calls.filter((c) => c[1] === 'core:status')).toEqual([]);
  });

  it('keeps the data folder under Electron’s userData unless PADDOCK_HOME says otherwise', async () => {
    const fake = await ready();
    try {
      expect(process.env.PADDOCK_HOME).toBe(path.join(home.dir, 'userData'));
    } finally {
      await quit(fake);
    }
  });
});
