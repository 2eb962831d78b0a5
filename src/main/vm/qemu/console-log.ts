/**
 * The guest's serial console on the host, kept small. QEMU serves the console on a unix socket
 * (args.ts, `consoleSocket`) and this copies what it reads into a {@link CappedLog}
 * (`console.log`, then `console.log.1`), so the console files never hold more than the cap.
 *
 * SECURITY: the guest writes its console as fast as it likes (`yes > /dev/ttyS0`); no per-VM host
 * file may grow with it. Reading from a socket also gives backpressure: if the host falls behind,
 * QEMU stops draining the guest's serial port instead of buffering for it.
 */
import { connect, type Socket } from 'node:net';
import { CAPPED_LOG_MAX_BYTES, CappedLog } from '../capped-log.js';

/** Default cap on console.log and console.log.1 together. */
export const CONSOLE_LOG_MAX_BYTES = CAPPED_LOG_MAX_BYTES;

/** A capped, rotating copy of a VM's serial console read from QEMU's console socket. */
export class ConsoleLog {
  private readonly log: CappedLog;
  private sock: Socket | null = null;
  private closed = false;

  constructor(
    /** `console.log`; the previous part is `<path>.1`. */
    readonly path: string,
    maxBytes: number = CONSOLE_LOG_MAX_BYTES,
  ) {
    this.log = new CappedLog(path, maxBytes);
  }

  /** Console bytes received so far (kept or not). */
  get written(): number {
    return this.log.written;
  }

  /**
   * Connects to QEMU's console socket, retrying every 10 ms while `keepTrying()` (QEMU creates
   * it within milliseconds of starting). Resolves true once connected, false if it gave up.
   * Lines the guest printed before the connection are lost (QEMU drops console output while no
   * client is connected, which is also what happens to a warm VM nobody has attached yet).
   */
  async attach(socketPath: string, keepTrying: () => boolean): Promise<boolean> {
    while (!this.closed) {
      const sock = await new Promise<Socket | null>((resolve) => {
        const s = connect(socketPath);
        s.once('connect', () => {
          s.removeAllListeners('error');
          resolve(s);
        });
        s.once('error', () => resolve(null));
      });
      if (sock) {
        if (this.closed) {
          sock.destroy();
          return false;
        }
        this.sock = sock;
        sock.on('error', () => undefined);
        // Keeps draining even if the log stopped (a full disk), so the guest never stalls.
        sock.on('data', (chunk: Buffer) => this.log.write(chunk));
        return true;
      }
      if (!keepTrying()) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  }

  /** Everything kept (both parts, oldest first), at most the cap. */
  text(): string {
    return this.log.text();
  }

  /** The last `n` lines of the console. */
  tail(n: number): string {
    return this.log.tail(n);
  }

  /** Stops reading and closes the file (the files stay until the run folder is removed). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock?.destroy();
    this.sock = null;
    this.log.close();
  }
}
