import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { repoRoot } from './cli.js';

export interface Served {
  url: string;
  lines: string[];
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts the built `paddock serve --port 0` through npx, as the README says, and waits for its line. */
export async function startServe(env: NodeJS.ProcessEnv): Promise<Served> {
  const proc = spawn('npx', ['--no-install', 'paddock', 'serve', '--port', '0'], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so stop() ends `paddock serve` too, not only npx (which does not
    // pass SIGTERM on, leaving the server and its VMs running).
    detached: true,
  });
  const lines: string[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const rl = readline.createInterface({ input: proc.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 30_000);
    rl.on('line', (line) => {
      lines.push(line);
      const m = /^Paddock is serving at (http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.on('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  return {
    url,
    lines,
    proc,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.on('exit', () => resolve());
        try {
          process.kill(-proc.pid!, 'SIGTERM');
        } catch {
          proc.kill('SIGTERM');
        }
      }),
  };
}

/** A client of a served API over its WebSocket, as the renderer speaks it (token as subprotocol). */
export interface ServedApi {
  call<T = unknown>(channel: string, req?: unknown): Promise<T>;
  close(): void;
}

/** Connects to `paddock serve`'s API at `url` (the address it printed, with its token). */
export async function connectApi(url: string): Promise<ServedApi> {
  const { default: WebSocket } = await import('ws');
  const u = new URL(url);
  const token = u.searchParams.get('token')!;
  const ws = new WebSocket(`ws://${u.host}/api`, ['paddock.v1', `paddock.token.${token}`]);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let next = 0;
  const waiting = new Map<number, (m: { ok: boolean; value?: unknown; error?: unknown }) => void>();
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as { id?: number; result?: never; event?: string };
    if (typeof m.id === 'number' && m.result) waiting.get(m.id)?.(m.result);
  });
  return {
    call: <T>(channel: string, req: unknown = {}) =>
      new Promise<T>((resolve, reject) => {
        const id = ++next;
        waiting.set(id, (r) => {
          waiting.delete(id);
          if (r.ok) resolve(r.value as T);
          else reject(new Error(`${channel}: ${JSON.stringify(r.error)}`));
        });
        ws.send(JSON.stringify({ id, channel, req }));
      }),
    close: () => ws.close(),
  };
}
