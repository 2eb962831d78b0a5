import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Vm } from '../src/main/vm/backend.js';
import { Allowlist } from '../src/main/vm/egress/allowlist.js';
import { EgressProxy } from '../src/main/vm/egress/proxy.js';
import { buildImage, findImage } from '../src/main/vm/image.js';
import { QemuBackend } from '../src/main/vm/qemu/backend.js';
import { WarmPool } from '../src/main/vm/warm-pool.js';
import { median, percentile, round } from './stats.js';
import type { BenchSuite } from './suites.js';

const home = process.env.PADDOCK_TEST_CACHE ?? path.join(os.tmpdir(), 'paddock-test-home');

async function drain(vm: Vm, shell: string): Promise<{ bytes: number; ms: number; code: number }> {
  const t0 = performance.now();
  const h = vm.exec({ shell });
  h.stdin.end();
  let bytes = 0;
  h.stdout.on('data', (d: Buffer) => (bytes += d.length));
  h.stderr.resume();
  const r = await h.result;
  return { bytes, ms: performance.now() - t0, code: r.exitCode };
}

function get(port: number, proxyPort?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      proxyPort
        ? { host: '127.0.0.1', port: proxyPort, path: `http://127.0.0.1:${port}/`, agent: false }
        : { host: '127.0.0.1', port, path: '/', agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve());
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The sandbox figures of the sandbox issue: image, boot, round trip, throughput, checkpoint, proxy. */
export const vmSuite: BenchSuite = {
  name: 'vm',
  async run(log) {
    const figures: Record<string, number | string> = {};
    const t0 = performance.now();
    const existing = await findImage(home);
    const image = existing ?? (await buildImage({ dataDir: home }));
    if (!existing) figures.image_build_s = round((performance.now() - t0) / 1000, 1);
    figures.image_recorded_build_s = image.manifest.buildSeconds;
    let disk = 0;
    for (const f of ['vmlinux', 'initrd.img', 'rootfs.img']) {
      const st = await fs.stat(path.join(image.dir, f));
      disk += st.blocks * 512;
    }
    figures.image_size_mib_on_disk = round(disk / 2 ** 20, 1);

    const backend = new QemuBackend();
    const probe = await backend.probe(image.dir);
    figures.accel = probe.accel;
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'paddock-bench-'));
    const spec = (i: number) => ({
      imageDir: image.dir,
      overlayPath: path.join(work, `overlay-${i}.qcow2`),
      runDir: path.join(work, `run-${i}`),
      shares: [],
      cpus: 2,
      memoryMb: 512,
      accel: probe.accel,
    });
    try {
      const boots: number[] = [];
      for (let i = 0; i < 3; i++) {
        const b0 = performance.now();
        const vm = await backend.start(spec(i));
        boots.push(performance.now() - b0);
        await vm.stop();
      }
      figures[`cold_boot_to_ready_ms_${probe.accel}`] = round(median(boots), 0);
      log(`boots: ${boots.map((b) => round(b, 0)).join(', ')} ms`);

      const vm = await backend.start(spec(9));
      const rtt: number[] = [];
      for (let i = 0; i < 200; i++) {
        const s = performance.now();
        const h = vm.exec({ argv: ['true'] });
        h.stdin.end();
        h.stdout.resume();
        h.stderr.resume();
        await h.result;
        rtt.push(performance.now() - s);
      }
      figures.exec_true_median_ms = round(median(rtt));
      figures.exec_true_p99_ms = round(percentile(rtt, 99));
      const pings: number[] = [];
      for (let i = 0; i < 200; i++) pings.push(await vm.ping());
      figures.channel_ping_median_ms = round(median(pings));

      const big = await drain(vm, 'head -c 104857600 /dev/zero');
      figures.stdout_100mb_mb_per_s = round(big.bytes / 2 ** 20 / (big.ms / 1000), 1);

      const c0 = performance.now();
      await vm.checkpoint('bench');
      figures.checkpoint_ms = round(performance.now() - c0, 0);
      const r0 = performance.now();
      await vm.restore('bench');
      await vm.ping();
      figures.restore_to_ready_ms = round(performance.now() - r0, 0);
      await vm.stop();

      // Warm start: a VM booted ahead for the spec, taken when the session starts.
      const pool = new WarmPool({ backend, dir: path.join(work, 'warm'), refill: false });
      const warmSpec = {
        imageDir: image.dir,
        shares: [],
        cpus: 2,
        memoryMb: 512,
        accel: probe.accel,
      };
      try {
        const takes: number[] = [];
        for (let i = 0; i < 3; i++) {
          pool.prewarm(warmSpec);
          if (!(await pool.whenWarm(warmSpec))) throw new Error('the warm VM did not boot');
          const w0 = performance.now();
          const warm = await pool.take(warmSpec);
          await warm!.ping();
          takes.push(performance.now() - w0);
          await warm!.stop();
        }
        figures.warm_take_to_first_reply_ms = round(median(takes));
      } finally {
        await pool.dispose();
      }
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }

    // Proxy overhead: the same loopback request direct and through the egress proxy.
    const server = http.createServer((_q, s) => s.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const proxy = new EgressProxy({
      allowlist: new Allowlist([`127.0.0.1:${port}`]),
      onDecision: () => undefined,
    });
    const { port: proxyPort } = await proxy.listen(0);
    const direct: number[] = [];
    const proxied: number[] = [];
    for (let i = 0; i < 300; i++) {
      let s = performance.now();
      await get(port);
      direct.push(performance.now() - s);
      s = performance.now();
      await get(port, proxyPort);
      proxied.push(performance.now() - s);
    }
    figures.proxy_direct_median_ms = round(median(direct));
    figures.proxy_via_proxy_median_ms = round(median(proxied));
    figures.proxy_overhead_median_ms = round(median(proxied) - median(direct));
    await proxy.close();
    server.close();
    return figures;
  },
};
