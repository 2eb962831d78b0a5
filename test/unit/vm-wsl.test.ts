/**
 * The WSL backend's pure parts (wsl.conf, argv, drvfs mounts and their quoting) and its channel:
 * the stdio relay (relay.ts) run with the real guest agent built from src/guest, spoken to by
 * GuestClient over the child's stdin/stdout exactly as over wsl.exe's. As root, the launch
 * itself (new network/pid/mount namespaces, root dropped) runs too. wsl.exe cannot run here.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecHandle } from '../../src/main/vm/backend.js';
import { GuestClient } from '../../src/main/vm/guest/client.js';
import {
  checkWindowsPath,
  distroName,
  drvfsMount,
  execArgv,
  exportArgv,
  importArgv,
  launchArgv,
  launchScript,
  setupScript,
  shQuote,
  terminateArgv,
  unregisterArgv,
  wslConf,
} from '../../src/main/vm/wsl/commands.js';
import { RELAY_SOURCE } from '../../src/main/vm/wsl/relay.js';

const repo = path.resolve(__dirname, '../..');
let tmp: string;
let agentBin: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pdk-wsl-'));
  execFileSync('sh', [path.join(repo, 'src/guest/build.sh'), tmp]);
  agentBin = path.join(tmp, 'paddock-agent');
}, 60_000);

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Parses a wsl.conf-style INI into section -> key -> value. */
function ini(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let sec = '';
  for (const line of text.split('\n')) {
    const m = /^\[(.+)\]$/.exec(line.trim());
    if (m) out[(sec = m[1]!)] = {};
    const kv = /^(\w+)\s*=\s*(.*)$/.exec(line.trim());
    if (kv && sec) out[sec]![kv[1]!] = kv[2]!;
  }
  return out;
}

describe('wsl.conf', () => {
  it('turns off automount, interop, the Windows PATH, resolv.conf and systemd', () => {
    const c = ini(wslConf());
    expect(c.automount).toMatchObject({ enabled: 'false', mountFsTab: 'false' });
    expect(c.interop).toEqual({ enabled: 'false', appendWindowsPath: 'false' });
    expect(c.network).toMatchObject({ generateResolvConf: 'false', generateHosts: 'false' });
    expect(c.boot).toEqual({ systemd: 'false' });
    expect(wslConf()).not.toMatch(/^command\s*=/m);
  });
});

describe('wsl.exe argv', () => {
  it('imports as WSL2 and addresses one distro', () => {
    const d = distroName('abc123');
    expect(d).toBe('Paddock-abc123');
    expect(importArgv(d, 'C:\\Paddock\\s1', 'C:\\Paddock\\rootfs.tar')).toEqual([
      '--import',
      'Paddock-abc123',
      'C:\\Paddock\\s1',
      'C:\\Paddock\\rootfs.tar',
      '--version',
      '2',
    ]);
    expect(terminateArgv(d)).toEqual(['--terminate', d]);
    expect(unregisterArgv(d)).toEqual(['--unregister', d]);
    expect(exportArgv(d, 'C:\\x\\c1.tar')).toEqual(['--export', d, 'C:\\x\\c1.tar']);
    expect(execArgv(d, ['/bin/sh', '-c', 'x'])).toEqual([
      '-d',
      d,
      '-u',
      'root',
      '--exec',
      '/bin/sh',
      '-c',
      'x',
    ]);
    expect(() => distroName('a b')).toThrow();
    expect(() => distroName('../x')).toThrow();
  });
});

describe('drvfs mounts', () => {
  it('mounts read-only and read-write grants with the right options', () => {
    expect(drvfsMount({ name: 'docs', hostPath: 'C:\\Users\\me\\Docs', readOnly: true })).toBe(
      "mkdir -p '/mnt/docs' && mount -t drvfs 'C:\\Users\\me\\Docs' '/mnt/docs' -o ro,metadata,uid=1000,gid=1000",
    );
    expect(drvfsMount({ name: 'proj', hostPath: 'D:/code/My Project/', readOnly: false })).toBe(
      "mkdir -p '/mnt/proj' && mount -t drvfs 'D:\\code\\My Project' '/mnt/proj' -o rw,metadata,uid=1000,gid=1000",
    );
  });

  it('mounts a review grant read-only under an overlay whose writes stay in the distro', () => {
    const cmd = drvfsMount({ name: 'proj', hostPath: 'D:\\code', readOnly: false, review: true });
    const L = '/var/lib/paddock/review/proj';
    expect(cmd.split(' && ')).toEqual([
      `mkdir -p '${L}/lower' '${L}/upper' '${L}/work' '/mnt/proj'`,
      `mount -t drvfs 'D:\\code' '${L}/lower' -o ro,metadata,uid=1000,gid=1000`,
      `chown "$(stat -c %u:%g '${L}/lower')" '${L}/upper'`,
      `chmod "$(stat -c %a '${L}/lower')" '${L}/upper'`,
      `mount -t overlay overlay '/mnt/proj' -o 'lowerdir=${L}/lower,upperdir=${L}/upper,workdir=${L}/work,redirect_dir=off,index=off,metacopy=off,xino=off,nfs_export=off,userxattr'`,
    ]);
  });

  it('keeps shell metacharacters inert', () => {
    const cmd = drvfsMount({
      name: 'x',
      hostPath: 'C:\\a $(reboot) $HOME ; & | > c',
      readOnly: true,
    });
    const out = execFileSync('sh', [
      '-c',
      `set -- ${cmd.split(' && ')[1]!.slice(6)}; printf '%s\\n' "$@"`,
    ]);
    expect(out.toString().split('\n')[2]).toBe('C:\\a $(reboot) $HOME ; & | > c');
  });

  it('refuses quotes, line breaks, relative paths, UNC paths and ..', () => {
    const m = (hostPath: string) => () => drvfsMount({ name: 'x', hostPath, readOnly: true });
    expect(m("C:\\it's")).toThrow(/quote/);
    expect(m('C:\\a"b')).toThrow(/quote/);
    expect(m('C:\\a`b')).toThrow(/quote/);
    expect(m('C:\\a\nb')).toThrow(/line break/);
    expect(m('C:\\a\rb')).toThrow(/line break/);
    expect(m('C:\\a\0b')).toThrow(/line break/);
    expect(m('Users\\me')).toThrow(/full path/);
    expect(m('\\\\server\\share')).toThrow(/full path/);
    expect(m('C:\\Users\\..\\Windows')).toThrow(/\.\./);
    expect(() => drvfsMount({ name: '../etc', hostPath: 'C:\\x', readOnly: true })).toThrow(
      /share name/,
    );
    expect(() => checkWindowsPath('C:\\ok')).not.toThrow();
  });

  it('quotes any word for sh', () => {
    const words = ["it's", 'a b', '$HOME', '\\'];
    const out = execFileSync('sh', ['-c', `printf '%s\\n' ${words.map(shQuote).join(' ')}`]);
    expect(out.toString()).toBe(words.join('\n') + '\n');
  });
});

describe('launch script', () => {
  it('mounts each grant then starts the agent in new namespaces as uid 1000', () => {
    const s = launchScript([
      { name: 'a', hostPath: 'C:\\A', readOnly: true },
      { name: 'b', hostPath: 'C:\\B', readOnly: false },
    ]);
    const lines = s.split('\n');
    expect(lines[0]).toBe('set -eu');
    expect(lines[1]).toContain("'/mnt/a' -o ro,");
    expect(lines[2]).toContain("'/mnt/b' -o rw,");
    expect(lines[3]).toMatch(/^exec 'unshare' '--net' '--pid' '--mount' '--fork' '--mount-proc'/);
    expect(lines[3]).toContain("'--uid' '1000'");
    expect(() =>
      launchScript([
        { name: 'a', hostPath: 'C:\\A', readOnly: true },
        { name: 'a', hostPath: 'C:\\B', readOnly: true },
      ]),
    ).toThrow(/Two shares/);
    expect(execFileSync('sh', ['-n', '-c', s]).toString()).toBe('');
    expect(execFileSync('sh', ['-n', '-c', setupScript()]).toString()).toBe('');
  });
});

async function run(h: ExecHandle): Promise<{ out: string; code: number }> {
  let out = '';
  h.stdout.on('data', (d: Buffer) => (out += d.toString()));
  h.stderr.resume();
  const r = await h.result;
  return { out, code: r.exitCode };
}

function overStdio(child: ChildProcess): GuestClient {
  return new GuestClient(Duplex.from({ readable: child.stdout!, writable: child.stdin! }));
}

describe('the stdio channel (relay + real agent)', () => {
  it('carries the protocol over stdin/stdout, and stdin EOF ends the agent', async () => {
    const child = spawn('python3', ['-c', RELAY_SOURCE, '--listen-port', '0', '--', agentBin], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    const client = overStdio(child);
    const hello = await client.hello(5000);
    expect(hello.agent).toBe('paddock-agent');
    expect(await run(client.exec({ argv: ['sh', '-c', 'echo out; exit 7'] }))).toEqual({
      out: 'out\n',
      code: 7,
    });
    // Binary data both ways, larger than one pipe buffer.
    const blob = Buffer.alloc(300_000, 0xab);
    const f = path.join(tmp, 'blob');
    await client.writeFile(f, blob);
    expect((await client.readFile(f)).equals(blob)).toBe(true);
    child.stdin!.end();
    expect(await exited).toBe(0);
  });

  it.runIf(process.getuid?.() === 0 && fs.existsSync('/usr/bin/unshare'))(
    'launch: only loopback, a fresh pid namespace, and no root for commands',
    async () => {
      const argv = launchArgv(['python3', '-c', RELAY_SOURCE], agentBin);
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      const client = overStdio(child);
      const hello = await client.hello(5000).catch((e: Error) => {
        throw new Error(`${e.message} ${err}`);
      });
      expect(hello.listenPort).toBe(3128);
      const ifaces = await run(
        client.exec({
          argv: [
            'python3',
            '-c',
            'import socket; print(*sorted(n for _, n in socket.if_nameindex()))',
          ],
        }),
      );
      expect(ifaces.out.trim()).toBe('lo');
      const ids = await run(
        client.exec({ argv: ['sh', '-c', 'id -u; grep CapEff /proc/self/status'] }),
      );
      expect(ids.out).toMatch(/^1000\nCapEff:\s+0+\n$/);
      // The forwarder listens on loopback inside the namespace (lo was brought up).
      const net = await run(
        client.exec({
          argv: [
            'python3',
            '-c',
            'import socket\ns=socket.create_connection(("127.0.0.1",3128),2)\nprint("ok")\n' +
              'try:\n socket.create_connection(("1.1.1.1",80),2)\nexcept OSError as e:\n print("unreachable")',
          ],
        }),
      );
      expect(net.out).toBe('ok\nunreachable\n');
      const ps = await run(client.exec({ argv: ['sh', '-c', 'ls /proc | grep -c "^[0-9]"'] }));
      expect(Number(ps.out.trim())).toBeLessThan(10);
      child.stdin!.end();
      await exited;
    },
  );
});
