import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:https';
import { connect as netConnect, type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Allowlist } from '../src/main/vm/egress/allowlist.js';
import { canonicalizeHost } from '../src/main/vm/egress/canonical-host.js';
import { EgressProxy } from '../src/main/vm/egress/proxy.js';
import { ProxyCa } from '../src/main/vm/egress/proxy-ca.js';
import { median, round } from './stats.js';
import type { BenchSuite } from './suites.js';

const RUNS = 40;

/**
 * One HTTPS request through the proxy as the guest makes it: CONNECT, TLS (with `ca` trusted),
 * a request with the placeholder in Authorization, the whole response read. Milliseconds.
 */
async function request(proxyPort: number, host: string, port: number, ca: string, auth: string) {
  const t0 = performance.now();
  const raw = netConnect(proxyPort, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    raw.once('error', reject);
    raw.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      raw.off('data', onData);
      raw.pause();
      if (!/^HTTP\/1\.1 200/.test(head)) reject(new Error(head.split('\r\n')[0]));
      else resolve();
    };
    raw.on('data', onData);
  });
  const tls = tlsConnect({ socket: raw, ca, servername: host });
  await new Promise<void>((resolve, reject) => {
    tls.once('secureConnect', resolve);
    tls.once('error', reject);
  });
  tls.write(
    `GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nAuthorization: Bearer ${auth}\r\nConnection: close\r\n\r\n`,
  );
  let body = '';
  for await (const d of tls) body += (d as Buffer).toString();
  if (!body.startsWith('HTTP/1.1 200')) throw new Error(body.split('\r\n')[0]);
  return performance.now() - t0;
}

/**
 * Issue 16's cost: an HTTPS request to a host with a secret (the proxy terminates TLS with its
 * own CA, swaps the placeholder, opens its own verified TLS upstream) against the same request
 * through today's opaque tunnel; the per-install CA's first start and a leaf certificate.
 */
export const secretsSuite: BenchSuite = {
  name: 'secrets',
  async run(log) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pdk-bench-secrets-'));
    const figures: Record<string, number> = {};
    try {
      let t = performance.now();
      const ca = await ProxyCa.open(path.join(dir, 'ca'));
      figures.secrets_ca_create_ms = round(performance.now() - t);
      t = performance.now();
      ca.secureContextFor(canonicalizeHost('leaf.example'));
      figures.secrets_leaf_cert_ms = round(performance.now() - t);
      const upstreamCa = await ProxyCa.open(path.join(dir, 'upstream'));
      const host = 'localhost';
      const server = createServer(
        // Node's TLS server takes a context only through SNI (clients here send the name).
        {
          SNICallback: (_name, cb) => cb(null, upstreamCa.secureContextFor(canonicalizeHost(host))),
        },
        (_req, res) => res.end('ok'),
      );
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      const proxy = new EgressProxy({
        allowlist: new Allowlist([`${host}:${port}`]),
        onDecision: () => {},
      });
      const { port: proxyPort } = await proxy.listen(0);
      const placeholder = 'paddock_ph_0123456789abcdef0123456789abcdef';
      const measure = async (intercepting: boolean): Promise<number> => {
        proxy.setIntercept(
          intercepting
            ? {
                ca,
                upstreamCa: [upstreamCa.certPem],
                policy: {
                  secrets: [
                    {
                      name: 'bench',
                      envName: 'BENCH_TOKEN',
                      placeholder,
                      value: 'real-value-never-in-the-guest',
                      hosts: [`${host}:${port}`],
                      inBody: false,
                      pin: true,
                    },
                  ],
                  pinHosts: [],
                },
              }
            : undefined,
        );
        const trust = intercepting ? ca.certPem : upstreamCa.certPem;
        await request(proxyPort, host, port, trust, placeholder); // warm-up
        const times: number[] = [];
        for (let i = 0; i < RUNS; i++)
          times.push(await request(proxyPort, host, port, trust, placeholder));
        return median(times);
      };
      const tunnel = await measure(false);
      const intercepted = await measure(true);
      figures.secrets_tunnel_median_ms = round(tunnel);
      figures.secrets_intercept_median_ms = round(intercepted);
      figures.secrets_intercept_overhead_ms = round(intercepted - tunnel);
      log(`${RUNS} HTTPS requests each, new connection per request, loopback`);
      await proxy.close();
      server.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    return figures;
  },
};
