/**
 * The guest agent (src/guest/agent.c) built natively and run on the host, spoken to through
 * GuestClient over a unix socket: the same code paths as in the VM, minus the virtio port.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VmGoneError, type ExecHandle } from '../../src/main/vm/backend.js';
import { GuestClient, GuestError } from '../../src/main/vm/guest/client.js';
import {
  FrameDecoder,
  FrameType,
  encodeFrame,
  encodeJson,
} from '../../src/main/vm/guest/protocol.js';

const repo = path.resolve(__dirname, '../..');
let tmp: string;
let agentBin: string;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

interface Agent {
  proc: ChildProcess;
  sock: net.Socket;
  port: number;
  stderr: () => string;
  server: net.Server;
}

async function startAgent(name: string): Promise<Agent> {
  const sockPath = path.join(tmp, `${name}.sock`);
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(sockPath, r));
  const port = await freePort();
  const connected = new Promise<net.Socket>((r) => server.once('connection', r));
  const proc = spawn(agentBin, ['--unix', sockPath, '--listen-port', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const sock = await connected;
  return { proc, sock, port, stderr: () => err, server };
}

async function collect(
  h: ExecHandle,
): Promise<{ out: Buffer; err: Buffer; code: number; signal: string | null; timedOut: boolean }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  h.stdout.on('data', (d: Buffer) => out.push(d));
  h.stderr.on('data', (d: Buffer) => err.push(d));
  const ended = Promise.all([
    new Promise((r) => h.stdout.once('end', r)),
    new Promise((r) => h.stderr.once('end', r)),
  ]);
  const res = await h.result;
  await ended;
  return {
    out: Buffer.concat(out),
    err: Buffer.concat(err),
    code: res.exitCode,
    signal: res.signal,
    timedOut: res.timedOut,
  };
}

let agent: Agent;
let client: GuestClient;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-agent-test-'));
  execFileSync('sh', [path.join(repo, 'src/guest/build.sh'), tmp], { stdio: 'pipe' });
  agentBin = path.join(tmp, 'paddock-agent');
  agent = await startAgent('main');
  client = new GuestClient(agent.sock);
  const hello = await client.hello(5000);
  expect(hello.agent).toBe('paddock-agent');
  expect(hello.version).toBe(1);
  expect(hello.pid).toBe(agent.proc.pid);
  expect(hello.listenPort).toBe(agent.port);
}, 60_000);

afterAll(() => {
  client?.close();
  agent?.proc.kill('SIGKILL');
  agent?.server.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('build', () => {
  it('produces a static binary (an ELF without an interpreter)', () => {
    const elf = fs.readFileSync(agentBin);
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    const phoff = Number(elf.readBigUInt64LE(0x20));
    const phentsize = elf.readUInt16LE(0x36);
    const phnum = elf.readUInt16LE(0x38);
    const types = Array.from({ length: phnum }, (_, k) => elf.readUInt32LE(phoff + k * phentsize));
    expect(types).not.toContain(3); // PT_INTERP
  });
});

describe('exec', () => {
  it('runs argv without a shell', async () => {
    const r = await collect(client.exec({ argv: ['echo', 'hello world', '$HOME'] }));
    expect(r.out.toString()).toBe('hello world $HOME\n');
    expect(r.code).toBe(0);
    expect(r.signal).toBeNull();
  });

  it('runs shell strings and reports exit codes', async () => {
    const r = await collect(client.exec({ shell: 'echo $((6*7)); exit 7' }));
    expect(r.out.toString()).toBe('42\n');
    expect(r.code).toBe(7);
  });

  it('keeps stderr separate from stdout', async () => {
    const r = await collect(client.exec({ shell: 'echo out; echo err >&2; echo out2' }));
    expect(r.out.toString()).toBe('out\nout2\n');
    expect(r.err.toString()).toBe('err\n');
  });

  it('sets the default environment, cwd, and request env on top', async () => {
    const r = await collect(
      client.exec({
        shell: 'pwd; echo "$HOME|$LANG|$HTTP_PROXY|$https_proxy|$NO_PROXY|$FOO|$PATH"',
        cwd: tmp,
        env: { FOO: 'bar baz', LANG: 'en_US.UTF-8' },
      }),
    );
    const [pwd, vars] = r.out.toString().split('\n');
    expect(fs.realpathSync(pwd ?? '')).toBe(fs.realpathSync(tmp));
    expect(vars).toBe(
      `/root|en_US.UTF-8|http://127.0.0.1:${agent.port}|http://127.0.0.1:${agent.port}|localhost,127.0.0.1|bar baz|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    );
    const root = await collect(client.exec({ argv: ['pwd'] }));
    expect(root.out.toString()).toBe('/\n');
  });

  it('reports a missing command as 127 with a message', async () => {
    const r = await collect(client.exec({ argv: ['no-such-command-xyz'] }));
    expect(r.code).toBe(127);
    expect(r.err.toString()).toContain('no-such-command-xyz: command not found');
  });

  it('gives children no agent file descriptors', async () => {
    const r = await collect(client.exec({ argv: ['ls', '/proc/self/fd'] }));
    const fds = r.out.toString().trim().split('\n').map(Number);
    // 0-2 plus the fd ls opened to read the directory.
    expect(fds.filter((fd) => fd > 3)).toEqual([]);
  });

  it('feeds stdin (more than one credit window) and echoes it back', async () => {
    const input = randomBytes(3 * 1024 * 1024 + 17);
    const h = client.exec({ argv: ['cat'], stdin: true });
    const done = collect(h);
    h.stdin.end(input);
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.out.equals(input)).toBe(true);
  });

  it('gives /dev/null as stdin when stdin is not requested', async () => {
    const r = await collect(client.exec({ argv: ['cat'] }));
    expect(r.code).toBe(0);
    expect(r.out.length).toBe(0);
  });

  it('streams 10 MB of random bytes byte for byte', async () => {
    const data = randomBytes(10 * 1024 * 1024);
    const file = path.join(tmp, 'random.bin');
    fs.writeFileSync(file, data);
    const r = await collect(client.exec({ argv: ['cat', file] }));
    expect(r.code).toBe(0);
    expect(r.out.length).toBe(data.length);
    expect(createHash('sha256').update(r.out).digest('hex')).toBe(
      createHash('sha256').update(data).digest('hex'),
    );
  });

  it('times out with 124 and kills the whole process group', async () => {
    const marker = path.join(tmp, 'grandchild-survived');
    const t0 = Date.now();
    const r = await collect(
      client.exec({ shell: `(sleep 2; touch ${marker}) & sleep 30`, timeoutMs: 300 }),
    );
    expect(r.code).toBe(124);
    expect(r.timedOut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000);
    await new Promise((res) => setTimeout(res, 2500));
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('kills on request: SIGTERM gives 143, SIGKILL 137', async () => {
    const h = client.exec({ argv: ['sleep', '30'] });
    setTimeout(() => h.kill('SIGTERM'), 100);
    const r = await collect(h);
    expect(r.code).toBe(143);
    expect(r.signal).toBe('SIGTERM');
    expect(r.timedOut).toBe(false);

    const h2 = client.exec({ shell: 'trap "" TERM; sleep 30' });
    setTimeout(() => h2.kill('SIGKILL'), 100);
    const r2 = await collect(h2);
    expect(r2.code).toBe(137);
    expect(r2.signal).toBe('SIGKILL');
  });

  it('does not wait forever for a background process holding stdout', async () => {
    const t0 = Date.now();
    const r = await collect(client.exec({ shell: 'sleep 20 & echo started' }));
    expect(r.out.toString()).toBe('started\n');
    expect(r.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('runs 20 commands at once', async () => {
    const t0 = Date.now();
    const runs = Array.from({ length: 20 }, (_, i) =>
      collect(
        client.exec({
          shell: 'sleep 0.5; echo "$N"; echo "e$N" >&2; exit $((N % 5))',
          env: { N: String(i) },
        }),
      ),
    );
    const results = await Promise.all(runs);
    results.forEach((r, i) => {
      expect(r.out.toString()).toBe(`${i}\n`);
      expect(r.err.toString()).toBe(`e${i}\n`);
      expect(r.code).toBe(i % 5);
    });
    expect(Date.now() - t0).toBeLessThan(5000); // sequential would take 10 s
  });

  it('applies back-pressure: a paused consumer keeps host memory flat, and resuming completes', async () => {
    const total = 200 * 1024 * 1024;
    const h = client.exec({ shell: 'head -c 200M /dev/zero' });
    h.stdout.pause();
    let finished = false;
    void h.result.then(() => (finished = true));
    await new Promise((r) => setTimeout(r, 300));
    const before = process.memoryUsage();
    await new Promise((r) => setTimeout(r, 1500));
    const after = process.memoryUsage();
    expect(finished).toBe(false);
    expect(h.stdout.readableLength).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(after.rss - before.rss).toBeLessThan(20 * 1024 * 1024);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(20 * 1024 * 1024);

    let got = 0;
    let nonZero = false;
    h.stdout.on('data', (d: Buffer) => {
      got += d.length;
      if (!nonZero && d.some((b) => b !== 0)) nonZero = true;
    });
    h.stdout.resume();
    const res = await h.result;
    await new Promise((r) => (h.stdout.readableEnded ? r(null) : h.stdout.once('end', r)));
    expect(res.exitCode).toBe(0);
    expect(got).toBe(total);
    expect(nonZero).toBe(false);
  }, 60_000);
});

describe('files', () => {
  it('writes, reads, stats and lists', async () => {
    const dir = path.join(tmp, 'files');
    fs.mkdirSync(dir);
    const p = path.join(dir, 'a.txt');
    await client.writeFile(p, Buffer.from('hello\n'), { mode: 0o600 });
    expect(fs.readFileSync(p, 'utf8')).toBe('hello\n');
    expect(fs.statSync(p).mode & 0o777).toBe(0o600);
    expect((await client.readFile(p)).toString()).toBe('hello\n');

    const st = await client.stat(p);
    expect(st).toMatchObject({ path: p, type: 'file', size: 6, mode: 0o600 });
    expect(Math.abs(st.mtimeMs - fs.statSync(p).mtimeMs)).toBeLessThan(2);

    fs.mkdirSync(path.join(dir, 'sub'));
    fs.symlinkSync('a.txt', path.join(dir, 'link'));
    const entries = await client.list(dir);
    expect(entries.map((e) => [path.basename(e.path), e.type])).toEqual([
      ['a.txt', 'file'],
      ['link', 'symlink'],
      ['sub', 'dir'],
    ]);
    expect((await client.stat(dir)).type).toBe('dir');

    await client.writeFile(p, Buffer.from('x'));
    expect(fs.readFileSync(p, 'utf8')).toBe('x');
    await client.writeFile(path.join(dir, 'empty'), Buffer.alloc(0));
    expect((await client.readFile(path.join(dir, 'empty'))).length).toBe(0);
  });

  it('round-trips a binary file bigger than the credit window', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 3);
    const p = path.join(tmp, 'bin.dat');
    await client.writeFile(p, data);
    expect(fs.readFileSync(p).equals(data)).toBe(true);
    expect((await client.readFile(p)).equals(data)).toBe(true);
  });

  it('lists a large folder (more than one frame of JSON)', async () => {
    const dir = path.join(tmp, 'many');
    fs.mkdirSync(dir);
    for (let i = 0; i < 3000; i++)
      fs.writeFileSync(
        path.join(dir, `file-with-a-longish-name-${String(i).padStart(5, '0')}.txt`),
        '',
      );
    const entries = await client.list(dir);
    expect(entries.length).toBe(3000);
    expect(path.basename(entries[2999]?.path ?? '')).toBe('file-with-a-longish-name-02999.txt');
  });

  it('explains errors in a sentence with a code', async () => {
    const missing = path.join(tmp, 'nope', 'missing.txt');
    const e = await client.readFile(missing).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GuestError);
    expect((e as GuestError).code).toBe('ENOENT');
    expect((e as GuestError).message).toBe(`${missing} does not exist in the sandbox.`);
    await expect(client.stat(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(client.list(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(client.writeFile(missing, Buffer.from('x'))).rejects.toMatchObject({
      code: 'ENOENT',
    });
    await expect(client.readFile(tmp)).rejects.toMatchObject({
      code: 'EISDIR',
      message: `${tmp} is a folder, not a file.`,
    });
    await expect(client.readFile('/dev/zero')).rejects.toMatchObject({ code: 'EINVAL' });
    // The channel still works after errors.
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
  });
});

describe('tunnels', () => {
  it('turns a TCP connection to the forwarder port into a tunnel both ways', async () => {
    const tunnels: Duplex[] = [];
    client.onTunnel((d) => {
      tunnels.push(d);
      // An echo server that uppercases, like a proxy answering.
      d.on('data', (chunk: Buffer) =>
        d.write(Buffer.from(chunk.toString('latin1').toUpperCase(), 'latin1')),
      );
      d.on('end', () => d.end());
    });
    const conn = net.connect(agent.port, '127.0.0.1');
    const received: Buffer[] = [];
    conn.on('data', (d: Buffer) => received.push(d));
    const closed = new Promise((r) => conn.on('close', r));
    await new Promise((r) => conn.once('connect', r));
    conn.write('connect example.com:443 http/1.1\r\n');
    for (let i = 0; i < 100 && Buffer.concat(received).length < 35; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(Buffer.concat(received).toString()).toBe('CONNECT EXAMPLE.COM:443 HTTP/1.1\r\n');

    // Bulk both ways, more than a window.
    const bulk = Buffer.alloc(3 * 1024 * 1024, 'a');
    received.length = 0;
    conn.end(bulk);
    await closed;
    expect(Buffer.concat(received).equals(Buffer.alloc(bulk.length, 'A'))).toBe(true);
    expect(tunnels.length).toBe(1);
  });

  it('refuses tunnels when the host has no handler', async () => {
    const a = await startAgent('notunnel');
    const cl = new GuestClient(a.sock);
    await cl.hello(5000);
    const conn = net.connect(a.port, '127.0.0.1');
    conn.on('error', () => undefined);
    conn.resume();
    await new Promise((r) => conn.on('close', r));
    cl.close();
    a.proc.kill('SIGKILL');
    a.server.close();
  });
});

describe('channel', () => {
  it('pings', async () => {
    const ms = await client.ping();
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(ms).toBeLessThan(1000);
  });

  it('rejects every pending operation with VmGoneError when the agent dies', async () => {
    const a = await startAgent('dies');
    const cl = new GuestClient(a.sock);
    await cl.hello(5000);
    const h = cl.exec({ argv: ['sleep', '30'] });
    const stdoutError = new Promise((r) => h.stdout.on('error', r));
    const stdinless = cl.exec({ shell: 'sleep 30' }); // no error listeners: must not crash
    await new Promise((r) => setTimeout(r, 100));
    a.proc.kill('SIGKILL');
    await expect(h.result).rejects.toBeInstanceOf(VmGoneError);
    await expect(stdinless.result).rejects.toBeInstanceOf(VmGoneError);
    expect(await stdoutError).toBeInstanceOf(VmGoneError);
    await expect(cl.ping()).rejects.toBeInstanceOf(VmGoneError);
    await expect(cl.exec({ argv: ['true'] }).result).rejects.toBeInstanceOf(VmGoneError);
    a.server.close();
  });

  it('agent kills its commands and exits when the host goes away', async () => {
    const a = await startAgent('hostgone');
    const cl = new GuestClient(a.sock);
    await cl.hello(5000);
    const pidFile = path.join(tmp, 'hostgone.pid');
    const h = cl.exec({ shell: `echo $$ > ${pidFile}; exec sleep 30` });
    h.stdout.resume();
    await new Promise((r) => setTimeout(r, 300));
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    const exited = new Promise((r) => a.proc.once('exit', r));
    cl.close();
    await exited;
    await new Promise((r) => setTimeout(r, 100));
    // Gone, or at most a zombie waiting for whoever adopted it.
    const state = fs.existsSync(`/proc/${pid}/stat`)
      ? fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0]
      : 'gone';
    expect(['gone', 'Z']).toContain(state);
    a.server.close();
  });

  it('agent skips garbage before the host HELLO and answers with the nonce', async () => {
    const a = await startAgent('raw');
    const decoder = new FrameDecoder({ syncOnHello: true });
    const frames: { type: number; id: number; payload: Buffer }[] = [];
    a.sock.on('data', (d: Buffer) => frames.push(...decoder.push(d)));
    // A tail of some earlier frame, then a REQ that must be ignored (not yet in sync), then HELLO.
    a.sock.write(Buffer.concat([randomBytes(37), encodeJson(FrameType.REQ, 1, { op: 'ping' })]));
    a.sock.write(encodeJson(FrameType.HELLO, 0, { version: 1, nonce: 'n1' }));
    a.sock.write(encodeJson(FrameType.REQ, 3, { op: 'ping' }));
    await new Promise((r) => setTimeout(r, 300));
    const hellos = frames
      .filter((f) => f.type === FrameType.HELLO)
      .map((f) => JSON.parse(f.payload.toString()) as { nonce?: string });
    expect(hellos.some((h) => h.nonce === 'n1')).toBe(true);
    const resps = frames.filter((f) => f.type === FrameType.RESP).map((f) => f.id);
    expect(resps).toEqual([3]);
    a.proc.kill('SIGKILL');
    a.server.close();
  });

  it('host decoder skips a partial frame before the first agent HELLO', () => {
    const d = new FrameDecoder({ syncOnHello: true });
    const hello = encodeJson(FrameType.HELLO, 0, {
      version: 1,
      agent: 'paddock-agent',
      pid: 1,
      uname: 'x',
      listenPort: 3128,
    });
    const data = encodeFrame(FrameType.DATA, 5, Buffer.from([1, 65, 66]));
    const input = Buffer.concat([Buffer.from([0, 0, 0, 9, 3, 0, 0]), hello, data]);
    // Feed byte by byte to exercise reassembly.
    const frames = [];
    for (const b of input) frames.push(...d.push(Buffer.from([b])));
    expect(frames.map((f) => [f.type, f.id])).toEqual([
      [FrameType.HELLO, 0],
      [FrameType.DATA, 5],
    ]);
    expect(() => d.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0]))).toThrow(
      /bad length/,
    );
  });
});
