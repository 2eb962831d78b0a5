/**
 * A task's network allowlist and the decision the egress proxy makes for each connection.
 *
 * Entries:
 * - `example.com` — that host on ports 80 and 443.
 * - `example.com:8443` — that host on port 8443 only.
 * - `*.example.com` (optionally `:port`) — every subdomain of example.com (`a.example.com`,
 *   `a.b.example.com`), but NOT example.com itself: add `example.com` as well for that. A
 *   wildcard needs at least two labels after `*.` (`*.com` is refused).
 * - IP literals: `93.184.215.14`, `127.0.0.1:8080`, `[::1]:8080`; canonicalised like requests,
 *   so `127.1:8080` is the same entry as `127.0.0.1:8080`.
 *
 * - `host.paddock.internal:PORT` — a service on the person's own computer (the host's loopback,
 *   127.0.0.1 and ::1), in the style of `host.docker.internal`. The name is Paddock's own: it is
 *   never looked up in DNS, it needs its exact port, and no other name under `paddock.internal`
 *   exists. Inside the guest 127.0.0.1 stays the guest.
 *
 * Internal addresses (loopback, private, link-local, metadata, …; see address-class.ts) are
 * refused — whether written as a literal or reached through a name that resolves there — unless
 * an exact entry with a port names that host and port AND a person configured it (typed in
 * Settings, in a task's or an automation's form, or given on the command line). Every entry keeps
 * where it came from ({@link AllowlistSource}): entries from answers to a prompt ("allow once /
 * for this task / always") never open internal addresses, however they are stored later.
 * Wildcards never open internal addresses either.
 */

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { classifyAddress } from './address-class.js';
import { PaddockError } from '../../../shared/result.js';
import {
  canonicalizeHost,
  formatTarget,
  InvalidHostError,
  InvalidTargetError,
  parseHostPort,
  printable,
  type CanonicalHost,
} from './canonical-host.js';

/**
 * Where an entry came from. `configured`: a person typed it (Settings, a task's or an
 * automation's form, `--allow-host`). `prompt`: a person answered a question the running agent
 * caused ("allow once / for this task / always"); such entries never open internal addresses.
 */
export type AllowlistSource = 'configured' | 'prompt';

/**
 * The name that means "this computer" (the host's loopback) in an allowlist entry and in a
 * request from the guest. Reserved: resolved by Paddock itself, never by DNS.
 */
export const HOST_LOOPBACK_NAME = 'host.paddock.internal';

/** The domain Paddock reserves for its own names; only {@link HOST_LOOPBACK_NAME} exists in it. */
const RESERVED_DOMAIN = 'paddock.internal';

/** The addresses {@link HOST_LOOPBACK_NAME} stands for, in the order to try. */
const HOST_LOOPBACK_ADDRESSES: readonly string[] = ['127.0.0.1', '::1'];

/**
 * Suffixes under which anyone can publish a site of their own, so a wildcard over them allows
 * every stranger's site (an exfiltration channel). A short list of the common ones, not the whole
 * Public Suffix List; see {@link isPublicSuffixLike} for the country-code second levels.
 */
const SHARED_HOSTING_SUFFIXES: readonly string[] = [
  'github.io',
  'gitlab.io',
  'githubusercontent.com',
  'herokuapp.com',
  'appspot.com',
  'web.app',
  'firebaseapp.com',
  'vercel.app',
  'netlify.app',
  'pages.dev',
  'workers.dev',
  'azurewebsites.net',
  'cloudfront.net',
  's3.amazonaws.com',
  'blogspot.com',
  'wordpress.com',
  'glitch.me',
  'onrender.com',
  'fly.dev',
  'ngrok.io',
  'ngrok.app',
  'ngrok-free.app',
  'trycloudflare.com',
  'surge.sh',
  'repl.co',
  'duckdns.org',
];

/** Second-level labels under which country-code registries sell names (co.uk, com.au, …). */
const GENERIC_SECOND_LEVELS = new Set([
  'ac',
  'co',
  'com',
  'edu',
  'gen',
  'go',
  'gob',
  'gov',
  'gv',
  'ltd',
  'me',
  'mil',
  'ne',
  'net',
  'nic',
  'nom',
  'or',
  'org',
  'plc',
  'sch',
]);

/**
 * Whether `suffix` (a canonical name) is a registry's suffix rather than somebody's domain:
 * `co.uk`, `com.au`, `org.br`, … (a generic second level under a two-letter country code).
 */
export function isPublicSuffixLike(suffix: string): boolean {
  const labels = suffix.split('.');
  return (
    labels.length === 2 &&
    GENERIC_SECOND_LEVELS.has(labels[0] ?? '') &&
    /^[a-z]{2}$/.test(labels[1] ?? '')
  );
}

/** The ports an entry without `:port` allows. */
export const DEFAULT_PORTS: readonly number[] = [80, 443];

/** One parsed allowlist entry. */
export interface AllowlistEntry {
  /** Canonical text of the entry, e.g. `*.example.com:8443`, `[::1]:8080`, `127.0.0.1:8080`. */
  text: string;
  /** True for `*.suffix` entries; `host` is then the suffix. */
  wildcard: boolean;
  host: CanonicalHost;
  /** Undefined means {@link DEFAULT_PORTS}. */
  port?: number;
  /** Where it came from; see {@link AllowlistSource}. */
  source: AllowlistSource;
  /**
   * Whether this entry may open an internal address. True only for exact (non-wildcard)
   * entries with a port that were configured, never for entries from a prompt.
   */
  opensInternal: boolean;
}

/** Options of {@link parseAllowlistEntry} and {@link Allowlist.add}. */
export interface AllowlistEntryOptions {
  /** Default `configured`. */
  source?: AllowlistSource;
  /** `false` is the older spelling of `source: 'prompt'`. */
  opensInternal?: boolean;
}

/** Thrown for an entry that cannot be used; `message` is a whole sentence for a person. */
export class InvalidAllowlistEntryError extends Error {
  constructor(
    message: string,
    readonly input: string,
  ) {
    super(message);
    this.name = 'InvalidAllowlistEntryError';
  }
}

/** Resolves a name to IP addresses (injectable so tests never touch DNS). */
export type Resolver = (host: string) => Promise<string[]>;

/** The system resolver (getaddrinfo, so /etc/hosts counts), all addresses in its order. */
export const systemResolver: Resolver = async (host) => {
  const results = await lookup(host, { all: true, verbatim: true });
  return results.map((r) => r.address);
};

/** `localhost` and `*.localhost` always mean loopback (RFC 6761), whatever a resolver says. */
export function isLocalhostName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost');
}

/** Whether a canonical name is {@link HOST_LOOPBACK_NAME}. */
export function isHostLoopbackName(name: string): boolean {
  return name === HOST_LOOPBACK_NAME;
}

/** Whether a canonical name is in the domain Paddock reserves (`paddock.internal` and below). */
export function isReservedName(name: string): boolean {
  return name === RESERVED_DOMAIN || name.endsWith(`.${RESERVED_DOMAIN}`);
}

/**
 * Whether a canonical name stands for loopback without any lookup: `localhost` names (the
 * host's, as the proxy runs there) and {@link HOST_LOOPBACK_NAME}.
 */
export function isLoopbackName(name: string): boolean {
  return isLocalhostName(name) || isHostLoopbackName(name);
}

/** Whether an entry or request names an internal host by itself (no DNS involved). */
function literallyInternal(host: CanonicalHost): boolean {
  return host.kind === 'name'
    ? isLoopbackName(host.host)
    : classifyAddress(host.host).scope === 'internal';
}

function literalLabel(host: CanonicalHost): string {
  if (host.kind !== 'name') return classifyAddress(host.host).label;
  return isHostLoopbackName(host.host) ? "this computer's loopback" : 'a loopback name';
}

function sourceOf(options: AllowlistEntryOptions): AllowlistSource {
  return options.source ?? (options.opensInternal === false ? 'prompt' : 'configured');
}

/**
 * The key two hosts are compared by: the canonical text, except that an IPv4-mapped IPv6
 * address is the same destination as its IPv4 address (a connection to `::ffff:127.0.0.1`
 * reaches 127.0.0.1). NAT64 addresses are not: they reach a translator, not the address itself.
 */
export function matchKey(host: CanonicalHost): string {
  if (host.kind === 'ipv6' && host.ipv4 !== undefined && host.host.startsWith('::ffff:')) {
    return `ipv4:${host.ipv4}`;
  }
  return `${host.kind}:${host.host}`;
}

/**
 * Parses one allowlist entry (see the module comment for the forms). `source: 'prompt'` marks an
 * entry from an answer to a prompt, which never opens an internal address.
 * Throws {@link InvalidAllowlistEntryError}.
 */
export function parseAllowlistEntry(
  input: string,
  options: AllowlistEntryOptions = {},
): AllowlistEntry {
  const text = input.trim();
  const source = sourceOf(options);
  const refuse = (why: string): never => {
    throw new InvalidAllowlistEntryError(
      `"${printable(input)}" is not a valid network allowlist entry: ${why}.`,
      input,
    );
  };
  if (text.length === 0) refuse('it is empty');
  if (text.includes('://')) {
    refuse('write only the host (and optional :port) instead, e.g. example.com, not a URL');
  }
  if (text.includes('/') || text.includes('@') || /\s/.test(text)) {
    refuse(
      'write only the host (and optional :port) instead, e.g. example.com or example.com:8443',
    );
  }
  const wildcard = text.startsWith('*.');
  const rest = wildcard ? text.slice(2) : text;
  // SECURITY: "*" and its look-alikes would switch the allowlist off.
  if (rest.includes('*') || rest.length === 0) {
    refuse(
      /^[*.:0-9]*$/.test(text)
        ? 'allowing every host would switch the allowlist off; list the hosts the task needs instead, e.g. example.com or *.example.com'
        : 'a "*" may only appear as the whole first label; write e.g. *.example.com (its subdomains) or example.com (the host itself) instead',
    );
  }
  let parsed: { host: CanonicalHost; port?: number };
  try {
    parsed = parseHostPort(rest);
  } catch (err) {
    if (err instanceof InvalidHostError || err instanceof InvalidTargetError) {
      // The inner message already quotes the host and says why.
      throw new InvalidAllowlistEntryError(
        `"${printable(input)}" is not a valid network allowlist entry. ${err.message}`,
        input,
      );
    }
    throw err;
  }
  const { host, port } = parsed;
  if (wildcard) {
    if (host.kind !== 'name') refuse('wildcards apply to names, not IP addresses');
    if (!host.host.includes('.')) {
      refuse(
        `*.${host.host} would allow a whole top-level domain; name a domain such as *.example.${host.host} instead`,
      );
    }
    if (isLocalhostName(host.host))
      refuse('localhost names are internal and wildcards never open internal addresses');
    // SECURITY: the reserved domain has one name, opened only by its exact host:port.
    if (isReservedName(host.host))
      refuse(
        `${RESERVED_DOMAIN} is Paddock's own; write ${HOST_LOOPBACK_NAME}:PORT to allow one service on this computer`,
      );
    // SECURITY: a wildcard over a registry's suffix or a shared-hosting domain allows strangers' sites.
    if (isPublicSuffixLike(host.host))
      refuse(
        `*.${host.host} would allow every site registered under ${host.host}; name a domain such as *.example.${host.host} instead`,
      );
    if (SHARED_HOSTING_SUFFIXES.includes(host.host))
      refuse(
        `*.${host.host} would allow every site anyone publishes there; name the site instead, e.g. yourname.${host.host}`,
      );
  } else {
    if (host.kind === 'name' && isReservedName(host.host) && !isHostLoopbackName(host.host))
      refuse(`Paddock knows only ${HOST_LOOPBACK_NAME} under ${RESERVED_DOMAIN}`);
    // SECURITY: an internal address must be allowed with its exact port.
    if (literallyInternal(host) && port === undefined) {
      refuse(
        `${formatTarget(host)} is ${literalLabel(host)}, which may only be allowed together with a port, e.g. ${formatTarget(host, 8080)}`,
      );
    }
  }
  const hostText = formatTarget(host, port);
  return {
    text: wildcard ? `*.${hostText}` : hostText,
    wildcard,
    host,
    ...(port === undefined ? {} : { port }),
    source,
    // SECURITY: only exact host:port entries that a person configured open internal addresses;
    // an answer to a prompt never does, wherever it is kept.
    opensInternal: !wildcard && port !== undefined && source === 'configured',
  };
}

/** Why a connection was refused (absent when it was allowed). */
export type EgressProblem = 'invalid-host' | 'not-allowed' | 'internal' | 'unresolvable' | 'self';

/** The outcome of {@link Allowlist.decide}. */
export interface EgressVerdict {
  allowed: boolean;
  /** Canonical host without brackets, or the (printable) text as given if it was invalid. */
  host: string;
  port: number;
  /** `host:port` with IPv6 brackets, for messages. */
  target: string;
  /** One clause for the log and the 403 body, e.g. `allowed by *.example.com`. */
  reason: string;
  /** Text of the entry that allowed it. */
  rule?: string;
  problem?: EgressProblem;
  /** The entry that would allow this connection, for "To allow it, add …". */
  suggestion?: string;
  canonical?: CanonicalHost;
  /**
   * The addresses that were checked, in the order to try. Only set when allowed. The proxy
   * connects to these and never resolves the name again.
   */
  addresses: string[];
}

/**
 * A mutable set of allowlist entries plus the decision function. Mutable because a person can
 * allow a host for the rest of a session while it runs.
 */
/**
 * The canonical text of an entry a person or a page gave, or a BAD_ALLOW_HOST error with the
 * parser's sentence (what is wrong and how to write it): the one check every way in uses
 * (Settings, a task's or an automation's hosts, `--allow-host`).
 */
export function checkedAllowlistEntry(entry: string, source: AllowlistSource): string {
  try {
    return parseAllowlistEntry(entry, { source }).text;
  } catch (e) {
    if (e instanceof InvalidAllowlistEntryError)
      throw new PaddockError('BAD_ALLOW_HOST', e.message);
    throw e;
  }
}

export class Allowlist {
  readonly #entries = new Map<string, AllowlistEntry>();

  /** `entries` are configured ones; `promptEntries` came from answers to a prompt. */
  constructor(entries: Iterable<string> = [], promptEntries: Iterable<string> = []) {
    for (const e of entries) this.add(e);
    for (const e of promptEntries) this.add(e, { source: 'prompt' });
  }

  /**
   * Adds an entry (canonicalised); throws {@link InvalidAllowlistEntryError}. A configured entry
   * replaces a prompt one with the same text; a prompt one never replaces a configured one.
   */
  add(entry: string, options: AllowlistEntryOptions = {}): AllowlistEntry {
    const parsed = parseAllowlistEntry(entry, options);
    const existing = this.#entries.get(parsed.text);
    if (existing && existing.source === 'configured' && parsed.source === 'prompt') return existing;
    this.#entries.set(parsed.text, parsed);
    return parsed;
  }

  /** Removes the entry with the same canonical text; false if there was none or it was invalid. */
  remove(entry: string): boolean {
    try {
      return this.#entries.delete(parseAllowlistEntry(entry).text);
    } catch {
      return false;
    }
  }

  /** Whether an entry with the same canonical text is present. */
  has(entry: string): boolean {
    try {
      return this.#entries.has(parseAllowlistEntry(entry).text);
    } catch {
      return false;
    }
  }

  /** The entries, in the order they were added. */
  entries(): AllowlistEntry[] {
    return [...this.#entries.values()];
  }

  /** Canonical texts of the entries. */
  toStrings(): string[] {
    return [...this.#entries.keys()];
  }

  /** Entries that match host:port, exact ones first. */
  matching(
    host: CanonicalHost,
    port: number,
    extra: readonly AllowlistEntry[] = [],
  ): AllowlistEntry[] {
    const all = [...this.#entries.values(), ...extra];
    const found = all.filter((e) => entryMatchesHost(e, host) && portAllowed(e, port));
    return found.sort((a, b) => rank(a) - rank(b));
  }

  /**
   * Decides one connection to `host:port` (host as the client wrote it). Names not on the list
   * are refused without being resolved (so a refused name never leaks through DNS); listed names
   * are resolved once with `resolve` and every address is checked. `extra` entries count for this
   * call only (a person's "allow once").
   */
  async decide(
    rawHost: string,
    port: number,
    resolve: Resolver = systemResolver,
    extra: readonly AllowlistEntry[] = [],
  ): Promise<EgressVerdict> {
    let host: CanonicalHost;
    try {
      host = canonicalizeHost(rawHost);
    } catch (err) {
      if (!(err instanceof InvalidHostError)) throw err;
      const shown = printable(rawHost);
      return {
        allowed: false,
        host: shown,
        port,
        target: `${shown}:${port}`,
        reason: err.message.replace(/\.$/, ''),
        problem: 'invalid-host',
        addresses: [],
      };
    }
    const target = formatTarget(host, port);
    const base = { host: host.host, port, target, canonical: host };
    const exactSuggestion = target;
    const plainSuggestion = DEFAULT_PORTS.includes(port) ? formatTarget(host) : target;

    // SECURITY: Paddock's reserved domain has one name; the others are never looked up.
    if (host.kind === 'name' && isReservedName(host.host) && !isHostLoopbackName(host.host)) {
      return {
        ...base,
        allowed: false,
        reason: `it is not a name Paddock knows (under ${RESERVED_DOMAIN} there is only ${HOST_LOOPBACK_NAME})`,
        problem: 'invalid-host',
        addresses: [],
      };
    }

    // Literal addresses, localhost names and host.paddock.internal are classified without lookup.
    const literalInternal = literallyInternal(host);
    const label = literalLabel(host);

    const matches = this.matching(host, port, extra);
    if (matches.length === 0) {
      // SECURITY: problem 'internal' is never asked about, so no answer to a prompt opens these.
      if (literalInternal) {
        return {
          ...base,
          allowed: false,
          reason: `it is ${label}, which is reachable only when that exact host and port is allowed in Settings or on the command line`,
          problem: 'internal',
          suggestion: exactSuggestion,
          addresses: [],
        };
      }
      const otherPorts = [...this.#entries.values(), ...extra]
        .filter((e) => entryMatchesHost(e, host))
        .flatMap((e) => (e.port === undefined ? DEFAULT_PORTS : [e.port]));
      const portNote =
        otherPorts.length > 0
          ? ` (only port${otherPorts.length > 1 ? 's' : ''} ${[...new Set(otherPorts)].sort((a, b) => a - b).join(', ')} of ${formatTarget(host)} ${otherPorts.length > 1 ? 'are' : 'is'} allowed)`
          : '';
      // SECURITY: default deny, and no DNS lookup for a name nobody allowed (DNS exfiltration).
      return {
        ...base,
        allowed: false,
        reason: `it is not on this task's network allowlist${portNote}`,
        problem: 'not-allowed',
        suggestion: plainSuggestion,
        addresses: [],
      };
    }

    const opener = matches.find((e) => e.opensInternal);
    const rule = (opener ?? matches[0])?.text;

    let addresses: string[];
    if (host.kind === 'name' && !isLoopbackName(host.host)) {
      try {
        addresses = await resolve(host.host);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        const why =
          typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
        return {
          ...base,
          allowed: false,
          reason: `its name could not be resolved (${printable(why)})`,
          problem: 'unresolvable',
          addresses: [],
        };
      }
      // SECURITY: fail closed on an empty or malformed answer.
      if (addresses.length === 0 || addresses.some((a) => typeof a !== 'string' || isIP(a) === 0)) {
        return {
          ...base,
          allowed: false,
          reason: 'its name did not resolve to any valid IP address',
          problem: 'unresolvable',
          addresses: [],
        };
      }
    } else if (host.kind === 'name') {
      // SECURITY: localhost names and host.paddock.internal are the host's loopback; never ask a
      // resolver (it could say otherwise, and the name must not leak to DNS).
      addresses = [...HOST_LOOPBACK_ADDRESSES];
    } else if (host.kind === 'ipv6' && host.ipv4 !== undefined && host.host.startsWith('::ffff:')) {
      addresses = [host.ipv4];
    } else {
      addresses = [host.host];
    }

    // SECURITY: every resolved address is checked; one internal address makes the name internal,
    // so a name cannot mix a public and an internal answer to slip through.
    const internalHit = addresses
      .map((a) => ({ address: a, cls: classifyAddress(a) }))
      .find((x) => x.cls.scope === 'internal');
    if (internalHit && !opener) {
      const what =
        host.kind === 'name' && !isLoopbackName(host.host)
          ? `it resolves to ${internalHit.address}, ${internalHit.cls.label}`
          : `it is ${label}`;
      const fromPrompt = matches.some((e) => e.source === 'prompt' && !e.wildcard);
      return {
        ...base,
        allowed: false,
        reason: `${what}, which is reachable only when that exact host and port is allowed in Settings or on the command line${fromPrompt ? ' (an answer to a prompt never opens it)' : ''}`,
        problem: 'internal',
        suggestion: exactSuggestion,
        addresses: [],
      };
    }
    return {
      ...base,
      allowed: true,
      reason: `allowed by ${rule ?? target}`,
      ...(rule === undefined ? {} : { rule }),
      addresses,
    };
  }
}

function entryMatchesHost(entry: AllowlistEntry, host: CanonicalHost): boolean {
  if (entry.wildcard) {
    // SECURITY: "*.example.com" matches strictly below example.com, never "evilexample.com".
    return host.kind === 'name' && host.host.endsWith(`.${entry.host.host}`);
  }
  return matchKey(entry.host) === matchKey(host);
}

function portAllowed(entry: AllowlistEntry, port: number): boolean {
  return entry.port === undefined ? DEFAULT_PORTS.includes(port) : entry.port === port;
}

function rank(entry: AllowlistEntry): number {
  if (entry.opensInternal) return 0;
  if (!entry.wildcard) return 1;
  return 2;
}

/**
 * The 403 body for a refused connection: names the canonical target and says how to allow it.
 * `cliFlag` is the CLI option that adds an entry.
 */
export function describeRefusal(verdict: EgressVerdict, cliFlag = '--allow-host'): string {
  if (verdict.problem === 'invalid-host') {
    return `Paddock refused a connection to an invalid host: ${verdict.reason}.`;
  }
  if (verdict.problem === 'self') {
    return `Paddock refused a request to ${verdict.target}: ${verdict.reason}, which does not forward to itself.`;
  }
  if (verdict.problem === 'unresolvable') {
    return `Paddock could not connect to ${verdict.target}: ${verdict.reason}.`;
  }
  const how = verdict.suggestion
    ? ` To allow it, add ${cliFlag} ${verdict.suggestion} (CLI) or add ${verdict.suggestion} in the task's Network settings.`
    : '';
  return `Paddock blocked a connection to ${verdict.target}: ${verdict.reason}.${how}`;
}
