/**
 * AppleBackend against a stand-in for the Swift helper (macOS cannot run here). The stand-in is
 * kept thin: it speaks the helper's stdin/stdout protocol and, in place of the VM, relays the
 * agent socket to the real guest agent (built from src/guest) — the same relay the Swift helper
 * does to the virtio-console port. So the backend's spawn, config, event handling, channel,
 * HELLO, checkpoint (pause/clone/resume), restore, stop and crash handling all run for real.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppleBackend } from '../../src/main/vm/apple/backend.js';
import type { VzConfig } from '../../src/main/vm/apple/config.js';
import { VmGoneError, type ExecHandle, type VmSpec } from '../../src/main/vm/backend.js';

const repo = path.resolve(__dirname, '../..');
let tmp: string;
let agentBin: string;
let fakeHelper: string;

const FAKE_HELPER = String.raw`
import net from 'node:net';
import fs from 'node:fs';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const mode = process.env.FAKE_MODE ?? 'ok';
let config = null;
let agent = null;
const stop = (reason) => {
  out({ event: 'stopped', reason });
  agent?.kill('SIGKILL');
  process.exit(0);
};
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!config) {
    config = JSON.parse(line);
    fs.writeFileSync(process.env.FAKE_CONFIG_OUT, line);
    if (mode === 'refuse') {
      out({ event: 'error', message: 'VZErrorDomain Code=2: the kernel is not valid' });
      process.exit(1);
    }
    boot();
    return;
  }
  const { op } = JSON.parse(line);
  if (op === 'stop') stop('requested');
  else if (op === 'pause') out({ event: 'paused' });
  else if (op === 'resume') out({ event: 'resumed' });
});
rl.on('close', () => stop('stdin closed'));
function boot() {
  const inner = config.agentSocket + '.guest';
  fs.rmSync(inner, { force: true });
  const guest = net.createServer((g) => {
    net
      .createServer((h) => {
        h.pipe(g, { end: false });
        g.pipe(h);
        h.on('error', () => {});
      })
      .listen(config.agentSocket, () => {
        process.stdout.write('objc[1]: some runtime noise\n');
        if (mode === 'slow') setTimeout(() => out({ event: 'started' }), 1000);
        else out({ event: 'started' });
        if (mode === 'crash') setTimeout(() => process.exit(3), 300);
      });
  });
  guest.listen(inner, () => {
    agent = spawn(process.env.AGENT_BIN, ['--unix', inner, '--listen-port', '0'], { stdio: 'ignore' });
  });
}
`;

function backend(mode: string, configOut: string, logs: string[] = []): AppleBackend {
  process.env.AGENT_BIN = agentBin;
  process.env.FAKE_MODE = mode;
  process.env.FAKE_CONFIG_OUT = configOut;
  return new AppleBackend({
    helperBinary: process.execPath,
    helperArgs: [fakeHelper],
    bootTimeoutMs: 10_000,
    stopGraceMs: 1000,
    log: (l) => logs.push(l),
  });
}

function specIn(dir: string, runDir = path.join(dir, 'run')): VmSpec {
  const imageDir = path.join(dir, 'image');
  fs.mkdirSync(imageDir, { recursive: true });
  fs.writeFileSync(path.join(imageDir, 'rootfs.img'), 'base-disk');
  const share = path.join(dir, 'share');
  fs.mkdirSync(share, { recursive: true });
  return {
    imageDir,
    overlayPath: path.join(dir, 'session', 'disk.img'),
    runDir,
    shares: [{ name: 'work', hostPath: share, readOnly: true }],
    cpus: 1,
    memoryMb: 512,
    accel: 'auto',
  };
}

async function run(h: ExecHandle): Promise<{ out: string; code: number }> {
  let out = '';
  h.stdout.on('data', (d: Buffer) => (out += d.toString()));
  h.stderr.resume();
  const r = await h.result;
  return { out, code: r.exitCode };
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pdk-apple-'));
  execFileSync('sh', [path.join(repo, 'src/guest/build.sh'), tmp]);
  agentBin = path.join(tmp, 'paddock-agent');
  fakeHelper = path.join(tmp, 'fake-helper.mjs');
  fs.writeFileSync(fakeHelper, FAKE_HELPER);
}, 60_000);

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('AppleBackend with a stand-in helper', () => {
  it('boots, runs commands, checkpoints, restores and stops', async () => {
    const dir = path.join(tmp, 'a');
    const spec = specIn(dir);
    const cfgOut = path.join(tmp, 'a-config.json');
    const vm = await backend('ok', cfgOut).start(spec);

    const cfg = JSON.parse(fs.readFileSync(cfgOut, 'utf8')) as VzConfig;
    expect(cfg.network).toBe(false);
    expect(cfg.shares).toEqual([{ tag: 'p0', hostPath: spec.shares[0]!.hostPath, readOnly: true }]);
    expect(cfg.cmdline).toContain('paddock.fs=virtiofs');
    // The session disk is a private copy of the base, never the base itself.
    expect(cfg.disk).toBe(spec.overlayPath);
    expect(fs.readFileSync(spec.overlayPath, 'utf8')).toBe('base-disk');

    expect(vm.alive).toBe(true);
    expect(await run(vm.exec({ argv: ['sh', '-c', 'echo hi; exit 3'] }))).toEqual({
      out: 'hi\n',
      code: 3,
    });

    fs.writeFileSync(spec.overlayPath, 'disk-at-checkpoint');
    await vm.checkpoint('c1');
    const saved = path.join(`${spec.overlayPath}.checkpoints`, 'c1.img');
    expect(fs.readFileSync(saved, 'utf8')).toBe('disk-at-checkpoint');
    expect(await vm.ping()).toBeGreaterThanOrEqual(0); // resumed and still answering

    fs.writeFileSync(spec.overlayPath, 'later');
    await vm.restore('c1');
    expect(fs.readFileSync(spec.overlayPath, 'utf8')).toBe('disk-at-checkpoint');
    expect((await run(vm.exec({ argv: ['echo', 'back'] }))).out).toBe('back\n');
    await expect(vm.checkpoint('../x')).rejects.toThrow(/checkpoint name/);

    await vm.stop();
    const how = await vm.exited;
    expect(how.code).toBe(0);
    expect(vm.alive).toBe(false);
    expect(fs.existsSync(spec.runDir)).toBe(false);
    await expect(vm.ping()).rejects.toBeInstanceOf(VmGoneError);
  });

  it('reports a helper crash as exited and fails later calls with VmGoneError', async () => {
    const spec = specIn(path.join(tmp, 'b'));
    const vm = await backend('crash', path.join(tmp, 'b-config.json')).start(spec);
    const how = await vm.exited;
    expect(how.code).toBe(3);
    expect(vm.alive).toBe(false);
    await expect(vm.readFile('/etc/hostname')).rejects.toBeInstanceOf(VmGoneError);
    await expect(vm.exec({ argv: ['true'] }).result).rejects.toBeInstanceOf(VmGoneError);
  });

  it('turns a helper error into a VmBootError that says why', async () => {
    const spec = specIn(path.join(tmp, 'c'));
    await expect(backend('refuse', path.join(tmp, 'c-config.json')).start(spec)).rejects.toThrow(
      /did not start: VZErrorDomain Code=2: the kernel is not valid/,
    );
  });
});

/** The lifecycle the three backends share (vm-lifecycle.ts), run through the Apple backend. */
describe('VM lifecycle with a stand-in helper', () => {
  it('stop() twice is one shutdown: one exited, no "exited unexpectedly"', async () => {
    const spec = specIn(path.join(tmp, 'd'));
    const logs: string[] = [];
    const vm = await backend('ok', path.join(tmp, 'd-config.json'), logs).start(spec);
    const first = vm.stop();
    expect(vm.stop()).toBe(first);
    expect(vm.alive).toBe(false);
    await expect(vm.ping()).rejects.toBeInstanceOf(VmGoneError);
    await first;
    expect(await vm.exited).toEqual({ code: 0, signal: null });
    await vm.stop();
    expect(fs.existsSync(spec.runDir)).toBe(false);
    expect(logs.filter((l) => l.includes('unexpectedly'))).toEqual([]);
    await expect(vm.restore('c1')).rejects.toThrow(/No checkpoint named "c1"/);
    await expect(vm.checkpoint('c1')).rejects.toBeInstanceOf(VmGoneError);
  });

  it('stop() while restore boots: restore fails with VmGoneError and the new helper ends', async () => {
    const dir = path.join(tmp, 'e');
    // A runDir too long for a socket path: the sockets go to a private temporary folder.
    const spec = specIn(dir, path.join(dir, 'r'.repeat(100)));
    const cfgOut = path.join(tmp, 'e-config.json');
    const vm = await backend('ok', cfgOut).start(spec);
    const sockDir = path.dirname(
      (JSON.parse(fs.readFileSync(cfgOut, 'utf8')) as VzConfig).agentSocket,
    );
    expect(sockDir.startsWith(spec.runDir)).toBe(false);
    await vm.checkpoint('c1');

    fs.rmSync(cfgOut);
    process.env.FAKE_MODE = 'slow';
    const restoring = vm.restore('c1');
    while (!fs.existsSync(cfgOut)) await new Promise((r) => setTimeout(r, 10));
    // The old helper is gone and the new one is booting (it holds `started` back for 1 s).
    expect(vm.alive).toBe(false);
    await vm.stop();
    await expect(restoring).rejects.toBeInstanceOf(VmGoneError);
    expect(await vm.exited).toEqual({ code: 0, signal: null });
    const newSockDir = path.dirname(
      (JSON.parse(fs.readFileSync(cfgOut, 'utf8')) as VzConfig).agentSocket,
    );
    expect(fs.existsSync(sockDir)).toBe(false);
    expect(fs.existsSync(newSockDir)).toBe(false);
    await expect(vm.exec({ argv: ['true'] }).result).rejects.toBeInstanceOf(VmGoneError);
  });

  it('a restore whose helper does not start ends the VM', async () => {
    const spec = specIn(path.join(tmp, 'f'));
    const logs: string[] = [];
    const vm = await backend('ok', path.join(tmp, 'f-config.json'), logs).start(spec);
    await vm.checkpoint('c1');
    process.env.FAKE_MODE = 'refuse';
    await expect(vm.restore('c1')).rejects.toThrow(/did not start: VZErrorDomain/);
    expect(await vm.exited).toEqual({ code: null, signal: null });
    expect(vm.alive).toBe(false);
    expect(fs.existsSync(spec.runDir)).toBe(false);
    await expect(vm.ping()).rejects.toBeInstanceOf(VmGoneError);
    await expect(vm.restore('c1')).rejects.toBeInstanceOf(VmGoneError);
    await vm.stop();
    // The helper replaced by the restore exited on request: not reported as unexpected.
    expect(logs.filter((l) => l.includes('unexpectedly'))).toEqual([]);
  });
});
