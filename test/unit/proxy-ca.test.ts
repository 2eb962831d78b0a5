/**
 * The egress proxy's per-install CA (issue 16): its files, its reuse, its refusals, and leaves
 * that strict verifiers accept (OpenSSL's -x509_strict, as Python 3.13 sets X509_STRICT).
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect as tlsConnect, TLSSocket, type SecureContext } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalizeHost } from '../../src/main/vm/egress/canonical-host.js';
import { ProxyCa } from '../../src/main/vm/egress/proxy-ca.js';
import { PaddockError } from '../../src/shared/result.js';

const OPENSSL = '/usr/bin/openssl';
const DAY = 24 * 60 * 60 * 1000;

/** The certificate a server with `context` presents, read through a real TLS handshake. */
async function leafOf(context: SecureContext): Promise<X509Certificate> {
  const server = createServer((raw) => {
    const secure = new TLSSocket(raw, { isServer: true, secureContext: context });
    secure.on('error', () => raw.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await new Promise<X509Certificate>((resolve, reject) => {
      const client = tlsConnect({
        port: (server.address() as AddressInfo).port,
        host: '127.0.0.1',
        // Only reading what is presented; verification is what the tests below do.
        rejectUnauthorized: false,
      });
      client.once('error', reject);
      client.once('secureConnect', () => {
        const cert = client.getPeerX509Certificate();
        client.destroy();
        if (cert) resolve(cert);
        else reject(new Error('no certificate presented'));
      });
    });
  } finally {
    await new Promise((r) => server.close(r));
  }
}

describe('ProxyCa', () => {
  let work: string;
  let dir: string;
  let ca: ProxyCa;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'pdk-proxy-ca-'));
    dir = path.join(work, 'ca');
    ca = await ProxyCa.open(dir);
  }, 30_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('keeps its key 0600 in a 0700 folder, next to the certificate', async () => {
    const keyPem = await readFile(path.join(dir, 'proxy-ca-key.pem'), 'utf8');
    expect(keyPem).toMatch(/-----BEGIN PRIVATE KEY-----/);
    expect(await readFile(path.join(dir, 'proxy-ca.pem'), 'utf8')).toBe(ca.certPem);
    if (process.platform !== 'win32') {
      expect((await stat(dir)).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(dir, 'proxy-ca-key.pem'))).mode & 0o777).toBe(0o600);
    }
    // Nothing else: no temporary files left behind.
    expect((await readdir(dir)).sort()).toEqual(['proxy-ca-key.pem', 'proxy-ca.pem']);
    // The key is not reachable from the object.
    expect(JSON.stringify(ca)).not.toContain('PRIVATE KEY');
    expect(Object.keys(ca)).toEqual(['certPem']);
  });

  it('is a CA for this computer only, valid from two days ago for ten years', () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain('CN=Paddock proxy CA');
    expect(cert.subject).toContain('O=Paddock (this computer only)');
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.verify(cert.publicKey)).toBe(true);
    const from = Date.parse(cert.validFrom);
    expect(Math.abs(Date.now() - 2 * DAY - from)).toBeLessThan(DAY / 12);
    expect(Date.parse(cert.validTo) - from).toBeGreaterThan(3650 * DAY);
    if (existsSync(OPENSSL)) {
      const text = execFileSync(OPENSSL, ['x509', '-noout', '-text'], { input: ca.certPem });
      expect(String(text)).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
      expect(String(text)).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
      expect(String(text)).toMatch(/Subject Key Identifier/);
    }
  });

  it('reopens with the same certificate', async () => {
    const again = await ProxyCa.open(dir);
    expect(again.certPem).toBe(ca.certPem);
  });

  it('refuses a corrupt or mismatched pair, naming the files to delete', async () => {
    const corrupt = path.join(work, 'corrupt');
    await cp(dir, corrupt, { recursive: true });
    await writeFile(path.join(corrupt, 'proxy-ca-key.pem'), 'not a key\n');
    const err = await ProxyCa.open(corrupt).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaddockError);
    expect((err as PaddockError).code).toBe('PROXY_CA_INVALID');
    expect((err as PaddockError).message).toContain(path.join(corrupt, 'proxy-ca-key.pem'));

    const other = path.join(work, 'other');
    await ProxyCa.open(other);
    const mismatched = path.join(work, 'mismatched');
    await cp(dir, mismatched, { recursive: true });
    await cp(path.join(other, 'proxy-ca-key.pem'), path.join(mismatched, 'proxy-ca-key.pem'));
    await expect(ProxyCa.open(mismatched)).rejects.toThrow(/does not belong to its certificate/);
    // Not replaced: the guests trust the old certificate.
    expect(await readFile(path.join(mismatched, 'proxy-ca.pem'), 'utf8')).toBe(ca.certPem);

    const keyless = path.join(work, 'keyless');
    await cp(dir, keyless, { recursive: true });
    await rm(path.join(keyless, 'proxy-ca-key.pem'));
    await expect(ProxyCa.open(keyless)).rejects.toThrow(/proxy-ca-key\.pem is missing/);
  });

  it('gives a key without a certificate a certificate (a crash between the two writes)', async () => {
    const half = path.join(work, 'half');
    await cp(dir, half, { recursive: true });
    await rm(path.join(half, 'proxy-ca.pem'));
    const reopened = await ProxyCa.open(half);
    const fresh = new X509Certificate(reopened.certPem);
    expect(fresh.publicKey.equals(new X509Certificate(ca.certPem).publicKey)).toBe(true);
  });

  it('issues leaves that strict verification accepts, for a name and for addresses', async () => {
    const caCert = new X509Certificate(ca.certPem);
    const cases = [
      { host: 'api.example.com', san: 'DNS:api.example.com', check: ['-verify_hostname'] },
      { host: '127.0.0.1', san: 'IP Address:127.0.0.1', check: ['-verify_ip'] },
      { host: '[2001:db8::1]', san: 'IP Address:2001:DB8:0:0:0:0:0:1', check: ['-verify_ip'] },
    ];
    for (const c of cases) {
      const host = canonicalizeHost(c.host);
      const leaf = await leafOf(ca.secureContextFor(host));
      expect(leaf.subjectAltName).toBe(c.san);
      expect(leaf.ca).toBe(false);
      expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
      expect(leaf.verify(caCert.publicKey)).toBe(true);
      expect(leaf.checkIssued(caCert)).toBe(true);
      if (host.kind === 'name') expect(leaf.checkHost(host.host)).toBe(host.host);
      else expect(leaf.checkIP(host.host)).toBe(host.host);
      const from = Date.parse(leaf.validFrom);
      expect(Math.abs(Date.now() - 2 * DAY - from)).toBeLessThan(DAY / 12);
      expect(Date.parse(leaf.validTo) - from).toBe(32 * DAY);
      if (!existsSync(OPENSSL)) continue;
      const leafFile = path.join(work, 'leaf.pem');
      await writeFile(leafFile, leaf.toString());
      const out = execFileSync(
        OPENSSL,
        [
          'verify',
          '-x509_strict',
          '-purpose',
          'sslserver',
          '-CAfile',
          path.join(dir, 'proxy-ca.pem'),
          ...c.check,
          host.host,
          leafFile,
        ],
        { encoding: 'utf8' },
      );
      expect(out.trim()).toBe(`${leafFile}: OK`);
    }
  });

  it('reuses one context per host', () => {
    const host = canonicalizeHost('cached.example');
    expect(ca.secureContextFor(host)).toBe(
      ca.secureContextFor(canonicalizeHost('CACHED.example.')),
    );
    expect(ca.secureContextFor(host)).not.toBe(
      ca.secureContextFor(canonicalizeHost('other.example')),
    );
  });
});
