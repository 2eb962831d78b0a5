/**
 * Canonical form of the host named by a request or an allowlist entry.
 *
 * The egress proxy compares hosts and classifies addresses; both are only sound when every
 * spelling of one destination reduces to one string first. A name is lowercased and loses its
 * trailing dot; every IPv4 spelling that `inet_aton` (and the WHATWG URL parser) accepts — `127.1`,
 * `0x7f.0.0.1`, `2130706433`, `0177.0.0.1`, … — becomes dotted decimal; IPv6 literals become their
 * RFC 5952 text, with the embedded IPv4 address reported for IPv4-mapped, IPv4-compatible and
 * NAT64 (64:ff9b::/96) addresses. Anything else is refused with a sentence a person can act on.
 */

import { domainToASCII } from 'node:url';

/** Which of the three kinds of host a canonical host is. */
export type HostKind = 'name' | 'ipv4' | 'ipv6';

/**
 * A host after canonicalisation. `host` never carries IPv6 brackets; use {@link formatTarget}
 * to print `host:port`. `ipv4` is the IPv4 address itself for `kind: 'ipv4'`, and the embedded
 * IPv4 address for IPv6 addresses that carry one (mapped, compatible, NAT64 well-known prefix).
 */
export interface CanonicalHost {
  kind: HostKind;
  host: string;
  ipv4?: string;
}

/** Thrown when a host cannot be canonicalised; `message` is a whole sentence for a person. */
export class InvalidHostError extends Error {
  constructor(
    message: string,
    /** The text that was refused, as given. */
    readonly input: string,
  ) {
    super(message);
    this.name = 'InvalidHostError';
  }
}

const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
/** WHATWG "ends in a number": the last label is decimal digits or 0x-hex. */
const NUMERIC_LABEL_RE = /^(?:[0-9]+|0x[0-9a-f]*)$/;

/**
 * Parses one IPv4 address in any spelling `inet_aton` accepts (1 to 4 parts; each part decimal,
 * octal with a leading 0, or hex with 0x; the last part fills the remaining bytes). Returns the
 * address as an unsigned 32-bit number, or undefined if the text is not such an address.
 * Exists because a request for `0x7f.1` must be recognised as loopback, not looked up as a name.
 * Like the WHATWG URL parser it also accepts a bare `0x` part as 0 (more spellings recognised as
 * addresses is the safe direction).
 */
export function parseIpv4(text: string): number | undefined {
  if (text.length === 0 || text.length > 64) return undefined;
  const parts = text.split('.');
  if (parts.length > 4) return undefined;
  const values: bigint[] = [];
  for (const part of parts) {
    const value = parseIpv4Part(part);
    if (value === undefined) return undefined;
    values.push(value);
  }
  let result = 0n;
  const last = values.length - 1;
  for (let i = 0; i < last; i++) {
    const v = values[i] as bigint;
    if (v > 255n) return undefined;
    result |= v << BigInt(8 * (3 - i));
  }
  const lastValue = values[last] as bigint;
  // The last part fills the bytes the earlier parts did not use.
  if (lastValue >= 1n << BigInt(8 * (4 - last))) return undefined;
  result |= lastValue;
  return Number(result);
}

function parseIpv4Part(part: string): bigint | undefined {
  if (part.length === 0) return undefined;
  if (/^0x[0-9a-f]*$/i.test(part)) {
    const digits = part.slice(2);
    return digits.length === 0 ? 0n : BigInt(`0x${digits}`);
  }
  if (/^0[0-7]*$/.test(part)) {
    return part.length === 1 ? 0n : BigInt(`0o${part.slice(1)}`);
  }
  if (/^[1-9][0-9]*$/.test(part)) return BigInt(part);
  return undefined;
}

/** Dotted-decimal text of an unsigned 32-bit IPv4 address. */
export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/**
 * Parses an IPv6 literal (without brackets) into its eight 16-bit groups: full, `::`-compressed
 * and with a trailing dotted-quad IPv4 part. Zone ids (`%eth0`) are not accepted here; see
 * {@link canonicalizeHost} for the error a person sees. Returns undefined for anything else.
 */
export function parseIpv6(text: string): number[] | undefined {
  if (text.length < 2 || text.length > 45 || !/^[0-9a-f:.]+$/i.test(text)) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (s: string, allowV4Tail: boolean): number[] | undefined => {
    if (s.length === 0) return [];
    const out: number[] = [];
    const pieces = s.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] as string;
      if (allowV4Tail && i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseStrictDottedQuad(piece);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
        continue;
      }
      if (!/^[0-9a-f]{1,4}$/i.test(piece)) return undefined;
      out.push(parseInt(piece, 16));
    }
    return out;
  };
  if (halves.length === 1) {
    const groups = parseGroups(text, true);
    return groups && groups.length === 8 ? groups : undefined;
  }
  const head = parseGroups(halves[0] as string, false);
  const tail = parseGroups(halves[1] as string, true);
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

/** The strict dotted quad allowed inside an IPv6 literal (as inet_pton: no octal, no hex). */
function parseStrictDottedQuad(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return value;
}

/** Where an IPv6 address carries an IPv4 address, and which one. */
export type EmbeddedIpv4Kind = 'mapped' | 'compatible' | 'nat64';

/**
 * The IPv4 address embedded in an IPv6 address, for the three forms that mean "this IPv4
 * address": IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d` (deprecated, but still
 * parsed by stacks) and the NAT64 well-known prefix `64:ff9b::/96`. `::` and `::1` are not
 * IPv4-compatible addresses. Exists so that `[::ffff:127.0.0.1]` is classified as loopback.
 */
export function embeddedIpv4(
  groups: readonly number[],
): { kind: EmbeddedIpv4Kind; ipv4: string } | undefined {
  if (groups.length !== 8) return undefined;
  const g = (i: number): number => groups[i] ?? 0;
  const v4 = (): string => formatIpv4(((g(6) << 16) | g(7)) >>> 0);
  const zeroUpTo = (n: number): boolean => groups.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(5) && g(5) === 0xffff) return { kind: 'mapped', ipv4: v4() };
  if (g(0) === 0x64 && g(1) === 0xff9b && groups.slice(2, 6).every((x) => x === 0)) {
    return { kind: 'nat64', ipv4: v4() };
  }
  if (zeroUpTo(6) && (g(6) !== 0 || g(7) > 1)) return { kind: 'compatible', ipv4: v4() };
  return undefined;
}

/**
 * RFC 5952 text of an IPv6 address: lowercase, no leading zeros, the longest run (2 groups or
 * more, first if tied) of zero groups as `::`. IPv4-mapped and NAT64 addresses keep the IPv4
 * part dotted (`::ffff:127.0.0.1`, `64:ff9b::192.0.2.1`), as RFC 5952 §5 recommends.
 */
export function formatIpv6(groups: readonly number[]): string {
  const embedded = embeddedIpv4(groups);
  const dottedTail = embedded !== undefined && embedded.kind !== 'compatible';
  const hexGroups = dottedTail ? groups.slice(0, 6) : groups.slice(0, 8);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < hexGroups.length;) {
    if (hexGroups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < hexGroups.length && hexGroups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: readonly number[]): string => xs.map((x) => x.toString(16)).join(':');
  const tail = dottedTail ? (embedded?.ipv4 ?? '') : '';
  if (bestLen < 2) {
    const body = hex(hexGroups);
    return dottedTail ? `${body}:${tail}` : body;
  }
  const left = hex(hexGroups.slice(0, bestStart));
  const rightGroups = hexGroups.slice(bestStart + bestLen);
  const rightParts = [
    ...(rightGroups.length > 0 ? [hex(rightGroups)] : []),
    ...(tail ? [tail] : []),
  ];
  return `${left}::${rightParts.join(':')}`;
}

/**
 * Canonicalises a host as written in a request, a URL or an allowlist entry (without a port).
 * Lowercases, strips one trailing dot and IPv6 brackets, turns every IPv4/IPv6 spelling into
 * one text, and refuses what is not a valid host. Throws {@link InvalidHostError}.
 */
export function canonicalizeHost(input: string): CanonicalHost {
  const refuse = (why: string): never => {
    throw new InvalidHostError(`"${printable(input)}" is not a valid host: ${why}.`, input);
  };
  if (input.length === 0) refuse('it is empty');
  // SECURITY: reject non-ASCII before lowercasing; toLowerCase() maps e.g. the Kelvin sign
  // (U+212A) to an ASCII "k", and IDNA maps fullwidth digits and dots to ASCII ones.
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(input)) {
    const ascii = domainToASCII(input);
    refuse(
      ascii && ascii !== input
        ? `it contains non-ASCII characters; write it in its ASCII (punycode) form, ${ascii}`
        : 'it contains non-ASCII characters; write it in its ASCII (punycode xn--) form',
    );
  }
  if (input.length > 300) refuse(`it is longer than ${MAX_NAME_LENGTH} characters`);

  if (input.startsWith('[') || input.endsWith(']')) {
    if (!(input.startsWith('[') && input.endsWith(']'))) refuse('its brackets are unbalanced');
    return canonicalIpv6(input.slice(1, -1), input);
  }
  if (input.includes(':')) return canonicalIpv6(input, input);

  let text = input.toLowerCase();
  // SECURITY: "example.com." and "example.com" are one host; compare them as one.
  if (text.endsWith('.')) text = text.slice(0, -1);
  if (text.length === 0) refuse('it has no name before the dot');
  if (text.length > MAX_NAME_LENGTH) refuse(`it is longer than ${MAX_NAME_LENGTH} characters`);

  const labels = text.split('.');
  const lastLabel = labels[labels.length - 1] ?? '';
  // SECURITY: a host whose last label is a number is an IPv4 address or nothing (WHATWG URL),
  // so `127.1`, `0x7f.0.0.1` and `2130706433` can never pass as names.
  if (NUMERIC_LABEL_RE.test(lastLabel)) {
    const value = parseIpv4(text);
    if (value === undefined) refuse('it looks like an IPv4 address but is not a valid one');
    const ipv4 = formatIpv4(value as number);
    return { kind: 'ipv4', host: ipv4, ipv4 };
  }

  for (const label of labels) {
    if (label.length === 0) refuse('it has an empty label (two dots in a row, or a leading dot)');
    if (label.length > MAX_LABEL_LENGTH) {
      refuse(`the label "${label.slice(0, 20)}…" is longer than ${MAX_LABEL_LENGTH} characters`);
    }
    // SECURITY: only letters, digits and hyphens (LDH); no "_", "%", "@", "/", spaces, …
    if (!LABEL_RE.test(label)) {
      const bad = /[^a-z0-9-]/.exec(label);
      refuse(
        bad
          ? `it contains "${printable(bad[0])}"; host names may use only letters, digits, hyphens and dots`
          : `the label "${label}" starts or ends with a hyphen`,
      );
    }
  }
  return { kind: 'name', host: text };
}

function canonicalIpv6(literal: string, input: string): CanonicalHost {
  const refuse = (why: string): never => {
    throw new InvalidHostError(`"${printable(input)}" is not a valid host: ${why}.`, input);
  };
  // SECURITY: a zone id names an interface on the host, which a guest has no business choosing.
  if (literal.includes('%')) refuse('IPv6 zone ids (the "%" part) are not allowed');
  const groups = parseIpv6(literal);
  if (!groups) refuse('it is not a valid IPv6 address');
  const g = groups as number[];
  const embedded = embeddedIpv4(g);
  return embedded
    ? { kind: 'ipv6', host: formatIpv6(g), ipv4: embedded.ipv4 }
    : { kind: 'ipv6', host: formatIpv6(g) };
}

/**
 * The non-throwing form of {@link canonicalizeHost}, for callers that want a Result-like value.
 */
export function tryCanonicalizeHost(
  input: string,
): { ok: true; value: CanonicalHost } | { ok: false; error: string } {
  try {
    return { ok: true, value: canonicalizeHost(input) };
  } catch (err) {
    if (err instanceof InvalidHostError) return { ok: false, error: err.message };
    throw err;
  }
}

/** `host:port` for messages and logs, with brackets around IPv6 hosts (`[::1]:8080`). */
export function formatTarget(host: CanonicalHost | string, port?: number): string {
  const text = typeof host === 'string' ? host : host.host;
  const kind = typeof host === 'string' ? (text.includes(':') ? 'ipv6' : 'name') : host.kind;
  const shown = kind === 'ipv6' ? `[${text}]` : text;
  return port === undefined ? shown : `${shown}:${port}`;
}

/** Thrown by {@link parseHostPort} when the text is not `host`, `host:port` or `[v6]:port`. */
export class InvalidTargetError extends Error {
  constructor(
    message: string,
    readonly input: string,
  ) {
    super(message);
    this.name = 'InvalidTargetError';
  }
}

/**
 * Splits `host:port` text without canonicalising the host: `[v6]:port`, `[v6]`, `host:port`,
 * `host`, or (unless `portRequired`) a bare IPv6 literal. Exists so the proxy can still name
 * (and log) the host of a target whose host part is invalid. Throws {@link InvalidTargetError}.
 */
export function splitHostPort(
  text: string,
  options: { portRequired?: boolean } = {},
): { hostText: string; port?: number } {
  const refuse = (why: string): never => {
    throw new InvalidTargetError(`"${printable(text)}" is not a valid target: ${why}.`, text);
  };
  let hostText: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) refuse('its "[" has no "]"');
    hostText = text.slice(0, close + 1);
    const rest = text.slice(close + 1);
    if (rest.length > 0) {
      if (!rest.startsWith(':')) refuse('only ":port" may follow "]"');
      portText = rest.slice(1);
    }
  } else {
    const colons = text.split(':').length - 1;
    if (colons > 1) {
      if (options.portRequired)
        refuse('an IPv6 address with a port must be written [address]:port');
      hostText = text;
    } else if (colons === 1) {
      const at = text.lastIndexOf(':');
      hostText = text.slice(0, at);
      portText = text.slice(at + 1);
    } else {
      hostText = text;
    }
  }
  if (portText === undefined) {
    if (options.portRequired) refuse('it has no port');
    return { hostText };
  }
  return { hostText, port: parsePort(portText, text) };
}

/**
 * Splits and canonicalises `host:port` (an HTTP authority, a CONNECT target or an allowlist
 * entry); see {@link splitHostPort}. Exists so the proxy and the allowlist read a target the
 * same way. Throws {@link InvalidTargetError} or {@link InvalidHostError}.
 */
export function parseHostPort(
  text: string,
  options: { portRequired?: boolean } = {},
): { host: CanonicalHost; port?: number } {
  const { hostText, port } = splitHostPort(text, options);
  const host = canonicalizeHost(hostText);
  return port === undefined ? { host } : { host, port };
}

/** Parses a TCP port 1–65535 written in decimal; throws {@link InvalidTargetError}. */
export function parsePort(portText: string, input: string = portText): number {
  if (!/^[0-9]{1,5}$/.test(portText)) {
    throw new InvalidTargetError(
      `"${printable(input)}" is not a valid target: the port must be a number from 1 to 65535.`,
      input,
    );
  }
  const port = Number(portText);
  if (port < 1 || port > 65535) {
    throw new InvalidTargetError(
      `"${printable(input)}" is not a valid target: the port must be a number from 1 to 65535.`,
      input,
    );
  }
  return port;
}

/** Makes hostile text safe to quote in a message: control characters escaped, length capped. */
export function printable(text: string): string {
  const escaped = text.replace(
    // eslint-disable-next-line no-control-regex
    /[\x00-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  return escaped.length > 120 ? `${escaped.slice(0, 117)}...` : escaped;
}
