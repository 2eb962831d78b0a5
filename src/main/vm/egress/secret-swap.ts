/**
 * The byte- and text-level work of secret placeholders (issue 16): swapping a placeholder for its
 * value in what goes to a secret's host, swapping the value back in what comes from it, and
 * finding credentials that a pinned host must not receive. Pure functions and one stream; the
 * egress proxy's interception (intercept.ts) decides where they apply.
 */

import { Transform, type TransformCallback } from 'node:stream';
import type { ProxySecret } from './secret-types.js';

/** One replacement: every occurrence of `from` becomes `to`. */
export interface Replacement {
  from: Buffer;
  to: Buffer;
}

/** Placeholder → value, for what goes upstream. */
export function toValues(secrets: readonly ProxySecret[]): Replacement[] {
  return secrets.map((s) => ({ from: Buffer.from(s.placeholder), to: Buffer.from(s.value) }));
}

/** Value → placeholder, for what comes back, so an echo never brings a value into the guest. */
export function toPlaceholders(secrets: readonly ProxySecret[]): Replacement[] {
  return secrets.map((s) => ({ from: Buffer.from(s.value), to: Buffer.from(s.placeholder) }));
}

/**
 * Applies replacements to a byte stream chunk by chunk. A pattern split across chunks is found:
 * the longest tail of the input that is the start of a pattern is held back until the next
 * chunk (at most the longest pattern's length minus one byte, and usually nothing, so streamed
 * responses such as server-sent events are not delayed).
 */
export class Replacer {
  readonly #replacements: Replacement[];
  readonly #longest: number;
  #pending: Buffer = Buffer.alloc(0);

  constructor(replacements: readonly Replacement[]) {
    this.#replacements = replacements.filter((r) => r.from.length > 0);
    this.#longest = Math.max(0, ...this.#replacements.map((r) => r.from.length));
  }

  /** The bytes that can be passed on after `chunk`. */
  push(chunk: Buffer): Buffer[] {
    if (this.#replacements.length === 0) return [chunk];
    const buf = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    return this.#process(buf, false);
  }

  /** What is still held back, once the input has ended. */
  end(): Buffer {
    const rest = this.#pending;
    this.#pending = Buffer.alloc(0);
    return rest.length === 0 ? rest : Buffer.concat(this.#process(rest, true));
  }

  #process(buf: Buffer, final: boolean): Buffer[] {
    const reps = this.#replacements;
    const out: Buffer[] = [];
    const next = reps.map((r) => buf.indexOf(r.from));
    let pos = 0;
    let hold = -1;
    for (;;) {
      let best: Replacement | undefined;
      let bestAt = -1;
      for (let i = 0; i < reps.length; i++) {
        const r = reps[i] as Replacement;
        let at = next[i] ?? -1;
        if (at >= 0 && at < pos) {
          at = buf.indexOf(r.from, pos);
          next[i] = at;
        }
        if (at < 0) continue;
        if (!best || at < bestAt || (at === bestAt && r.from.length > best.from.length)) {
          best = r;
          bestAt = at;
        }
      }
      if (!best) break;
      // A longer pattern may still match here once more input arrives: wait for it.
      if (!final && this.#longerMayFollow(buf, bestAt, best.from.length)) {
        hold = bestAt;
        break;
      }
      if (bestAt > pos) out.push(buf.subarray(pos, bestAt));
      out.push(best.to);
      pos = bestAt + best.from.length;
    }
    const keepFrom = final ? buf.length : hold >= 0 ? hold : buf.length - this.#heldTail(buf, pos);
    if (keepFrom > pos) out.push(buf.subarray(pos, keepFrom));
    // A copy, so a large chunk is not kept alive by a few held bytes.
    this.#pending = final ? Buffer.alloc(0) : Buffer.from(buf.subarray(Math.max(keepFrom, pos)));
    return out;
  }

  /** Whether a pattern longer than `length` could start at `at` with all the rest of `buf`. */
  #longerMayFollow(buf: Buffer, at: number, length: number): boolean {
    const rest = buf.subarray(at);
    return this.#replacements.some(
      (r) =>
        r.from.length > length &&
        r.from.length > rest.length &&
        r.from.subarray(0, rest.length).equals(rest),
    );
  }

  /** Length of the longest tail of `buf` (after `pos`) that is a proper prefix of a pattern. */
  #heldTail(buf: Buffer, pos: number): number {
    for (let k = Math.min(this.#longest - 1, buf.length - pos); k > 0; k--) {
      const tail = buf.subarray(buf.length - k);
      if (this.#replacements.some((r) => r.from.length > k && r.from.subarray(0, k).equals(tail)))
        return k;
    }
    return 0;
  }
}

/** A Transform applying `replacements` (see {@link Replacer}); backpressure as any Transform. */
export function createReplaceStream(replacements: readonly Replacement[]): Transform {
  const replacer = new Replacer(replacements);
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      for (const part of replacer.push(chunk)) if (part.length > 0) this.push(part);
      callback();
    },
    flush(callback: TransformCallback) {
      const rest = replacer.end();
      if (rest.length > 0) this.push(rest);
      callback();
    },
  });
}

/** `replacements` applied to a whole buffer. */
export function replaceInBuffer(buf: Buffer, replacements: readonly Replacement[]): Buffer {
  const replacer = new Replacer(replacements);
  return Buffer.concat([...replacer.push(buf), replacer.end()]);
}

/**
 * A value as it appears in a header string: Node reads and writes header values as latin1, so
 * the value's UTF-8 bytes, one character per byte.
 */
function headerText(value: string): string {
  return Buffer.from(value, 'utf8').toString('latin1');
}

/** Replaces each secret's placeholder in `text`; `used` gets the names of those found. */
function swapText(
  text: string,
  secrets: readonly ProxySecret[],
  encode: (value: string) => string,
  used: Set<string>,
): string {
  let out = text;
  for (const s of secrets) {
    if (s.placeholder.length === 0 || !out.includes(s.placeholder)) continue;
    out = out.split(s.placeholder).join(encode(s.value));
    used.add(s.name);
  }
  return out;
}

const BASIC_RE = /^(\s*basic\s+)([A-Za-z0-9+/=_-]+)(\s*)$/i;

/** The user:password of a Basic `Authorization` value (latin1, byte for byte), or null. */
export function decodeBasic(value: string): string | null {
  const m = BASIC_RE.exec(value);
  return m ? Buffer.from(m[2] ?? '', 'base64').toString('latin1') : null;
}

/**
 * Raw header pairs with each secret's placeholder replaced by its value in every value, inside
 * the base64 of `Authorization: Basic` too (git sends tokens as user:token). `secrets` are those
 * of the host the request goes to.
 */
export function swapHeaders(
  raw: readonly string[],
  secrets: readonly ProxySecret[],
): { headers: string[]; used: string[] } {
  const used = new Set<string>();
  const headers: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    let value = raw[i + 1] ?? '';
    const lower = name.toLowerCase();
    const basic = BASIC_RE.exec(value);
    if ((lower === 'authorization' || lower === 'proxy-authorization') && basic) {
      const decoded = Buffer.from(basic[2] ?? '', 'base64').toString('latin1');
      const swapped = swapText(decoded, secrets, headerText, used);
      if (swapped !== decoded)
        value = `${basic[1] ?? ''}${Buffer.from(swapped, 'latin1').toString('base64')}${basic[3] ?? ''}`;
    }
    headers.push(name, swapText(value, secrets, headerText, used));
  }
  return { headers, used: [...used] };
}

/**
 * The request target (path and query) with each placeholder replaced by its value,
 * percent-encoded where a URL needs it.
 */
export function swapTarget(
  target: string,
  secrets: readonly ProxySecret[],
): { target: string; used: string[] } {
  const used = new Set<string>();
  const out = swapText(target, secrets, encodeURIComponent, used);
  return { target: out, used: [...used] };
}

/** Header values with each secret's value replaced by its placeholder (responses). */
export function scrubHeaders(raw: readonly string[], secrets: readonly ProxySecret[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    let value = raw[i + 1] ?? '';
    for (const s of secrets) {
      const text = headerText(s.value);
      if (text.length > 0 && value.includes(text)) value = value.split(text).join(s.placeholder);
    }
    out.push(raw[i] ?? '', value);
  }
  return out;
}

/** Headers that carry credentials by name (lowercase). */
const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'api-key',
  'x-auth-token',
  'private-token',
  'x-goog-api-key',
  'cookie',
]);
/** A header whose name contains one of these carries a credential too. */
const CREDENTIAL_HEADER_PARTS = [
  'token',
  'secret',
  'api-key',
  'apikey',
  'auth',
  'session',
  'password',
];
/** Query parameters that carry credentials (lowercase); also any containing token or secret. */
const CREDENTIAL_PARAMS = new Set([
  'access_token',
  'token',
  'api_key',
  'apikey',
  'key',
  'auth',
  'sig',
  'signature',
  'password',
  'client_secret',
  'secret',
]);

function isCredentialHeader(lower: string): boolean {
  return CREDENTIAL_HEADERS.has(lower) || CREDENTIAL_HEADER_PARTS.some((p) => lower.includes(p));
}

function isCredentialParam(lower: string): boolean {
  return CREDENTIAL_PARAMS.has(lower) || lower.includes('token') || lower.includes('secret');
}

function decodeQueryPart(text: string): string {
  const plus = text.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}

/**
 * The first credential in a request that does not carry a placeholder of `secrets` (the secrets
 * of the host it goes to), as a phrase for messages: `Authorization header`, `access_token query
 * parameter`; null when there is none. For a pinned host: a credential there must be one of the
 * person's own, i.e. come from a placeholder swap. Cookies are checked one by one.
 */
export function foreignCredential(
  raw: readonly string[],
  target: string,
  secrets: readonly ProxySecret[],
): string | null {
  const placeholders = secrets.map((s) => s.placeholder).filter((p) => p.length > 0);
  // SECURITY: the credential must be a placeholder and nothing else of substance: an auth
  // scheme word ("Bearer", "token") may stand before it, a Basic user name before its ":", a
  // cookie its name; "Bearer <attacker's token> <placeholder>" is not the person's.
  const only = (text: string, around: RegExp): boolean =>
    placeholders.some((p) => {
      const at = text.indexOf(p);
      if (at < 0) return false;
      return around.test(text.slice(0, at)) && text.slice(at + p.length).trim() === '';
    });
  const SCHEME = /^\s*(?:[A-Za-z][A-Za-z0-9_-]{0,31}\s+)?$/;
  const BASIC_USER = /^[^:\s]{0,128}:$/;
  const COOKIE_NAME = /^\s*[^=;\s]{1,128}=$/;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    const lower = name.toLowerCase();
    const value = (raw[i + 1] ?? '').trim();
    if (!isCredentialHeader(lower) || value.length === 0) continue;
    if (lower === 'cookie') {
      const cookies = value
        .split(';')
        .map((c) => c.trim())
        .filter((c) => c.length > 0);
      if (cookies.every((c) => only(c, COOKIE_NAME))) continue;
    } else {
      const basic = decodeBasic(value);
      if (basic !== null ? only(basic, BASIC_USER) : only(value, SCHEME)) continue;
    }
    return `${name} header`;
  }
  const query = target.indexOf('?');
  if (query >= 0) {
    const hash = target.indexOf('#', query);
    const text = target.slice(query + 1, hash < 0 ? undefined : hash);
    for (const pair of text.split('&')) {
      const eq = pair.indexOf('=');
      const name = decodeQueryPart(eq < 0 ? pair : pair.slice(0, eq));
      const value = eq < 0 ? '' : decodeQueryPart(pair.slice(eq + 1));
      if (!isCredentialParam(name.toLowerCase()) || value.length === 0) continue;
      if (!placeholders.includes(value)) return `${name} query parameter`;
    }
  }
  return null;
}
