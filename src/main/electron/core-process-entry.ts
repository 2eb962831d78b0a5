// The core process: Electron main starts this file with utilityProcess.fork (tests: with
// child_process.fork). It builds the one core and speaks the contract over the process's message
// channel. It must not import `electron`: a utility process has no Electron main-process modules.
import type { AutomationRun } from '../../shared/automations-contract.js';
import { err, ok, PaddockError, type Result } from '../../shared/result.js';
import type { SecretStore } from '../core/api-keys.js';
import { createCore, type Core } from '../core/core.js';
import { dispatch } from '../core/dispatch.js';
import { appKeySource } from '../core/secrets/key-source.js';
import { dataDir } from '../platform/app-paths.js';
import { noKeychain, type FromCore, type HostOp, type ToCore } from './core-protocol.js';

/** Electron's `process.parentPort` in a utility process (absent under plain Node). */
interface ParentPort {
  on(event: 'message', listener: (e: { data: unknown }) => void): void;
  postMessage(message: unknown): void;
}

/** The channel to main: Electron's parentPort, or Node's IPC channel under child_process.fork. */
function connect(): { send(m: FromCore): void; onMessage(fn: (m: ToCore) => void): void } {
  const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort;
  if (parentPort) {
    return {
      send: (m) => parentPort.postMessage(m),
      onMessage: (fn) => parentPort.on('message', (e) => fn(e.data as ToCore)),
    };
  }
  const send = process.send?.bind(process);
  if (!send) throw new Error('The core process was started without a channel to its parent.');
  // Under plain Node the parent going away closes the channel: close the core as on shutdown.
  process.on('disconnect', () => void shutdown());
  return {
    send: (m) => void send(m),
    onMessage: (fn) => process.on('message', (m) => fn(m as ToCore)),
  };
}

const port = connect();
let core: Core | undefined;
let closing = false;

let nextHostId = 1;
const pendingHost = new Map<number, (r: Result<unknown>) => void>();

/** Asks main for what only main can do (the picker, the file manager, the keychain). */
function askMain(op: HostOp): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const id = nextHostId++;
    pendingHost.set(id, (r) =>
      r.ok ? resolve(r.value) : reject(new PaddockError(r.error.code, r.error.message)),
    );
    port.send({ type: 'host', id, ...op });
  });
}

/**
 * The key as main decrypted it at start. Sync, as the core expects: a new key is used at once and
 * main is asked to encrypt it (or delete it) in the background. SECURITY: the key is only ever
 * written to disk by main, encrypted with safeStorage.
 */
class MainSecretStore implements SecretStore {
  readonly persistent = true;
  constructor(
    private value: string | null,
    private readonly keychain: boolean,
  ) {}
  get(): string | null {
    return this.value;
  }
  set(secret: string): void {
    if (!this.keychain) throw noKeychain();
    this.value = secret;
    askMain({ op: 'secret:set', secret }).catch((e: Error) =>
      console.error('[paddock] main could not keep the API key:', e.message),
    );
  }
  clear(): void {
    this.value = null;
    askMain({ op: 'secret:clear' }).catch((e: Error) =>
      console.error('[paddock] main could not delete the API key:', e.message),
    );
  }
}

function start(init: Extract<ToCore, { type: 'init' }>): void {
  if (core) return;
  try {
    const home = dataDir();
    core = createCore({
      dataDir: home,
      host: 'electron',
      typedPaths: false,
      secrets: new MainSecretStore(init.secret, init.keychain),
      // SECURITY: the vault key as main unwrapped it; this process never writes it anywhere.
      vaultKeys: appKeySource(home, {
        key: init.vaultKey ? Buffer.from(init.vaultKey) : null,
        keychain: init.vaultKeychain,
        make: async () => Buffer.from((await askMain({ op: 'vault-key:create' })) as Uint8Array),
      }),
      pickFolder: async () => (await askMain({ op: 'pickFolder' })) as string | null,
      openPath: async (p) => void (await askMain({ op: 'openPath', path: p })),
    });
  } catch (e) {
    console.error('[paddock] the core could not start:', e);
    process.exit(1);
  }
  const c = core;
  c.events.onAny((event, payload) => {
    let automationName: string | undefined;
    if (event === 'automations:run-changed') {
      automationName = c.store.automations.get((payload as AutomationRun).automationId)?.name;
    }
    port.send({ type: 'event', event, payload, ...(automationName ? { automationName } : {}) });
  });
  port.send({ type: 'ready' });
}

function grant(c: Core, path: string, readOnly: boolean): Result<unknown> {
  try {
    return ok(c.grantFolder(path, readOnly));
  } catch (e) {
    if (e instanceof PaddockError) return err(e.code, e.message);
    console.error('[paddock] granting a folder failed:', e);
    return err('INTERNAL', 'Paddock could not grant that folder; see the logs folder.');
  }
}

async function shutdown(): Promise<void> {
  if (closing) return;
  closing = true;
  try {
    await core?.close();
  } catch (e) {
    console.error('[paddock] closing the core failed:', e);
  }
  process.exit(0);
}

const notReady = err(
  'CORE_STARTING',
  'Paddock’s engine is still starting; try again in a moment.',
) as Result<unknown>;

port.onMessage((msg) => {
  switch (msg.type) {
    case 'init':
      return start(msg);
    case 'request':
      if (!core || closing) return port.send({ type: 'reply', id: msg.id, result: notReady });
      void dispatch(core.handlers, msg.channel, msg.raw).then((result) =>
        port.send({ type: 'reply', id: msg.id, result }),
      );
      return;
    case 'grant':
      return port.send({
        type: 'reply',
        id: msg.id,
        result: core && !closing ? grant(core, msg.path, msg.readOnly) : notReady,
      });
    case 'power':
      core?.power.emit(msg.event);
      return;
    case 'host-reply':
      pendingHost.get(msg.id)?.(msg.result);
      pendingHost.delete(msg.id);
      return;
    case 'shutdown':
      return void shutdown();
  }
});
port.send({ type: 'hello' });
