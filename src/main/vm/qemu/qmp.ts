import { connect, type Socket } from 'node:net';

/** A QMP reply carried an error. */
export class QmpError extends Error {
  readonly code = 'QMP_ERROR';
  constructor(
    readonly qmpClass: string,
    message: string,
  ) {
    super(`QMP ${qmpClass}: ${message}`);
    this.name = 'QmpError';
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * A minimal QMP client over QEMU's monitor socket: negotiates capabilities, sends commands one
 * JSON object at a time with an id, and matches replies. Events are passed to `onEvent`.
 */
export class QmpClient {
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closedError: Error | null = null;
  onEvent: ((event: string, data: unknown) => void) | null = null;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closedError = new Error('QMP connection closed');
      for (const p of this.pending.values()) p.reject(this.closedError);
      this.pending.clear();
    });
  }

  /** Connects, waits for the greeting and enables commands. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path);
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error('QMP connect timed out'));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
    const client = new QmpClient(sock);
    await client.greeting(timeoutMs);
    await client.execute('qmp_capabilities', undefined, timeoutMs);
    return client;
  }

  private greetingWaiter: (() => void) | null = null;
  private greeted = false;

  private greeting(timeoutMs: number): Promise<void> {
    if (this.greeted) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('No QMP greeting')), timeoutMs);
      this.greetingWaiter = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private onData(d: string): void {
    this.buf += d;
    let nl;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in msg) {
        this.greeted = true;
        this.greetingWaiter?.();
      } else if ('event' in msg) {
        this.onEvent?.(String(msg.event), msg.data);
      } else if ('id' in msg) {
        const p = this.pending.get(String(msg.id));
        if (!p) continue;
        this.pending.delete(String(msg.id));
        if ('error' in msg) {
          const err = msg.error as { class?: string; desc?: string };
          p.reject(new QmpError(err.class ?? 'Error', err.desc ?? 'unknown error'));
        } else {
          p.resolve(msg.return);
        }
      }
    }
  }

  /** Runs one QMP command and resolves with its `return` value. */
  execute(command: string, args?: Record<string, unknown>, timeoutMs = 30_000): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP ${command} timed out`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.sock.write(
        JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n',
      );
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
