import fs from 'node:fs';
import path from 'node:path';
import posix from 'node:path/posix';
import type { TaskFile, TaskFolder } from '../../../shared/app-contract.js';
import { PaddockError } from '../../../shared/result.js';
import type { SessionEventRow } from '../../store/sessions-repo.js';
import { within } from '../../vm/grants.js';
import type { Core } from '../core.js';
import type { Handlers } from '../dispatch.js';

/** Text shown up to this size; larger is `too-large`. */
const MAX_TEXT_BYTES = 1024 * 1024;
/** Images shown up to this size. */
const MAX_IMAGE_BYTES = 5 * 1024 * 1024;
/** A NUL byte in this much of the start makes a file binary. */
const SNIFF_BYTES = 8192;

const IMAGE_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  // Scripts in an SVG do not run when it is shown through <img>.
  '.svg': 'image/svg+xml',
};

const LANGUAGES: Record<string, string> = {
  '.md': 'markdown',
  '.markdown': 'markdown',
  '.ts': 'typescript',
  '.tsx': 'typescript',
  '.mts': 'typescript',
  '.cts': 'typescript',
  '.js': 'javascript',
  '.jsx': 'javascript',
  '.mjs': 'javascript',
  '.cjs': 'javascript',
  '.json': 'json',
  '.py': 'python',
  '.rb': 'ruby',
  '.rs': 'rust',
  '.go': 'go',
  '.java': 'java',
  '.kt': 'kotlin',
  '.swift': 'swift',
  '.c': 'c',
  '.h': 'c',
  '.cc': 'cpp',
  '.cpp': 'cpp',
  '.hpp': 'cpp',
  '.cs': 'csharp',
  '.php': 'php',
  '.sh': 'bash',
  '.bash': 'bash',
  '.zsh': 'bash',
  '.css': 'css',
  '.html': 'xml',
  '.htm': 'xml',
  '.xml': 'xml',
  '.svg': 'xml',
  '.yml': 'yaml',
  '.yaml': 'yaml',
  '.toml': 'ini',
  '.ini': 'ini',
  '.sql': 'sql',
  '.diff': 'diff',
  '.patch': 'diff',
};

/** Previews of the files a task changed (`tasks:file`). */
export function fileHandlers(core: Core) {
  return {
    'tasks:file': (req) => readTaskFile(core, req.id, req.path),
  } satisfies Partial<Handlers>;
}

function refuse(message: string): never {
  throw new PaddockError('BAD_PATH', message);
}

/**
 * Reads one file of a task for its preview. The path is `share/relative/path` and must name a
 * file inside one of that task's own folders after every symlink is resolved; nothing is run
 * on the folder (a folder the agent wrote can make programs such as git run its code).
 */
async function readTaskFile(core: Core, id: string, wanted: string): Promise<TaskFile> {
  const row = core.sessions.row(id);
  const folders = row.folders as TaskFolder[];
  // SECURITY: the name must be a plain relative path: no NUL, no absolute path, no drive, no
  // `..` or `.` step, no backslash (a separator on Windows).
  if (wanted.includes('\0')) refuse('A file name cannot contain a NUL character.');
  if (wanted.includes('\\') || /^[a-zA-Z]:/.test(wanted) || wanted.startsWith('/'))
    refuse(`${wanted} is not a path inside one of this task's folders.`);
  const parts = wanted.split('/');
  if (parts.length < 2 || parts.some((p) => p === '' || p === '.' || p === '..'))
    refuse(`${wanted} is not a path inside one of this task's folders.`);
  const [share, ...rel] = parts;
  // SECURITY: only this task's own folders (another task's are not reachable by name).
  const folder = folders.find((f) => f.name === share);
  if (!folder) refuse(`${share} is not one of this task's folders.`);
  const missing = (): TaskFile => ({ kind: 'missing', path: wanted, size: 0 });

  let root: string;
  try {
    root = fs.realpathSync.native(folder.hostPath);
  } catch {
    return missing();
  }
  // SECURITY: the folder was stored resolved; one swapped for a symlink since (say through
  // another share that holds it) is not followed.
  if (root !== path.resolve(folder.hostPath))
    refuse(
      `The folder ${share} was moved or replaced since the task began; Paddock does not follow it.`,
    );
  let real: string;
  try {
    real = await fs.promises.realpath(path.join(root, ...rel));
  } catch {
    return missing();
  }
  // SECURITY: a symlink (the file or a folder on its way) leading out of the share is refused.
  if (!within(real, root) || real === root)
    refuse(`${wanted} leads outside its folder; Paddock does not show it.`);
  const st = await fs.promises.stat(real).catch(() => null);
  if (!st) return missing();
  // SECURITY: only regular files are opened: a FIFO or a device would block or never end.
  if (!st.isFile()) refuse(`${wanted} is not a regular file.`);

  const flags =
    fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0) | (fs.constants.O_NONBLOCK ?? 0);
  const fh = await fs.promises.open(real, flags).catch(() => null);
  if (!fh) return missing();
  try {
    // SECURITY: what was opened is checked again, in case a folder on the way was swapped for a
    // symlink between the check above and the open.
    const opened = await fh.stat();
    if (!opened.isFile() || opened.ino !== st.ino || opened.dev !== st.dev)
      refuse(`${wanted} changed while it was opened; try again.`);
    if (process.platform === 'linux') {
      const where = await fs.promises.readlink(`/proc/self/fd/${fh.fd}`).catch(() => null);
      if (where !== null && !within(where, root))
        refuse(`${wanted} leads outside its folder; Paddock does not show it.`);
    }
    const size = opened.size;
    const ext = path.extname(real).toLowerCase();
    const image = IMAGE_TYPES[ext];
    const read = async (limit: number): Promise<Buffer> => {
      const buf = Buffer.alloc(Math.min(size, limit));
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    };
    if (image) {
      if (size > MAX_IMAGE_BYTES) return { kind: 'too-large', path: wanted, size };
      const data = await read(MAX_IMAGE_BYTES);
      return {
        kind: 'image',
        path: wanted,
        size,
        dataUrl: `data:${image};base64,${data.toString('base64')}`,
      };
    }
    const head = await read(SNIFF_BYTES);
    if (head.includes(0)) return { kind: 'binary', path: wanted, size };
    if (size > MAX_TEXT_BYTES) return { kind: 'too-large', path: wanted, size };
    const content = (await read(MAX_TEXT_BYTES)).toString('utf8');
    const language = LANGUAGES[ext];
    const before = beforeEdits(
      core.store.sessions.events(id),
      folders,
      `/mnt/${share}/${rel.join('/')}`,
      content,
    );
    return {
      kind: 'text',
      path: wanted,
      size,
      content,
      ...(language ? { language } : {}),
      ...(before !== null ? { before } : {}),
    };
  } finally {
    await fh.close();
  }
}

interface StoredBlock {
  type: string;
  id?: string;
  name?: string;
  input?: unknown;
}

interface EditCall {
  name: string;
  old?: string;
  new?: string;
  replaceAll?: boolean;
}

/**
 * The file's text before the task, where the stored tool calls tell it: when every call of the
 * task that wrote this file (and succeeded) was an `edit_file` of one exact string, they are
 * undone from the newest back, each undo requiring its new text exactly once. A `write_file`
 * (whose previous content is not stored), a `replace_all`, an edit that removed its text, or a
 * step that does not match gives null. Changes by shell commands are not seen.
 */
function beforeEdits(
  rows: SessionEventRow[],
  folders: { name: string }[],
  guestFile: string,
  current: string,
): string | null {
  const cwd = folders[0] ? `/mnt/${folders[0].name}` : '/root';
  const pending = new Map<string, EditCall>();
  const calls: EditCall[] = [];
  for (const row of rows) {
    const p = (row.payload ?? {}) as Record<string, unknown>;
    if (row.type === 'assistant' && Array.isArray(p.content)) {
      for (const b of p.content as StoredBlock[]) {
        if (b.type !== 'tool_use' || !b.id) continue;
        if (b.name !== 'write_file' && b.name !== 'edit_file') continue;
        const input = (b.input ?? {}) as Record<string, unknown>;
        if (typeof input.path !== 'string') continue;
        if (posix.resolve(cwd, input.path) !== guestFile) continue;
        pending.set(b.id, {
          name: b.name,
          ...(typeof input.old_string === 'string' ? { old: input.old_string } : {}),
          ...(typeof input.new_string === 'string' ? { new: input.new_string } : {}),
          replaceAll: input.replace_all === true,
        });
      }
    } else if (row.type === 'tool_result') {
      const call = pending.get(String(p.tool_use_id));
      if (call && p.is_error !== true) calls.push(call);
    }
  }
  if (calls.length === 0) return null;
  let text = current;
  for (let i = calls.length - 1; i >= 0; i--) {
    const c = calls[i]!;
    if (c.name !== 'edit_file' || c.replaceAll || !c.old || !c.new) return null;
    const at = text.indexOf(c.new);
    if (at < 0 || text.indexOf(c.new, at + 1) >= 0) return null;
    text = text.slice(0, at) + c.old + text.slice(at + c.new.length);
  }
  return text;
}
