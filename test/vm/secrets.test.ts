/**
 * Secrets the VM never sees (issue 16), in a real VM: the guest has a placeholder in its
 * environment; the egress proxy terminates TLS (with the per-install CA the guest was made to
 * trust) only for the secret's host and its pins, swaps the placeholder for the value there, and
 * nowhere else. The value is then searched for in the guest's environment, its files and a dump
 * of its whole memory taken through QEMU; the CA's private key likewise.
 */
import { spawnSync } from 'node:child_process';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalizeHost } from '../../src/main/vm/egress/canonical-host.js';
import { HOST_LOOPBACK_NAME } from '../../src/main/vm/egress/allowlist.js';
import type { EgressDecision } from '../../src/main/vm/egress/proxy.js';
import { ProxyCa } from '../../src/main/vm/egress/proxy-ca.js';
import type { ProxySecret } from '../../src/main/vm/egress/secret-types.js';
import { QemuBackend, type QemuVm } from '../../src/main/vm/qemu/backend.js';
import { GUEST_PROXY_CA_PATH, Sandbox } from '../../src/main/vm/sandbox.js';
import { paddock } from '../helpers/cli.js';
import { execOutput } from '../helpers/exec-output.js';
import { startRun, toolResults } from '../helpers/paddock-run.js';
import { ensureTestImage, vmTestHome } from '../helpers/vm-image.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

/** What surrounds `needle` in `hay` (printable), to say where a leak came from. */
function around(hay: Buffer, needle: string): string {
  const at = hay.indexOf(needle);
  if (at < 0) return 'not found';
  return hay
    .subarray(Math.max(0, at - 300), at + needle.length + 100)
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, '.');
}

interface Seen {
  authorization: string | undefined;
  url: string;
  body: string;
}

/** A loopback HTTPS server (certificate from the test CA) that records and echoes requests. */
async function echoServer(ca: ProxyCa): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer(
    // Node's TLS server takes a context only through SNI (the proxy sends the name).
    {
      SNICallback: (_name, cb) =>
        cb(null, ca.secureContextFor(canonicalizeHost(HOST_LOOPBACK_NAME))),
    },
    (req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const s = {
          authorization: req.headers.authorization,
          url: req.url ?? '',
          body: Buffer.concat(chunks).toString(),
        };
        seen.push(s);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(s));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

const TEST_CA_IN_GUEST = '/root/test-ca.pem';

describe('secrets through the egress proxy (real VM)', () => {
  let work: string;
  let proxyCa: ProxyCa;
  let testCa: ProxyCa;
  let servers: Awaited<ReturnType<typeof echoServer>>[];
  let sandbox: Sandbox;
  const decisions: EgressDecision[] = [];
  // Distinctive: found by a byte search only if it really is there.
  const value = `ghs_REAL${randomBytes(18).toString('hex')}`;
  const placeholder = `paddock_ph_${randomBytes(16).toString('hex')}`;
  const url = (i: number, p = '/echo'): string =>
    `https://${HOST_LOOPBACK_NAME}:${servers[i]!.port}${p}`;
  const sh = async (cmd: string, timeoutMs = 120_000) =>
    execOutput(await sandbox.exec({ shell: cmd, timeoutMs }));

  beforeAll(async () => {
    const image = await ensureTestImage();
    work = await mkdtemp(path.join(os.tmpdir(), 'pdk-secrets-'));
    proxyCa = await ProxyCa.open(path.join(work, 'proxy-ca'));
    // The upstream servers' own CA, trusted by the host's proxy for this test only.
    testCa = await ProxyCa.open(path.join(work, 'test-ca'));
    servers = [await echoServer(testCa), await echoServer(testCa), await echoServer(testCa)];
    const secret: ProxySecret = {
      name: 'gh',
      envName: 'GH_TOKEN',
      placeholder,
      value,
      hosts: [`${HOST_LOOPBACK_NAME}:${servers[0]!.port}`],
      inBody: true,
      pin: true,
    };
    sandbox = new Sandbox({
      backend: new QemuBackend(),
      imageDir: image.dir,
      sessionDir: path.join(work, 'session'),
      runDir: work,
      shares: [],
      // All three reachable; only the first has a secret (and so a pin).
      allowHosts: servers.map((s) => `${HOST_LOOPBACK_NAME}:${s.port}`),
      memoryMb: 512,
      cpus: 2,
      onEgress: (d) => decisions.push(d),
      intercept: {
        ca: proxyCa,
        policy: { secrets: [secret], pinHosts: [] },
        upstreamCa: [testCa.certPem],
      },
      guestEnv: { GH_TOKEN: placeholder },
    });
  }, 600_000);

  afterAll(async () => {
    await sandbox?.stop();
    for (const s of servers ?? []) s.server.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the guest sees the placeholder; the secret host gets the value, another host the placeholder', async () => {
    const env = await sh('env');
    expect(env.out).toContain(`GH_TOKEN=${placeholder}`);
    expect(env.out).not.toContain(value);

    const toSecretHost = await sh(
      `curl -sS --fail -H "Authorization: Bearer $GH_TOKEN" "${url(0, '/echo?token=$GH_TOKEN')}"`,
    );
    expect(toSecretHost.err).toBe('');
    expect(servers[0]!.seen.at(-1)).toMatchObject({
      authorization: `Bearer ${value}`,
      url: `/echo?token=${value}`,
    });
    // The echo comes back with the value replaced by the placeholder again.
    expect(toSecretHost.out).toContain(placeholder);
    expect(toSecretHost.out).not.toContain(value);

    // A body, with curl's own TLS through python's too: both trust the proxy CA from the bundle.
    const py = await sh(
      `python3 -c "import os,urllib.request as u; r=u.urlopen(u.Request('${url(0)}', data=('k='+os.environ['GH_TOKEN']).encode(), headers={'Authorization':'Bearer '+os.environ['GH_TOKEN']})); print(r.read().decode())"`,
    );
    expect(py.code, py.err).toBe(0);
    expect(servers[0]!.seen.at(-1)?.body).toBe(`k=${value}`);
    expect(py.out).not.toContain(value);

    // Not intercepted: the guest sees the server's own certificate, from the test CA.
    await sandbox.writeFile(TEST_CA_IN_GUEST, Buffer.from(testCa.certPem));
    const toOther = await sh(
      `curl -sS --fail --cacert ${TEST_CA_IN_GUEST} -H "Authorization: Bearer $GH_TOKEN" -d "k=$GH_TOKEN" "${url(1)}"`,
    );
    expect(toOther.err).toBe('');
    expect(servers[1]!.seen.at(-1)).toMatchObject({
      authorization: `Bearer ${placeholder}`,
      body: `k=${placeholder}`,
    });
    expect(toOther.out).not.toContain(value);

    const swapped = decisions.filter((d) => d.secrets?.includes('gh'));
    expect(swapped.length).toBeGreaterThanOrEqual(2);
    expect(swapped.every((d) => d.intercepted && d.port === servers[0]!.port)).toBe(true);
    expect(decisions.some((d) => d.port === servers[1]!.port && d.secrets?.length)).toBe(false);
    expect(JSON.stringify(decisions)).not.toContain(value);
  }, 300_000);

  it('refuses another bearer on the pinned host (and logs it); the placeholder passes', async () => {
    const before = servers[0]!.seen.length;
    const other = await sh(
      `curl -sS -o /tmp/body -w '%{http_code}' -H "Authorization: Bearer ghp_attackers_own_token" "${url(0)}"; cat /tmp/body >&2`,
    );
    expect(other.out).toBe('403');
    expect(other.err).toMatch(/pinned/);
    expect(servers[0]!.seen.length).toBe(before);
    expect(decisions.some((d) => d.pinRefused === true && d.allowed === false)).toBe(true);

    const cookie = await sh(`curl -sS -o /dev/null -w '%{http_code}' -b "sid=abc" "${url(0)}"`);
    expect(cookie.out).toBe('403');

    const mine = await sh(
      `curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $GH_TOKEN" "${url(0)}"`,
    );
    expect(mine.out).toBe('200');
    expect(servers[0]!.seen.length).toBe(before + 1);
  }, 300_000);

  it('does not intercept a host with neither a secret nor a pin (the guest sees its own certificate)', async () => {
    const testCaInGuest = TEST_CA_IN_GUEST;
    const direct = await sh(`curl -sS --fail --cacert ${testCaInGuest} "${url(2)}"`);
    expect(direct.code, direct.err).toBe(0);
    const viaProxyCa = await sh(`curl -sS --cacert ${GUEST_PROXY_CA_PATH} "${url(2)}"`);
    expect(viaProxyCa.code).not.toBe(0);
    expect(decisions.some((d) => d.port === servers[2]!.port && d.intercepted)).toBe(false);
    // And the secret's host is intercepted: only the proxy CA verifies it there.
    const mitm = await sh(`curl -sS --cacert ${testCaInGuest} "${url(0)}"`);
    expect(mitm.code).not.toBe(0);
  }, 300_000);

  it('the value and the CA key are nowhere in the guest: files, environment, memory', async () => {
    const keyPem = readFileSync(path.join(work, 'proxy-ca', 'proxy-ca-key.pem'), 'utf8');
    const jwk = createPrivateKey(keyPem).export({ format: 'jwk' });
    const privateExponent = Buffer.from(jwk.d!, 'base64url');
    const keyLine = keyPem.split('\n')[5]!;
    expect(keyLine.length).toBeGreaterThan(40);

    // Files: whatever the guest wrote is in the session's disk layer (searched on the host, so
    // the test itself never sends the value in); tmpfs lives in memory, searched below.
    const marker = `MARK${randomBytes(12).toString('hex')}`;
    await sh(`echo ${marker} > /root/marker && sync`);
    const layer = await readFile(path.join(work, 'session', 'overlay.qcow2'));
    // The control: a file the guest just wrote is found there.
    expect(layer.includes(marker)).toBe(true);
    for (const needle of [Buffer.from(value), Buffer.from(keyLine), privateExponent])
      expect(layer.includes(needle)).toBe(false);
    // Environment of every process.
    const envs = await sh(`cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | sort -u`);
    expect(envs.out).toContain(placeholder);
    expect(envs.out).not.toContain(value);

    // The marker the guest certainly holds (its page cache) shows the dump is its memory.
    const dump = path.join(work, 'guest-memory.elf');
    const vm = (await sandbox.ready()) as QemuVm;
    await vm.dumpMemory(dump);
    const mem = await readFile(dump);
    expect(mem.length).toBeGreaterThan(256 * 1024 * 1024);
    expect(mem.includes(marker)).toBe(true);
    expect(mem.includes(placeholder)).toBe(true);
    expect(mem.includes(value), around(mem, value)).toBe(false);
    expect(mem.includes(Buffer.from(value, 'utf16le'))).toBe(false);
    expect(mem.includes(privateExponent)).toBe(false);
    expect(mem.includes(keyLine)).toBe(false);
    await rm(dump, { force: true });
  }, 600_000);
});

describe('paddock run --secret (real VM, real SDK against the scripted API)', () => {
  let api: MockMessagesApi;
  let work: string;
  let testCa: ProxyCa;
  let server: Awaited<ReturnType<typeof echoServer>>;
  const name = `e2e-${randomBytes(3).toString('hex')}`;
  const value = `ghs_CLI${randomBytes(18).toString('hex')}`;
  const cli = (args: string[], input?: string) =>
    paddock(args, { PADDOCK_HOME: vmTestHome }, input);

  beforeAll(async () => {
    await ensureTestImage();
    api = await startMessagesApi({ apiKey: 'test-key' });
    work = await mkdtemp(path.join(os.tmpdir(), 'pdk-secrets-cli-'));
    testCa = await ProxyCa.open(path.join(work, 'test-ca'));
    await writeFile(path.join(work, 'test-ca.pem'), testCa.certPem);
    server = await echoServer(testCa);
  }, 600_000);
  afterAll(async () => {
    cli(['secrets', 'remove', name]);
    server?.server.close();
    await api?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('stores the secret sealed, gives the agent a placeholder, and the proxy swaps it for its host only', async () => {
    const host = `${HOST_LOOPBACK_NAME}:${server.port}`;
    const added = cli(['secrets', 'add', name, '--host', host, '--env', 'E2E_TOKEN'], `${value}\n`);
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout + added.stderr).not.toContain(value);

    api.enqueue(
      {
        reply: {
          content: [
            {
              type: 'tool_use',
              name: 'bash',
              input: {
                command: `curl -sS --fail -H "Authorization: Bearer $E2E_TOKEN" https://${host}/echo; echo; echo "var=$E2E_TOKEN"`,
              },
            },
          ],
          stop_reason: 'tool_use',
        },
      },
      { reply: { content: [{ type: 'text', text: 'Done.' }], stop_reason: 'end_turn' } },
    );
    // The proxy's upstream trust: the test server's CA, as a person's system roots would be.
    const run = startRun(['--secret', name, 'call the service'], api, {
      NODE_EXTRA_CA_CERTS: path.join(work, 'test-ca.pem'),
    });
    const code = await run.exited;
    expect(code, run.stderr()).toBe(0);

    expect(server.seen.at(-1)?.authorization).toBe(`Bearer ${value}`);
    // What the model got back: the placeholder (in the echo and the variable), never the value.
    const [result] = toolResults(api, 1);
    const placeholder = /var=(paddock_ph_[0-9a-f]+)/.exec(String(result?.content))?.[1];
    expect(placeholder, String(result?.content)).toBeDefined();
    expect(String(result?.content)).toContain(`Bearer ${placeholder}`);
    const everything = JSON.stringify(api.requests.map((r) => r.body));
    expect(everything).not.toContain(value);
    // The system prompt names the variable and its host, not a placeholder or the value.
    expect(JSON.stringify(api.requests[0]!.body.system)).toContain('$E2E_TOKEN');
    expect(run.stderr()).not.toContain(value);
    expect(JSON.stringify(run.events)).not.toContain(value);

    // The egress log names the secret; the database and the logs hold no value.
    const session = run.events.find((e) => e.type === 'session');
    const rows = cli(['secrets', 'list', '--json']);
    expect(rows.stdout).toContain(name);
    expect(rows.stdout).not.toContain(value);
    for (const f of ['paddock.db', 'paddock.db-wal']) {
      const bytes = await readFile(path.join(vmTestHome, f)).catch(() => Buffer.alloc(0));
      expect(bytes.includes(value), f).toBe(false);
    }
    const logs = spawnSync('grep', ['-rlsF', value, path.join(vmTestHome, 'logs')], {
      encoding: 'utf8',
    });
    expect(logs.stdout).toBe('');
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path.join(vmTestHome, 'paddock.db'), { readonly: true });
    try {
      const logged = db
        .prepare(
          'SELECT secrets, intercepted FROM egress_log WHERE session_id = ? AND secrets IS NOT NULL',
        )
        .all(session && 'sessionId' in session ? session.sessionId : '') as {
        secrets: string;
        intercepted: number;
      }[];
      expect(logged.length).toBeGreaterThanOrEqual(1);
      expect(logged[0]).toEqual({ secrets: JSON.stringify([name]), intercepted: 1 });
    } finally {
      db.close();
    }
  }, 600_000);
});
