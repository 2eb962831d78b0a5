/**
 * The host never trusts a size, a length, a credit, a count or a string from the guest. These
 * tests play a FORGED guest (root in the VM can kill the agent and speak on its channel): a small
 * peer in the test that speaks the framed protocol and misbehaves. One group uses the real agent
 * binary for the read_file symlink case, which needs no forgery at all.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OutputCap } from '../../src/main/agent/output-cap.js';
import { listFilesTool, readFileTool } from '../../src/main/agent/tools/files.js';
import type { ToolContext, ToolHost } from '../../src/main/agent/tools/types.js';
import { Allowlist } from '../../src/main/vm/egress/allowlist.js';
import { EgressProxy } from '../../src/main/vm/egress/proxy.js';
import { GuestClient, GuestError, type GuestLimits } from '../../src/main/vm/guest/client.js';
import { buildQemuArgs } from '../../src/main/vm/qemu/args.js';
import { CappedLog } from '../../src/main/vm/capped-log.js';
import { ConsoleLog } from '../../src/main/vm/qemu/console-log.js';
import {
  Channel,
  FrameDecoder,
  FrameType,
  INITIAL_WINDOW,
  MAX_DATA,
  encodeCredit,
  encodeData,
  encodeEof,
  encodeFrame,
  encodeJson,
  type Frame,
} from '../../src/main/vm/guest/protocol.js';

const repo = path.resolve(__dirname, '../..');
const MiB = 1024 * 1024;
let tmp: string;
let seq = 0;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-bounds-'));
});
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** A connected unix socket pair: [host side, guest side]. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const p = path.join(tmp, `s${seq++}.sock`);
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(p, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const host = net.connect(p);
  await new Promise((r) => host.once('connect', r));
  const guest = await accepted;
  server.close();
  return [host, guest];
}

/** A forged guest on the other end of a GuestClient's channel. */
interface Forged {
  client: GuestClient;
  host: net.Socket;
  guest: net.Socket;
  /** Frames the host sent (HELLO excluded). */
  frames: Frame[];
  /** Called for each frame from the host (HELLO excluded). */
  onFrame: (f: Frame) => void;
  send(buf: Buffer): boolean;
  /** The guest stops reading its channel (the host's writes pile up). */
  stopReading(): void;
}

const forgedList: Forged[] = [];
afterEach(() => {
  for (const f of forgedList.splice(0)) {
    f.client.close();
    f.guest.destroy();
  }
});

async function forge(limits: Partial<GuestLimits> = {}): Promise<Forged> {
  const [host, guest] = await socketPair();
  guest.on('error', () => undefined);
  const client = new GuestClient(host, limits);
  const dec = new FrameDecoder({ syncOnHello: false });
  const f: Forged = {
    client,
    host,
    guest,
    frames: [],
    onFrame: () => undefined,
    send: (b) => (guest.destroyed ? false : guest.write(b)),
    stopReading: () => {
      guest.pause();
    },
  };
  guest.on('data', (chunk: Buffer) => {
    for (const fr of dec.push(chunk)) {
      if (fr.type === FrameType.HELLO) {
        const { nonce } = JSON.parse(fr.payload.toString()) as { nonce: string };
        f.send(
          encodeJson(FrameType.HELLO, 0, {
            version: 1,
            agent: 'paddock-agent',
            pid: 1,
            uname: 'forged',
            listenPort: 3128,
            limits: null,
            nonce,
          }),
        );
        continue;
      }
      f.frames.push(fr);
      f.onFrame(fr);
    }
  });
  await client.hello(3000);
  forgedList.push(f);
  return f;
}

/**
 * The guest side of a read/list stream that honours credit and sends up to `total` bytes, or
 * until the host sends CLOSE. Returns how many DATA bytes it sent.
 */
function serveBlob(
  f: Forged,
  id: number,
  total: number,
  fill: (off: number, n: number) => Buffer,
): Promise<{ sent: number; closed: boolean }> {
  return new Promise((resolve) => {
    let credit = INITIAL_WINDOW;
    let sent = 0;
    let closed = false;
    const prev = f.onFrame;
    const pump = (): void => {
      while (!closed && credit > 0 && sent < total) {
        const n = Math.min(credit, MAX_DATA, total - sent);
        f.send(encodeData(id, Channel.STDOUT, fill(sent, n)));
        sent += n;
        credit -= n;
      }
      if (!closed && sent >= total) {
        f.send(encodeEof(id, Channel.STDOUT));
        f.send(encodeJson(FrameType.RESP, id, { size: sent }));
        resolve({ sent, closed });
      }
    };
    f.onFrame = (fr) => {
      prev(fr);
      if (fr.id !== id) return;
      if (fr.type === FrameType.CREDIT) {
        credit += fr.payload.readUInt32BE(0);
        setImmediate(pump);
      } else if (fr.type === FrameType.CLOSE) {
        closed = true;
        resolve({ sent, closed });
      }
    };
    pump();
  });
}

function toolHost(c: GuestClient): ToolHost {
  return {
    exec: (req) => Promise.resolve(c.exec(req)),
    readFile: (p) => c.readFile(p),
    writeFile: (p, d, o) => c.writeFile(p, d, o),
    stat: (p) => c.stat(p),
    list: (p) => c.list(p),
  };
}

function toolCtx(host: ToolHost): ToolContext {
  return {
    host,
    cwd: '/',
    signal: new AbortController().signal,
    sessionId: 'test',
    createArtifact: () => ({ id: 'a', version: 1 }),
  };
}

/** The next REQ the host sends, with its stream id and op. */
function nextReq(f: Forged): Promise<{ id: number; req: Record<string, unknown> }> {
  return new Promise((resolve) => {
    const prev = f.onFrame;
    f.onFrame = (fr) => {
      prev(fr);
      if (fr.type === FrameType.REQ) {
        f.onFrame = prev;
        resolve({ id: fr.id, req: JSON.parse(fr.payload.toString()) as Record<string, unknown> });
      }
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Break 1, and its class: sizes the guest reports are hints; results are counted as they arrive.
// ---------------------------------------------------------------------------------------------

describe('read_file and list_files count what arrives (the guest-reported size is a hint)', () => {
  let agentDir: string;
  let proc: ChildProcess | undefined;
  let client: GuestClient | undefined;
  let sock: net.Socket | undefined;

  afterAll(() => {
    client?.close();
    proc?.kill('SIGKILL');
  });

  it('read_file on a symlink to a big sparse file is refused without buffering it (real agent)', async () => {
    agentDir = fs.mkdtempSync(path.join(tmp, 'agent-'));
    execFileSync('sh', [path.join(repo, 'src/guest/build.sh'), agentDir], { stdio: 'pipe' });
    const sockPath = path.join(agentDir, 'a.sock');
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(sockPath, r));
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    proc = spawn(path.join(agentDir, 'paddock-agent'), ['--unix', sockPath, '--listen-port', '0'], {
      stdio: 'ignore',
    });
    sock = await accepted;
    server.close();
    let fromGuest = 0;
    sock.on('data', (d: Buffer) => (fromGuest += d.length));
    client = new GuestClient(sock);
    await client.hello(5000);

    // 512 MiB of holes: lstat of the link says a few bytes, the file behind it is huge.
    const big = path.join(agentDir, 'big');
    fs.closeSync(fs.openSync(big, 'w'));
    fs.truncateSync(big, 512 * MiB);
    const link = path.join(agentDir, 'link');
    fs.symlinkSync(big, link);

    const err = await readFileTool
      .run({ path: link }, toolCtx(toolHost(client)))
      .catch((e: unknown) => e as Error);
    expect(String((err as Error).message)).toMatch(/too large/);
    // SECURITY: the host stopped taking bytes once the cap was reached.
    expect(fromGuest).toBeLessThan(24 * MiB);
    expect(client.isGone).toBe(false);
    // The channel still works after the aborted read.
    expect(await client.ping()).toBeLessThan(5000);
  }, 60_000);

  it('a guest that says a file is small and then streams without end is cut off at the cap', async () => {
    const f = await forge({ maxReadBytes: 4 * MiB });
    let blob: Promise<{ sent: number; closed: boolean }> | undefined;
    f.onFrame = (fr) => {
      if (fr.type !== FrameType.REQ) return;
      const req = JSON.parse(fr.payload.toString()) as { op: string };
      if (req.op === 'stat')
        f.send(
          encodeJson(FrameType.RESP, fr.id, {
            path: '/x',
            type: 'file',
            size: 10,
            mode: 0o644,
            mtimeMs: 0,
          }),
        );
      if (req.op === 'read') blob = serveBlob(f, fr.id, 256 * MiB, (_o, n) => Buffer.alloc(n, 97));
    };
    expect((await f.client.stat('/x')).size).toBe(10);
    const err = await f.client.readFile('/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestError);
    expect((err as GuestError).code).toBe('EFBIG');
    const { sent, closed } = await blob!;
    expect(closed).toBe(true);
    expect(sent).toBeLessThanOrEqual(4 * MiB + INITIAL_WINDOW + MAX_DATA);
    expect(f.client.isGone).toBe(false);
  });

  it('a listing that never ends is cut off at its cap, and the tool says why', async () => {
    const f = await forge({ maxListBytes: 2 * MiB });
    let result: Promise<{ sent: number; closed: boolean }> | undefined;
    f.onFrame = (fr) => {
      if (fr.type !== FrameType.REQ) return;
      const entry = Buffer.from('{"path":"/d/aaaaaaaaaaaaaaaa","type":"file","size":1},');
      result = serveBlob(f, fr.id, 256 * MiB, (off, n) => {
        const b = Buffer.alloc(n);
        for (let i = 0; i < n; i++) b[i] = entry[(off + i) % entry.length]!;
        if (off === 0) b[0] = 0x5b; // '['
        return b;
      });
    };
    const out = await listFilesTool
      .run({ path: '/d' }, toolCtx(toolHost(f.client)))
      .catch((e: unknown) => e as Error);
    expect(String((out as Error).message)).toMatch(/too (many|large)/);
    const { sent, closed } = await result!;
    expect(closed).toBe(true);
    expect(sent).toBeLessThanOrEqual(2 * MiB + INITIAL_WINDOW + MAX_DATA);
  });

  it('list entries with absurd fields are rejected, and the tool shows a bounded number of them', async () => {
    const f = await forge();
    // One entry whose path is 1 MiB long: not a path any Linux system has.
    f.onFrame = (fr) => {
      if (fr.type !== FrameType.REQ) return;
      const json = Buffer.from(
        JSON.stringify([{ path: `/d/${'x'.repeat(MiB)}`, type: 'file', size: 1 }]),
      );
      void serveBlob(f, fr.id, json.length, (o, n) => json.subarray(o, o + n));
    };
    await expect(f.client.list('/d')).rejects.toThrow(/path/);

    // 50,000 well-formed entries: the tool lists a bounded number and says how many more.
    const g = await forge();
    g.onFrame = (fr) => {
      if (fr.type !== FrameType.REQ) return;
      const entries = Array.from({ length: 50_000 }, (_, i) => ({
        path: `/d/f${String(i).padStart(6, '0')}`,
        type: 'file',
        size: -5,
        mode: 1e12,
        mtimeMs: Number.NaN,
      }));
      const json = Buffer.from(JSON.stringify(entries));
      void serveBlob(g, fr.id, json.length, (o, n) => json.subarray(o, o + n));
    };
    const list = await g.client.list('/d');
    expect(list).toHaveLength(50_000);
    expect(list[0]!.size).toBe(0);
    expect(list[0]!.mode).toBeLessThanOrEqual(0o7777);
    const out = await listFilesTool.run({ path: '/d' }, toolCtx(toolHost(g.client)));
    expect(out.content.split('\n').length).toBeLessThan(2100);
    expect(out.content).toMatch(/more entries/);
  });
});

// ---------------------------------------------------------------------------------------------
// Break 2, and its class: credits, windows, buffered bytes per stream and per channel, counts.
// ---------------------------------------------------------------------------------------------

/** An upstream that sends `limit` bytes as fast as it is read, counting what it produced. */
function floodingUpstream(limit: number): { stream: Duplex; produced: () => number } {
  let produced = 0;
  const chunk = Buffer.alloc(64 * 1024, 120);
  const stream = new Duplex({
    read() {
      if (produced >= limit) return void this.push(null);
      produced += chunk.length;
      this.push(chunk);
    },
    write(_c, _e, cb) {
      cb();
    },
  });
  return { stream, produced: () => produced };
}

async function proxyOver(
  f: Forged,
  limit: number,
): Promise<{ proxy: EgressProxy; produced: () => number }> {
  const ups: { produced: () => number }[] = [];
  const proxy = new EgressProxy({
    allowlist: new Allowlist(['flood.example']),
    onDecision: () => undefined,
    resolve: () => Promise.resolve(['93.184.216.34']),
    connect: () => {
      const u = floodingUpstream(limit);
      ups.push(u);
      return Promise.resolve(u.stream);
    },
  });
  f.client.onTunnel((d) => proxy.handleSocket(d));
  return { proxy, produced: () => ups.reduce((s, u) => s + u.produced(), 0) };
}

function openTunnel(f: Forged, id: number): void {
  f.send(encodeJson(FrameType.TUNNEL_OPEN, id, { port: 3128 }));
  f.send(
    encodeData(
      id,
      Channel.IN,
      Buffer.from('CONNECT flood.example:443 HTTP/1.1\r\nHost: flood.example:443\r\n\r\n'),
    ),
  );
}

describe('credit and buffering: a guest cannot make the host hold more than a bounded amount', () => {
  it('a tunnel granted unlimited credit whose guest stops reading does not buffer the upstream', async () => {
    const f = await forge();
    const { proxy, produced } = await proxyOver(f, 512 * MiB);
    let established = false;
    f.onFrame = (fr) => {
      if (fr.type === FrameType.DATA && fr.id === 2 && !established) {
        established = true;
        // The take-over: all the credit in the world, then never read again.
        for (let i = 0; i < 8; i++) f.send(encodeCredit(2, 0xffffffff));
        f.stopReading();
      }
    };
    openTunnel(f, 2);
    await until(() => established);
    await sleep(1500);
    // SECURITY: the upstream was not read beyond a few windows, nor the channel buffered.
    expect(produced()).toBeLessThan(16 * MiB);
    expect(f.host.writableLength).toBeLessThan(4 * MiB);
    await proxy.close();
  });

  it('credit that adds up past one window over several CREDIT frames breaks the protocol', async () => {
    const f = await forge();
    const h = f.client.exec({ argv: ['cat'], stdin: true });
    const { id } = await nextReq(f);
    for (let i = 0; i < 17; i++) f.send(encodeCredit(id, 64 * 1024)); // 1 MiB + 64 KiB on top
    await until(() => f.client.isGone);
    await expect(h.result).rejects.toThrow(/flow-control/);
  });

  it('many streams each within their window cannot pile up in the channel while the guest stops reading', async () => {
    const f = await forge();
    f.stopReading();
    // 32 uploads, each allowed a whole window: 32 MiB in flight without a channel bound.
    const uploads = Array.from({ length: 32 }, (_, i) =>
      f.client.writeFile(`/u${i}`, Buffer.alloc(2 * MiB, 1)).catch(() => undefined),
    );
    await sleep(1000);
    expect(f.host.writableLength).toBeLessThan(3 * MiB);
    f.client.close();
    await Promise.all(uploads);
  });

  it('many tunnels each within their window cannot pile up in the channel while the guest stops reading', async () => {
    const f = await forge();
    const { proxy, produced } = await proxyOver(f, 512 * MiB);
    let established = 0;
    f.onFrame = (fr) => {
      if (fr.type === FrameType.DATA && fr.id % 2 === 0 && fr.payload.includes('200 Connection'))
        if (++established === 32) f.stopReading();
    };
    for (let i = 1; i <= 32; i++) openTunnel(f, 2 * i);
    await until(() => established === 32);
    await sleep(1500);
    // 32 windows would be 32 MiB; the channel bound keeps it near one.
    expect(f.host.writableLength).toBeLessThan(3 * MiB);
    expect(produced()).toBeLessThan(16 * MiB);
    expect(f.client.isGone).toBe(false);
    await proxy.close();
  });

  it('a million one-byte frames for a paused reader are held as a few buffers, not a million', async () => {
    const f = await forge();
    const h = f.client.exec({ argv: ['x'] });
    const { id } = await nextReq(f);
    const one = encodeData(id, Channel.STDOUT, Buffer.from('y'));
    const flood = Buffer.concat(Array.from({ length: INITIAL_WINDOW }, () => one));
    const start = f.host.bytesRead;
    f.send(flood);
    // Every frame has reached the host (and been dispatched) before anyone reads.
    await until(() => f.host.bytesRead - start >= flood.length, 20_000);
    await sleep(50);
    let events = 0;
    let bytes = 0;
    h.stdout.on('data', (d: Buffer) => {
      events++;
      bytes += d.length;
    });
    await until(() => bytes === INITIAL_WINDOW);
    expect(events).toBeLessThan(1000);
    expect(f.client.isGone).toBe(false);
  });

  it('the tool-side output cap keeps a bounded number of pieces however the output is cut', () => {
    const cap = new OutputCap(20_000, 10_000);
    const big = Buffer.alloc(256 * 1024, 0x61);
    for (let i = 0; i < 100_000; i++) cap.push(big.subarray(i % 1000, (i % 1000) + 1));
    const inner = cap as unknown as { head: Buffer[]; tail: Buffer[] };
    expect(inner.head.length + inner.tail.length).toBeLessThanOrEqual(130);
    // No kept piece is a view into the 256 KiB buffer it was cut from.
    for (const b of [...inner.head, ...inner.tail]) expect(b.buffer).not.toBe(big.buffer);
    expect(cap.text()).toContain('bytes cut from the middle');
  });

  it('stdout and stderr of one command share one window', async () => {
    const f = await forge();
    const h = f.client.exec({ argv: ['x'] });
    const { id } = await nextReq(f);
    // Nobody reads: 1 MiB on each channel is twice the window the protocol grants.
    for (let off = 0; off < INITIAL_WINDOW; off += MAX_DATA) {
      const n = Math.min(MAX_DATA, INITIAL_WINDOW - off);
      f.send(encodeData(id, Channel.STDOUT, Buffer.alloc(n)));
      f.send(encodeData(id, Channel.STDERR, Buffer.alloc(n)));
    }
    await until(() => f.client.isGone);
    await expect(h.result).rejects.toThrow(/flow-control/);
  });

  it('DATA on a channel a stream does not have breaks the protocol', async () => {
    const f = await forge();
    const h = f.client.exec({ argv: ['x'] });
    const { id } = await nextReq(f);
    for (let off = 0; off < 3 * INITIAL_WINDOW; off += MAX_DATA)
      f.send(encodeData(id, 7, Buffer.alloc(MAX_DATA)));
    await until(() => f.client.isGone);
    await expect(h.result).rejects.toThrow(/unknown channel|flow-control/);
  });

  it('the number of open tunnels is capped, and tunnel id 0 or odd ids are refused', async () => {
    const f = await forge({ maxTunnels: 16 });
    const opened: Duplex[] = [];
    f.client.onTunnel((d) => opened.push(d)); // a handler that never reads
    let closes = 0;
    f.onFrame = (fr) => {
      if (fr.type === FrameType.CLOSE) closes++;
    };
    f.send(encodeJson(FrameType.TUNNEL_OPEN, 0, { port: 3128 }));
    f.send(encodeJson(FrameType.TUNNEL_OPEN, 3, { port: 3128 }));
    for (let i = 1; i <= 40; i++) f.send(encodeJson(FrameType.TUNNEL_OPEN, 2 * i, { port: 3128 }));
    await until(() => closes >= 26);
    expect(opened).toHaveLength(16);
  });

  it('a guest that floods requests for replies and never reads its channel is dropped', async () => {
    const f = await forge({ channelHardLimit: 2 * MiB });
    f.stopReading();
    // Every refused TUNNEL_OPEN earns a CLOSE back; they would pile up in the host's buffer.
    const batch = Buffer.concat(
      Array.from({ length: 4096 }, (_, i) =>
        encodeJson(FrameType.TUNNEL_OPEN, 2 * (i + 1), { port: 1 }),
      ),
    );
    for (let i = 0; i < 80 && !f.client.isGone; i++) {
      f.send(batch);
      await sleep(5);
    }
    await until(() => f.client.isGone);
    expect(f.host.destroyed).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Decoded strings and JSON: lengths and shapes are checked before anything uses them.
// ---------------------------------------------------------------------------------------------

describe('strings and JSON from the guest', () => {
  it('an error message is cut to a sentence and loses its control characters', async () => {
    const f = await forge();
    const p = f.client.stat('/x');
    const { id } = await nextReq(f);
    f.send(
      encodeJson(FrameType.ERR, id, {
        code: 'ENOENT\u001b[2J'.repeat(100),
        message: `\u001b]0;pwned\u0007gone${'y'.repeat(20_000)}`,
      }),
    );
    const err = (await p.catch((e: unknown) => e)) as GuestError;
    expect(err).toBeInstanceOf(GuestError);
    expect(err.code).toBe('EIO');
    expect(err.message.length).toBeLessThanOrEqual(1100);
    // eslint-disable-next-line no-control-regex
    expect(err.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);

    // Past the size of any real control frame, it is not even parsed.
    const q = f.client.stat('/y');
    const second = await nextReq(f);
    f.send(encodeJson(FrameType.ERR, second.id, { code: 'ENOENT', message: 'z'.repeat(100_000) }));
    await expect(q).rejects.toMatchObject({ code: 'EPROTO' });
  });

  it('an EXIT with an impossible exit code or a huge signal name breaks the protocol', async () => {
    const f = await forge();
    const h = f.client.exec({ argv: ['x'] });
    h.stdout.resume();
    h.stderr.resume();
    const { id } = await nextReq(f);
    f.send(encodeJson(FrameType.EXIT, id, { exitCode: 1e300, signal: 'S'.repeat(100_000) }));
    await expect(h.result).rejects.toThrow();
    expect(f.client.isGone).toBe(true);
  });

  it('a signal name that is not one is reported as none', async () => {
    const f = await forge();
    const h = f.client.exec({ argv: ['x'] });
    h.stdout.resume();
    h.stderr.resume();
    const { id } = await nextReq(f);
    f.send(encodeJson(FrameType.EXIT, id, { exitCode: 137, signal: 'S'.repeat(1000) }));
    expect((await h.result).signal).toBeNull();
  });

  it('a big or odd HELLO is not kept as it came', async () => {
    const f = await forge();
    f.send(
      encodeJson(FrameType.HELLO, 0, {
        version: 1,
        agent: 'paddock-agent',
        pid: 1,
        uname: `\u001b[31m${'u'.repeat(100_000)}`,
        listenPort: 3128,
      }),
    );
    f.send(
      encodeJson(FrameType.HELLO, 0, {
        version: 1,
        agent: 'paddock-agent',
        pid: 2,
        uname: `\u001b[31m${'v'.repeat(1000)}`,
        listenPort: 99999,
      }),
    );
    await until(() => f.client.lastHello?.pid === 2);
    expect(f.client.lastHello!.uname.length).toBeLessThanOrEqual(256);
    expect(f.client.lastHello!.uname).not.toContain('\u001b');
    expect(f.client.lastHello!.listenPort).toBe(0);
  });

  it('a RESP whose JSON is far bigger than any answer breaks the protocol', async () => {
    const f = await forge();
    const p = f.client.stat('/x');
    const { id } = await nextReq(f);
    f.send(
      encodeFrame(
        FrameType.RESP,
        id,
        Buffer.from(JSON.stringify({ path: '/x', type: 'file', pad: 'p'.repeat(200_000) })),
      ),
    );
    await expect(p).rejects.toThrow();
    expect(f.client.isGone).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Break 3, and its class: per-VM host files the guest can write to are capped.
// ---------------------------------------------------------------------------------------------

describe('per-VM host files', () => {
  it('QEMU serves the console on a socket when asked, so it never writes a host file itself', () => {
    const args = buildQemuArgs({
      kernel: '/k',
      initrd: '/i',
      overlay: '/o.qcow2',
      shares: [],
      cpus: 1,
      memoryMb: 256,
      accel: 'tcg',
      consoleLog: '/run/vm/console.log',
      consoleSocket: '/run/vm/console.sock',
      agentSocket: '/run/vm/agent.sock',
    });
    const chardevs = args.filter((_a, i) => args[i - 1] === '-chardev');
    expect(chardevs).toContain('socket,id=con,path=/run/vm/console.sock,server=on,wait=off');
    expect(chardevs.join(' ')).not.toContain('file,');
  });

  it('a console flood keeps the console files under the cap, with the latest lines', async () => {
    const sockPath = path.join(tmp, `console${seq++}.sock`);
    const logPath = path.join(tmp, `console${seq++}.log`);
    const qemu = net.createServer((s) => {
      s.on('error', () => undefined);
      // 8 MiB of numbered lines, as fast as the reader takes them.
      let i = 0;
      const pump = (): void => {
        while (i < 200_000) {
          const line = `line ${String(i++).padStart(7, '0')} ${'x'.repeat(28)}\n`;
          if (!s.write(line)) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    await new Promise<void>((r) => qemu.listen(sockPath, r));
    const log = new ConsoleLog(logPath, 256 * 1024);
    expect(await log.attach(sockPath, () => true)).toBe(true);
    await until(() => log.text().includes('line 0199999'), 20_000);
    log.close();
    qemu.close();
    const size = (p: string): number => (fs.existsSync(p) ? fs.statSync(p).size : 0);
    expect(size(logPath) + size(`${logPath}.1`)).toBeLessThanOrEqual(256 * 1024);
    expect(log.tail(1)).toContain('line 0199999');
    expect(log.text()).not.toContain('line 0000000');
  });

  it('a log the guest writes to (the WSL agent stderr) is capped, appending after a restart', () => {
    const p = path.join(tmp, `agent${seq++}.log`);
    fs.writeFileSync(p, 'x'.repeat(40 * 1024));
    const log = new CappedLog(p, 64 * 1024, true);
    const line = Buffer.from(`${'e'.repeat(1000)}\n`);
    for (let i = 0; i < 1024; i++) log.write(line);
    log.write(Buffer.from('last line\n'));
    log.close();
    const size = (f: string): number => (fs.existsSync(f) ? fs.statSync(f).size : 0);
    expect(size(p) + size(`${p}.1`)).toBeLessThanOrEqual(64 * 1024);
    expect(log.written).toBe(1024 * 1001 + 10);
    expect(log.tail(1)).toBe('last line');
  });
});
