/**
 * Ids are random, URL-safe and prefixed by kind so a stray id in a log says what it names.
 * Uses Web Crypto, which exists in Node, Electron and browsers alike.
 */
export function newId(prefix: string): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += b.toString(36).padStart(2, '0').slice(-2);
  return `${prefix}_${s}`;
}
