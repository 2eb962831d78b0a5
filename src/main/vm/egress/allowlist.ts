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
 * Internal addresses (loopback, private, link-local, metadata, …; see address-class.ts) are
 * refused — whether written as a literal or reached through a name that resolves there — unless
 * an exact entry with a port names that host and port. Wildcards never open internal addresses,
 * and neither do grants a person gives from a prompt (see {@link AllowlistEntry.opensInternal}).
 */

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { classifyAddress } from './address-class.js';
import {
  canonicalizeHost,
  formatTarget,
  InvalidHostError,
  InvalidTargetError,
  parseHostPort,
  printable,
  type CanonicalHost,
} from './canonical-host.js';

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
  /**
   * Whether this entry may open an internal address. True only for exact (non-wildcard)
   * entries with a port that were configured, not granted from a prompt.
   */
  opensInternal: boolean;
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
 * Parses one allowlist entry (see the module comment for the forms). `opensInternal: false`
 * marks an entry that must never open an internal address (used for grants from a prompt).
 * Throws {@link InvalidAllowlistEntryError}.
 */
export function parseAllowlistEntry(
  input: string,
  options: { opensInternal?: boolean } = {},
): AllowlistEntry {
  const text = input.trim();
  const refuse = (why: string): never => {
    throw new InvalidAllowlistEntryError(
      `"${printable(input)}" is not a valid network allowlist entry: ${why}.`,
      input,
    );
  };
  if (text.length === 0) refuse('it is empty');
  if (text.includes('://')) {
    refuse('write only the host (and optional :port), e.g. example.com, not a URL');
  }
  if (text.includes('/') || text.includes('@') || /\s/.test(text)) {
    refuse('write only the host (and optional :port), e.g. example.com or example.com:8443');
  }
  const wildcard = text.startsWith('*.');
  const rest = wildcard ? text.slice(2) : text;
  if (rest.includes('*')) {
    refuse(
      text === '*'
        ? 'allowing every host would switch the allowlist off'
        : 'a "*" may only appear as the whole first label, as in *.example.com',
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
        `*.${host.host} would allow a whole top-level domain; name a domain such as *.example.${host.host}`,
      );
    }
    if (isLocalhostName(host.host))
      refuse('localhost names are internal and wildcards never open internal addresses');
  } else {
    const internal =
      host.kind === 'name'
        ? isLocalhostName(host.host)
        : classifyAddress(host.host).scope === 'internal';
    // SECURITY: an internal address must be allowed with its exact port.
    if (internal && port === undefined) {
      const what = host.kind === 'name' ? 'a loopback name' : classifyAddress(host.host).label;
      refuse(
        `${formatTarget(host)} is ${what}, which may only be allowed together with a port, e.g. ${formatTarget(host, 8080)}`,
      );
    }
  }
  const hostText = formatTarget(host, port);
  return {
    text: wildcard ? `*.${hostText}` : hostText,
    wildcard,
    host,
    ...(port === undefined ? {} : { port }),
    // SECURITY: only exact host:port entries that a person configured open internal addresses.
    opensInternal: !wildcard && port !== undefined && options.opensInternal !== false,
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
export class Allowlist {
  readonly #entries = new Map<string, AllowlistEntry>();

  constructor(entries: Iterable<string> = []) {
    for (const e of entries) this.add(e);
  }

  /** Adds an entry (canonicalised); throws {@link InvalidAllowlistEntryError}. */
  add(entry: string, options: { opensInternal?: boolean } = {}): AllowlistEntry {
    const parsed = parseAllowlistEntry(entry, options);
    const existing = this.#entries.get(parsed.text);
    if (existing && existing.opensInternal && !parsed.opensInternal) return existing;
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

    // Literal addresses and localhost names are classified without any lookup.
    const literalInternal =
      host.kind === 'name'
        ? isLocalhostName(host.host)
        : classifyAddress(host.host).scope === 'internal';
    const literalLabel =
      host.kind === 'name' ? 'a loopback name' : classifyAddress(host.host).label;

    const matches = this.matching(host, port, extra);
    if (matches.length === 0) {
      if (literalInternal) {
        return {
          ...base,
          allowed: false,
          reason: `it is ${literalLabel}, which is reachable only when that exact host and port is on this task's network allowlist`,
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
    if (host.kind === 'name' && !isLocalhostName(host.host)) {
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
      // SECURITY: localhost names are loopback; never ask a resolver (it could say otherwise).
      addresses = ['127.0.0.1', '::1'];
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
        host.kind === 'name' && !isLocalhostName(host.host)
          ? `it resolves to ${internalHit.address}, ${internalHit.cls.label}`
          : `it is ${literalLabel}`;
      return {
        ...base,
        allowed: false,
        reason: `${what}, which is reachable only when that exact host and port is on this task's network allowlist`,
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
