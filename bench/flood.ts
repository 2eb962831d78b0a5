/**
 * The boundary under a hostile guest: for PADDOCK_BENCH_FLOOD_S seconds (default 60) a real VM
 * floods every channel it has at once while the host runs its real consumers, and the host
 * process's peak RSS is the figure (the target: under 400 MB).
 *
 * - console: `yes > /dev/ttyS0` (the host keeps a capped console log);
 * - tunnels: a guest script opens more connections to the forwarder than the host allows; half
 *   CONNECT to a host upstream that sends without end and never read, half send without end to
 *   an upstream that never reads;
 * - stdout: the bash tool's consumer (runCommand) on `cat /dev/zero`, plus a command whose output
 *   nobody reads;
 * - read_file on a symlink to a 2 GB sparse file, and list_files on a folder of 20,000 entries,
 *   in loops;
 * - the agent channel carries all of it; at the end a root process kills the agent, takes its
 *   port over, grants a tunnel unlimited credit and stops reading (the host drops the channel).
 *
 * Measured in this process (the host): RSS sampled every 50 ms, and the event loop's lag.
 */
import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { runCommand } from '../src/main/agent/tools/run-command.js';
import { listFilesTool, readFileTool } from '../src/main/agent/tools/files.js';
import type { ToolContext } from '../src/main/agent/tools/types.js';
import type { Vm } from '../src/main/vm/backend.js';
import { Allowlist } from '../src/main/vm/egress/allowlist.js';
import { EgressProxy } from '../src/main/vm/egress/proxy.js';
import { buildImage, findImage } from '../src/main/vm/image.js';
import { QemuBackend } from '../src/main/vm/qemu/backend.js';
import { round } from './stats.js';
import type { BenchSuite } from './suites.js';

const MiB = 1024 * 1024;

/** Connections the guest script keeps open to the forwarder (the host allows 128 tunnels). */
const GUEST_CONNECTIONS = 200;

const TUNNEL_SCRIPT = `
import socket, sys, time
secs, flood, sink, n = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
end = time.time() + secs
chunk = b'u' * 65536
def open_one(kind):
    try:
        s = socket.create_connection(('127.0.0.1', 3128), timeout=5)
        port = flood if kind == 0 else sink
        s.sendall(b'CONNECT 127.0.0.1:%d HTTP/1.1\\r\\nHost: 127.0.0.1:%d\\r\\n\\r\\n' % (port, port))
        s.setblocking(False)
        return s
    except Exception:
        return None
readers, writers = [], []
while time.time() < end:
    while len(readers) + len(writers) < n and time.time() < end:
        kind = len(writers) < len(readers)
        s = open_one(1 if kind else 0)
        if s is None:
            break
        (writers if kind else readers).append(s)
    alive = []
    for s in writers:
        try:
            while True:
                s.send(chunk)
        except BlockingIOError:
            alive.append(s)
        except Exception:
            s.close()
    writers = alive
    time.sleep(0.05)
`;

/**
 * The forged agent (python3, argv[1] the flooding upstream's port): kills the real agent, opens
 * its port, says HELLO, opens a tunnel to the upstream, grants all the credit there is, and never
 * reads again. Used here and by test/vm/flood.test.ts.
 */
export const TAKEOVER_SCRIPT = `
import glob, json, os, struct, sys, time
flood = int(sys.argv[1])
def frame(t, i, p=b''):
    return struct.pack('>IBI', 5 + len(p), t, i) + p
open('/sys/fs/cgroup/cgroup.procs', 'w').write(str(os.getpid()))
time.sleep(1.0)
port = '/dev/virtio-ports/paddock.0'
if not os.path.exists(port):
    for n in glob.glob('/sys/class/virtio-ports/*/name'):
        if open(n).read().strip() == 'paddock.0':
            port = '/dev/' + n.split('/')[-2]
for d in os.listdir('/proc'):
    if d.isdigit():
        try:
            if open('/proc/%s/comm' % d).read().strip() == 'paddock-agent':
                os.kill(int(d), 9)
        except Exception:
            pass
fd = None
for _ in range(500):
    try:
        fd = os.open(port, os.O_RDWR)
        break
    except OSError:
        time.sleep(0.01)
hello = {'version': 1, 'agent': 'paddock-agent', 'pid': os.getpid(), 'uname': 'forged', 'listenPort': 3128, 'limits': None}
os.write(fd, frame(1, 0, json.dumps(hello).encode()))
os.write(fd, frame(9, 2, b'{"port":3128}'))
os.write(fd, frame(3, 2, b'\\0' + b'CONNECT 127.0.0.1:%d HTTP/1.1\\r\\nHost: 127.0.0.1:%d\\r\\n\\r\\n' % (flood, flood)))
for _ in range(8):
    os.write(fd, frame(5, 2, struct.pack('>I', 0xffffffff)))
time.sleep(3600)
`;

function rssMb(pid?: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid ?? 'self'}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

async function sh(vm: Vm, shell: string, timeoutMs = 120_000): Promise<string> {
  const h = vm.exec({ shell, timeoutMs });
  h.stdin.end();
  let out = '';
  h.stdout.setEncoding('utf8').on('data', (d: string) => {
    if (out.length < 65536) out += d;
  });
  h.stderr.resume();
  const r = await h.result;
  if (r.exitCode !== 0) throw new Error(`guest command failed (${r.exitCode}): ${shell}`);
  return out;
}

/** Options of {@link runFlood}. */
export interface FloodOptions {
  /** How long every channel floods at once. */
  seconds: number;
  /** The data folder holding the guest image (built there if missing). */
  home: string;
  log: (line: string) => void;
  /** Run the agent-channel take-over at the end (default true). */
  takeover?: boolean;
}

/** Runs the flood once and returns its figures (peak_host_rss_mb is the headline). */
export async function runFlood(o: FloodOptions): Promise<Record<string, number | string>> {
  const image = (await findImage(o.home)) ?? (await buildImage({ dataDir: o.home }));
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'paddock-bench-flood-'));
  const servers: Server[] = [];
  const listen = async (onConn: (s: Socket) => void): Promise<number> => {
    const srv = createServer((s) => {
      s.on('error', () => undefined);
      onConn(s);
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return (srv.address() as AddressInfo).port;
  };
  let upstreamSent = 0;
  const block = Buffer.alloc(64 * 1024, 0x41);
  // Sends as fast as it is read.
  const floodPort = await listen((s) => {
    const pump = (): void => {
      while (!s.destroyed && s.write(block)) upstreamSent += block.length;
    };
    s.on('drain', pump);
    pump();
  });
  // Never reads.
  const sinkPort = await listen((s) => s.pause());
  const proxy = new EgressProxy({
    allowlist: new Allowlist([`127.0.0.1:${floodPort}`, `127.0.0.1:${sinkPort}`]),
    onDecision: () => undefined,
  });
  const backend = new QemuBackend();
  const vm = await backend.start({
    imageDir: image.dir,
    overlayPath: path.join(work, 'overlay.qcow2'),
    runDir: path.join(work, 'run'),
    shares: [],
    cpus: 2,
    memoryMb: 512,
    accel: 'auto',
  });
  vm.onTunnel((s) => proxy.handleSocket(s));
  const figures: Record<string, number | string> = { seconds: o.seconds };
  try {
    o.log('preparing the guest: a 2 GB sparse file behind a symlink, 20,000 files');
    await sh(
      vm,
      'truncate -s 2G /root/sparse && ln -sf /root/sparse /root/link && mkdir -p /root/many && ' +
        "python3 -c \"import os\nfor i in range(20000): open('/root/many/entry-%06d-%s' % (i, 'n' * 40), 'w').close()\"",
    );
    await vm.writeFile('/root/tunnels.py', Buffer.from(TUNNEL_SCRIPT));
    await vm.writeFile('/root/takeover.py', Buffer.from(TAKEOVER_SCRIPT));

    const ctx: ToolContext = {
      host: {
        exec: (r) => Promise.resolve(vm.exec(r)),
        readFile: (p) => vm.readFile(p),
        writeFile: (p, d, opt) => vm.writeFile(p, d, opt),
        stat: (p) => vm.stat(p),
        list: (p) => vm.list(p),
      },
      cwd: '/root',
      signal: new AbortController().signal,
      sessionId: 'bench-flood',
      createArtifact: () => ({ id: 'a', version: 1 }),
      onOutput: () => undefined,
    };

    global.gc?.();
    const baseline = rssMb();
    let peak = baseline;
    let atPeak = process.memoryUsage();
    let qemuPeak = 0;
    let maxLag = 0;
    let last = performance.now();
    const sampler = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 50);
      last = now;
      const rss = rssMb();
      if (rss > peak) {
        peak = rss;
        atPeak = process.memoryUsage();
      }
      qemuPeak = Math.max(qemuPeak, rssMb((vm as { pid?: number }).pid));
    }, 50);

    const ms = o.seconds * 1000;
    const end = performance.now() + ms;
    const secs = Math.max(1, Math.round(o.seconds));
    o.log(`flooding every channel for ${o.seconds} s`);
    // Guest-side flooders, detached from the command that starts them.
    await sh(
      vm,
      `(timeout ${secs} sh -c 'yes paddock-flood-console-0123456789abcdef > /dev/ttyS0' &) ; ` +
        `(setsid python3 /root/tunnels.py ${secs} ${floodPort} ${sinkPort} ${GUEST_CONNECTIONS} </dev/null >/dev/null 2>&1 &) ; echo ok`,
    );
    // A command whose output nobody reads: it may cost the host a window, no more.
    const unread = vm.exec({ shell: 'cat /dev/zero', timeoutMs: ms });
    unread.stdin.end();
    unread.result.catch(() => undefined);

    let stdoutBytes = 0;
    let reads = 0;
    let lists = 0;
    let pings = 0;
    let maxPing = 0;
    const until = (): boolean => performance.now() < end;
    await Promise.all([
      (async () => {
        while (until()) {
          const left = Math.max(1000, Math.min(10_000, end - performance.now()));
          const r = await runCommand(ctx, { shell: 'cat /dev/zero', timeoutMs: left });
          stdoutBytes += r.stdout.length;
        }
      })(),
      (async () => {
        while (until()) {
          await readFileTool.run({ path: '/root/link' }, ctx).catch(() => undefined);
          reads++;
        }
      })(),
      (async () => {
        while (until()) {
          await listFilesTool.run({ path: '/root/many' }, ctx).catch(() => undefined);
          lists++;
        }
      })(),
      (async () => {
        while (until()) {
          const t = performance.now();
          await vm.ping().catch(() => undefined);
          maxPing = Math.max(maxPing, performance.now() - t);
          pings++;
          await new Promise((r) => setTimeout(r, 250));
        }
      })(),
    ]);
    const floodPeak = peak;
    const consoleBytes = await Promise.all(
      ['console.log', 'console.log.1'].map((f) =>
        fs.stat(path.join(work, 'run', f)).then(
          (s) => s.size,
          () => 0,
        ),
      ),
    );

    if (o.takeover !== false) {
      o.log('the agent channel taken over by a root process in the guest');
      await sh(
        vm,
        `setsid python3 /root/takeover.py ${floodPort} </dev/null >/dev/null 2>&1 & echo ok`,
      );
      const t0 = performance.now();
      while (performance.now() - t0 < 8000 && (vm as { alive?: boolean }).alive !== false)
        await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 2000));
      figures.takeover_channel_dropped = (vm as { alive?: boolean }).alive === false ? 'yes' : 'no';
      figures.takeover_dropped_after_ms = round(performance.now() - t0 - 2000, 0);
    }
    clearInterval(sampler);

    figures.baseline_host_rss_mb = round(baseline, 0);
    figures.peak_host_rss_mb = round(peak, 0);
    figures.peak_host_rss_during_flood_mb = round(floodPeak, 0);
    figures.under_400_mb = peak < 400 ? 'yes' : 'no';
    // Where the peak was: the JS heap (live and not yet collected) and Buffers outside it.
    figures.at_peak_heap_used_mb = round(atPeak.heapUsed / MiB, 0);
    figures.at_peak_heap_total_mb = round(atPeak.heapTotal / MiB, 0);
    figures.at_peak_array_buffers_mb = round(atPeak.arrayBuffers / MiB, 0);
    figures.qemu_peak_rss_mb = round(qemuPeak, 0);
    figures.max_event_loop_lag_ms = round(maxLag, 0);
    figures.max_ping_ms = round(maxPing, 0);
    figures.pings = pings;
    figures.stdout_kept_chars = stdoutBytes;
    figures.read_file_calls = reads;
    figures.list_files_calls = lists;
    figures.upstream_sent_mb = round(upstreamSent / MiB, 1);
    figures.console_log_bytes = consoleBytes[0]! + consoleBytes[1]!;
    return figures;
  } finally {
    await vm.stop().catch(() => undefined);
    await proxy.close();
    for (const s of servers) s.close();
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** The flood suite: `npm run bench -- --only flood`; PADDOCK_BENCH_FLOOD_S sets the duration. */
export const floodSuite: BenchSuite = {
  name: 'flood',
  run(log) {
    const seconds = Number(process.env.PADDOCK_BENCH_FLOOD_S ?? 60);
    if (!Number.isFinite(seconds) || seconds <= 0)
      throw new Error('PADDOCK_BENCH_FLOOD_S must be a positive number of seconds');
    const home = process.env.PADDOCK_TEST_CACHE ?? path.join(os.tmpdir(), 'paddock-test-home');
    return runFlood({ seconds, home, log });
  },
};
