/**
 * The per-install certificate authority the egress proxy terminates TLS with, for the hosts of a
 * session's secrets and its pinned hosts only (issue 16). Its certificate goes into every guest's
 * trust stores; its key stays in this object (and its file, 0600, in a 0700 folder) and is only
 * used to sign the short-lived leaf certificates the proxy shows the guest.
 */

import { generateKeyPair, randomBytes, X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { PaddockError } from '../../../shared/result.js';
import { parseIpv6, type CanonicalHost } from './canonical-host.js';

const generateRsa = promisify(generateKeyPair);

const KEY_FILE = 'proxy-ca-key.pem';
const CERT_FILE = 'proxy-ca.pem';
const DAY_MS = 24 * 60 * 60 * 1000;
/** Guest clocks drift under emulation (TCG), so certificates start this long before now. */
const BACKDATE_MS = 2 * DAY_MS;
const CA_LIFETIME_MS = 10 * 365 * DAY_MS;
const LEAF_LIFETIME_MS = 30 * DAY_MS;
/** Leaves are cached per host; a session talks to a handful of intercepted hosts. */
const MAX_CACHED_CONTEXTS = 256;
/** RFC 5280's upper bound for a common name; longer host names go in the SAN only. */
const MAX_COMMON_NAME = 64;

const CA_ATTRIBUTES = [
  { name: 'commonName', value: 'Paddock proxy CA' },
  { name: 'organizationName', value: 'Paddock (this computer only)' },
];

interface RsaPair {
  privatePem: string;
  publicPem: string;
}

async function newRsaPair(): Promise<RsaPair> {
  const { privateKey, publicKey } = await generateRsa('rsa', { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** A random positive serial in minimal DER form (X509_STRICT refuses zero and negative ones). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

/** Writes a file through a temporary file and a rename, so a crash never leaves half of it. */
async function writeAtomically(file: string, text: string, mode: number): Promise<void> {
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, text, { mode, flag: 'wx' });
    await chmod(temp, mode);
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The proxy's CA. Open it once per install with {@link ProxyCa.open}; ask it for a
 * {@link SecureContext} per intercepted host.
 */
export class ProxyCa {
  /** The CA certificate (PEM), for the guests' trust stores. */
  readonly certPem: string;
  // SECURITY: the CA key is private to this object and only ever used to sign leaves.
  readonly #caKey: forge.pki.rsa.PrivateKey;
  readonly #caCert: forge.pki.Certificate;
  readonly #caKeyId: string;
  readonly #leafKeyPem: string;
  readonly #leafPublicKey: forge.pki.rsa.PublicKey;
  readonly #contexts = new Map<string, SecureContext>();

  private constructor(certPem: string, keyPem: string, leaf: RsaPair) {
    this.certPem = certPem;
    this.#caCert = forge.pki.certificateFromPem(certPem);
    this.#caKey = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
    const ski = this.#caCert.getExtension('subjectKeyIdentifier') as
      { subjectKeyIdentifier?: string } | undefined;
    this.#caKeyId = ski?.subjectKeyIdentifier
      ? forge.util.hexToBytes(ski.subjectKeyIdentifier)
      : this.#caCert.generateSubjectKeyIdentifier().getBytes();
    this.#leafKeyPem = leaf.privatePem;
    this.#leafPublicKey = forge.pki.publicKeyFromPem(leaf.publicPem) as forge.pki.rsa.PublicKey;
  }

  /**
   * Loads the CA from `dir` (`proxy-ca-key.pem`, `proxy-ca.pem`), or creates it there when
   * neither file exists. A key without a certificate (a crash between the two writes) gets a new
   * certificate. Throws PaddockError `PROXY_CA_INVALID`, naming the files to delete, when the
   * files cannot be read as a CA whose key matches its certificate: it is never replaced
   * silently, since the guests of running sessions trust the old one.
   */
  static async open(dir: string): Promise<ProxyCa> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // SECURITY: the folder holds the CA's key; nobody else may list or enter it.
    await chmod(dir, 0o700);
    const keyPath = path.join(dir, KEY_FILE);
    const certPath = path.join(dir, CERT_FILE);
    const [keyText, certText] = await Promise.all([readIfExists(keyPath), readIfExists(certPath)]);
    const leaf = await newRsaPair();
    const invalid = (why: string): PaddockError =>
      new PaddockError(
        'PROXY_CA_INVALID',
        `Paddock's proxy certificate authority in ${dir} cannot be used: ${why}. Delete ${keyPath} and ${certPath} to make a new one (running sessions must then be restarted).`,
      );

    if (keyText === undefined && certText !== undefined) {
      throw invalid(`its key file ${keyPath} is missing`);
    }
    let keyPem = keyText;
    if (keyPem === undefined) {
      keyPem = (await newRsaPair()).privatePem;
      // SECURITY: the key file is the person's alone (0600), written whole or not at all.
      await writeAtomically(keyPath, keyPem, 0o600);
    } else {
      await chmod(keyPath, 0o600);
    }
    let certPem = certText;
    if (certPem === undefined) {
      certPem = buildCaCertificate(keyPem, invalid);
      await writeAtomically(certPath, certPem, 0o644);
    }
    checkPair(certPem, keyPem, invalid);
    try {
      return new ProxyCa(certPem, keyPem, leaf);
    } catch (err) {
      throw invalid(`it could not be read (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  /**
   * A TLS server context with a leaf certificate for `host` (a DNS name or an IP address),
   * signed by this CA. Cached per host; every leaf of this instance shares one key.
   */
  secureContextFor(host: CanonicalHost): SecureContext {
    const key = `${host.kind}:${host.host}`;
    const cached = this.#contexts.get(key);
    if (cached) {
      // Most recently used last, so the first key is the one to evict.
      this.#contexts.delete(key);
      this.#contexts.set(key, cached);
      return cached;
    }
    const context = createSecureContext({ key: this.#leafKeyPem, cert: this.#leafPem(host) });
    this.#contexts.set(key, context);
    if (this.#contexts.size > MAX_CACHED_CONTEXTS) {
      const oldest = this.#contexts.keys().next().value;
      if (oldest !== undefined) this.#contexts.delete(oldest);
    }
    return context;
  }

  #leafPem(host: CanonicalHost): string {
    const cert = forge.pki.createCertificate();
    cert.publicKey = this.#leafPublicKey;
    cert.serialNumber = randomSerial();
    const now = Date.now();
    cert.validity.notBefore = new Date(now - BACKDATE_MS);
    const notAfter = Math.min(now + LEAF_LIFETIME_MS, this.#caCert.validity.notAfter.getTime());
    cert.validity.notAfter = new Date(notAfter);
    const name = host.host;
    cert.setSubject([
      { name: 'organizationName', value: 'Paddock (this computer only)' },
      ...(name.length <= MAX_COMMON_NAME ? [{ name: 'commonName', value: name }] : []),
    ]);
    cert.setIssuer(this.#caCert.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: host.kind === 'name' ? [{ type: 2, value: host.host }] : ipAltNames(host),
      },
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: this.#caKeyId },
    ]);
    cert.sign(this.#caKey, forge.md.sha256.create());
    return forge.pki.certificateToPem(cert);
  }
}

/**
 * The iPAddress SANs of an address leaf. forge reads IPv6 only as eight hex groups, and an
 * IPv4-mapped address also gets its IPv4 SAN (a client may compare either form).
 */
function ipAltNames(host: CanonicalHost): { type: number; ip: string }[] {
  if (host.kind === 'ipv4') return [{ type: 7, ip: host.host }];
  const groups = parseIpv6(host.host) ?? [];
  const names = [{ type: 7, ip: groups.map((g) => g.toString(16)).join(':') }];
  if (host.ipv4 !== undefined && host.host.startsWith('::ffff:'))
    names.push({ type: 7, ip: host.ipv4 });
  return names;
}

/** A self-signed CA certificate for the key in `keyPem`. */
function buildCaCertificate(keyPem: string, invalid: (why: string) => PaddockError): string {
  let key: forge.pki.rsa.PrivateKey;
  try {
    key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  } catch {
    throw invalid('its key file is not a readable RSA private key');
  }
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = randomSerial();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - BACKDATE_MS);
  cert.validity.notAfter = new Date(now + CA_LIFETIME_MS);
  cert.setSubject(CA_ATTRIBUTES);
  cert.setIssuer(CA_ATTRIBUTES);
  const keyId = cert.generateSubjectKeyIdentifier().getBytes();
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: keyId },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/** Checks that `certPem` is a current CA certificate whose key is `keyPem`. */
function checkPair(certPem: string, keyPem: string, invalid: (why: string) => PaddockError): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw invalid('its certificate file is not a readable certificate');
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    throw invalid('its key file is not a readable private key');
  }
  if (!matches) throw invalid('its key does not belong to its certificate');
  if (!cert.ca) throw invalid('its certificate is not a certificate authority');
  if (Date.parse(cert.validTo) <= Date.now()) throw invalid(`it expired on ${cert.validTo}`);
}
