/**
 * A guest that floods from inside a real VM: the serial console, a read_file of a huge sparse
 * file behind a symlink, and finally a root process that takes the agent channel over and grants
 * a tunnel unlimited credit without ever reading. The host's files and memory stay bounded.
 * One VM for the whole file; the take-over runs last (it ends the channel). Runs on TCG here.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileTool } from '../../src/main/agent/tools/files.js';
import type { ToolContext } from '../../src/main/agent/tools/types.js';
import type { ExecRequest } from '../../src/main/vm/backend.js';
import { Allowlist } from '../../src/main/vm/egress/allowlist.js';
import { EgressProxy } from '../../src/main/vm/egress/proxy.js';
import { QemuBackend, type QemuVm } from '../../src/main/vm/qemu/backend.js';
import { TAKEOVER_SCRIPT } from '../../bench/flood.js';
import { ensureTestImage, vmTestHome } from '../helpers/vm-image.js';

const MiB = 1024 * 1024;
const CONSOLE_CAP = 256 * 1024;

function rssMb(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

async function sh(vm: QemuVm, shell: string, timeoutMs = 60_000): Promise<string> {
  const req: ExecRequest = { shell, timeoutMs };
  const h = vm.exec(req);
  let out = '';
  h.stdout.setEncoding('utf8').on('data', (d: string) => {
    if (out.length < 65536) out += d;
  });
  h.stderr.resume();
  await h.result;
  return out;
}

async function fileSize(p: string): Promise<number> {
  return (await stat(p).catch(() => ({ size: 0 }))).size;
}

let vm: QemuVm;
let sessionRoot: string;
let proxy: EgressProxy;
let flood: Server;
let floodPort: number;
let upstreamBytes = 0;

beforeAll(async () => {
  const image = await ensureTestImage();
  await mkdir(join(vmTestHome, 'test-sessions'), { recursive: true });
  sessionRoot = await mkdtemp(join(vmTestHome, 'test-sessions', 'flood-'));
  // An upstream on the host that sends as fast as it is read.
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  flood = createServer((s: Socket) => {
    s.on('error', () => undefined);
    const pump = (): void => {
      while (!s.destroyed && s.write(chunk)) upstreamBytes += chunk.length;
    };
    s.on('drain', pump);
    pump();
  });
  await new Promise<void>((r) => flood.listen(0, '127.0.0.1', r));
  floodPort = (flood.address() as AddressInfo).port;
  proxy = new EgressProxy({
    allowlist: new Allowlist([`127.0.0.1:${floodPort}`]),
    onDecision: () => undefined,
  });
  const backend = new QemuBackend({ consoleLogMaxBytes: CONSOLE_CAP });
  vm = (await backend.start({
    imageDir: image.dir,
    overlayPath: join(sessionRoot, 'disk.qcow2'),
    runDir: join(sessionRoot, 'run'),
    shares: [],
    cpus: 2,
    memoryMb: 512,
    accel: 'auto',
  })) as QemuVm;
  vm.onTunnel((s) => proxy.handleSocket(s));
});

afterAll(async () => {
  await vm?.stop();
  await proxy?.close();
  flood?.close();
  if (sessionRoot) await rm(sessionRoot, { recursive: true, force: true });
});

describe('a guest flooding its channels (real VM)', () => {
  it('the console log on the host stays under its cap while the guest floods the serial port', async () => {
    const runDir = join(sessionRoot, 'run');
    const t0 = performance.now();
    // Three times the cap, then an end marker; the guest's writes wait while the host reads.
    await sh(
      vm,
      `timeout 90 sh -c "yes paddock-console-flood | head -c ${3 * CONSOLE_CAP} > /dev/ttyS0; echo paddock-console-end > /dev/ttyS0"`,
      120_000,
    );
    const ms = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 500));
    const total =
      (await fileSize(join(runDir, 'console.log'))) +
      (await fileSize(join(runDir, 'console.log.1')));
    console.log(
      `console flood of ${3 * CONSOLE_CAP} bytes in ${Math.round(ms)} ms: console files ${total} bytes on the host`,
    );
    expect(total).toBeLessThanOrEqual(CONSOLE_CAP);
    expect(total).toBeGreaterThan(CONSOLE_CAP / 2);
    const tail = readFileSync(join(runDir, 'console.log'), 'utf8');
    expect(tail).toContain('paddock-console-end');
    // The VM still answers.
    expect(await sh(vm, 'echo ok')).toBe('ok\n');
  });

  it('read_file on a symlink to a 2 GB sparse file is refused without the host buffering it', async () => {
    await sh(vm, 'truncate -s 2G /root/sparse && ln -sf /root/sparse /root/link');
    const before = rssMb();
    let peak = before;
    const tick = setInterval(() => (peak = Math.max(peak, rssMb())), 50);
    const ctx: ToolContext = {
      host: {
        exec: (r) => Promise.resolve(vm.exec(r)),
        readFile: (p) => vm.readFile(p),
        writeFile: (p, d, o) => vm.writeFile(p, d, o),
        stat: (p) => vm.stat(p),
        list: (p) => vm.list(p),
      },
      cwd: '/root',
      signal: new AbortController().signal,
      sessionId: 'flood',
      createArtifact: () => ({ id: 'a', version: 1 }),
    };
    const err = await readFileTool.run({ path: '/root/link' }, ctx).catch((e: unknown) => e);
    clearInterval(tick);
    console.log(
      `read_file of the sparse link: RSS ${Math.round(before)} -> peak ${Math.round(peak)} MB`,
    );
    expect(String((err as Error).message)).toMatch(/too large/);
    expect(peak - before).toBeLessThan(150);
    expect(await sh(vm, 'echo ok')).toBe('ok\n');
  });

  it('a root process that takes the agent channel over and never reads cannot make the host buffer a tunnel', async () => {
    // The forged peer (bench/flood.ts): takes the agent's port, opens a tunnel to the
    // allowlisted flooding upstream, grants all the credit there is, and never reads again.
    await vm.writeFile('/root/takeover.py', Buffer.from(TAKEOVER_SCRIPT));
    await sh(
      vm,
      `setsid python3 /root/takeover.py ${floodPort} </dev/null >/dev/null 2>&1 & echo started`,
    );
    const before = rssMb();
    let peak = before;
    const t0 = performance.now();
    // Watch for 15 s, or until the host has dropped the channel and settled; stop at 1.5 GB.
    while (performance.now() - t0 < 15_000) {
      peak = Math.max(peak, rssMb());
      if (peak > 1500) break;
      if (!vm.alive && performance.now() - t0 > 3000) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(
      `take-over: alive=${vm.alive}, upstream sent ${Math.round(upstreamBytes / MiB)} MiB, RSS ${Math.round(before)} -> peak ${Math.round(peak)} MB`,
    );
    expect(peak - before).toBeLessThan(150);
    expect(upstreamBytes).toBeLessThan(64 * MiB);
    // SECURITY: a peer that grants more credit than a window is broken: the channel is dropped.
    expect(vm.alive).toBe(false);
  });
});
