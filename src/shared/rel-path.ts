/** The longest relative path, and name, that a folder path may have (Linux's limits). */
export const MAX_PATH_BYTES = 4095;
export const MAX_SEGMENT_BYTES = 255;

const utf8 = new TextEncoder();
const bytes = (s: string) => utf8.encode(s).length;

/**
 * Why `p` is not a path inside a folder — relative, `/`-separated, no empty, `.` or `..` part, no
 * NUL, no backslash, valid Unicode, within Linux's length limits — or null when it is one. The
 * one check for paths that come from the VM, from the page and from the CLI.
 */
export function relPathProblem(p: unknown): string | null {
  if (typeof p !== 'string' || p.length === 0) return 'is empty';
  if (p.includes('\0')) return 'contains a NUL byte';
  if (/\p{Cs}/u.test(p)) return 'is not valid Unicode';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return 'is absolute';
  // SECURITY: a separator on Windows hosts, where `a\..\..\x` would climb out of the folder.
  if (p.includes('\\')) return 'contains a backslash';
  if (bytes(p) > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return 'has an empty, "." or ".." segment';
    if (bytes(seg) > MAX_SEGMENT_BYTES) return `has a name longer than ${MAX_SEGMENT_BYTES} bytes`;
  }
  return null;
}
