import path from 'node:path/posix';
import { z } from 'zod';
import { capText } from '../output-cap.js';
import { runCommand, shQuote } from './run-command.js';
import { MAX_RESULT_CHARS, ToolError, type Tool, type ToolContext } from './types.js';

/** Guest paths are absolute or relative to the working folder. */
function guestPath(ctx: ToolContext, p: string): string {
  return path.resolve(ctx.cwd, p);
}

const MAX_READ_BYTES = 8 * 1024 * 1024;
/** Entries list_files shows of one folder; the rest are counted. */
const MAX_LIST_ENTRIES = 2000;

/** localeCompare's order, without building a collator per comparison (listings can be long). */
const byPath = new Intl.Collator();

/** The guest refused or cut an answer for its size (GuestError EFBIG). */
function tooBig(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'EFBIG';
}

async function readText(ctx: ToolContext, p: string): Promise<string> {
  const st = await ctx.host.stat(p).catch((e: Error) => {
    throw new ToolError(e.message);
  });
  if (st.type === 'dir')
    throw new ToolError(`${p} is a folder; use list_files to see what is in it.`);
  const tooLarge = (size: string): ToolError =>
    new ToolError(
      `${p} is ${size} bytes, too large to read whole; use bash (head, sed -n, rg) to read part of it.`,
    );
  // A quick refusal only: stat does not follow symlinks, and the guest may say anything.
  if (st.size > MAX_READ_BYTES) throw tooLarge(st.size.toLocaleString('en-US'));
  // SECURITY: the bytes are counted as they arrive; the host stops taking them at its cap.
  const buf = await ctx.host.readFile(p).catch((e: unknown) => {
    if (tooBig(e)) throw tooLarge(`more than ${MAX_READ_BYTES.toLocaleString('en-US')}`);
    throw e;
  });
  if (buf.length > MAX_READ_BYTES) throw tooLarge(buf.length.toLocaleString('en-US'));
  if (buf.subarray(0, 8192).includes(0)) {
    throw new ToolError(
      `${p} looks binary (${buf.length.toLocaleString('en-US')} bytes); inspect it with bash (file, xxd, unzip -l …).`,
    );
  }
  return buf.toString('utf8');
}

const readInput = z.object({
  path: z.string().min(1),
  offset: z.number().int().min(1).optional().describe('First line to read, 1-based.'),
  limit: z.number().int().min(1).optional().describe('How many lines to read (default 2000).'),
});

/** `read_file`: a text file from the VM with line numbers, optionally a window of lines. */
export const readFileTool: Tool<typeof readInput> = {
  name: 'read_file',
  description:
    'Read a text file in the VM (e.g. /mnt/<folder>/notes.md). Returns numbered lines; use offset and limit for long files.',
  input: readInput,
  async run({ path: p, offset, limit }, ctx) {
    const file = guestPath(ctx, p);
    const lines = (await readText(ctx, file)).split('\n');
    const start = (offset ?? 1) - 1;
    const end = Math.min(lines.length, start + (limit ?? 2000));
    if (start >= lines.length && lines.length > 0) {
      throw new ToolError(`${file} has ${lines.length} lines; offset ${offset} is past the end.`);
    }
    const body = lines
      .slice(start, end)
      .map((l, i) => `${String(start + i + 1).padStart(6)}\t${l}`)
      .join('\n');
    const more =
      end < lines.length
        ? `\n[… ${lines.length - end} more lines; read on with offset ${end + 1}]`
        : '';
    return { content: capText(body, MAX_RESULT_CHARS) + more, isError: false };
  },
};

const writeInput = z.object({ path: z.string().min(1), content: z.string() });

/** `write_file`: creates or replaces a file in the VM, making parent folders. */
export const writeFileTool: Tool<typeof writeInput> = {
  name: 'write_file',
  description:
    'Create or overwrite a file in the VM with the given content (parent folders are created). Files under /mnt/<folder> are the person’s granted folders.',
  input: writeInput,
  async run({ path: p, content }, ctx) {
    const file = guestPath(ctx, p);
    const mk = await runCommand(ctx, {
      argv: ['mkdir', '-p', path.dirname(file)],
      timeoutMs: 30_000,
    });
    if (mk.exitCode !== 0)
      throw new ToolError(mk.stderr.trim() || `Could not create ${path.dirname(file)}.`);
    const data = Buffer.from(content, 'utf8');
    await ctx.host.writeFile(file, data);
    return {
      content: `Wrote ${data.length.toLocaleString('en-US')} bytes to ${file}.`,
      isError: false,
    };
  },
};

const editInput = z.object({
  path: z.string().min(1),
  old_string: z.string().min(1),
  new_string: z.string(),
  replace_all: z.boolean().optional(),
});

/** `edit_file`: replaces an exact string in a file, refusing ambiguous edits. */
export const editFileTool: Tool<typeof editInput> = {
  name: 'edit_file',
  description:
    'Replace old_string with new_string in a file in the VM. old_string must match exactly and be unique unless replace_all is true.',
  input: editInput,
  async run({ path: p, old_string, new_string, replace_all }, ctx) {
    const file = guestPath(ctx, p);
    const text = await readText(ctx, file);
    const count = text.split(old_string).length - 1;
    if (count === 0)
      throw new ToolError(
        `old_string was not found in ${file}; read the file and copy the text exactly.`,
      );
    if (count > 1 && !replace_all) {
      throw new ToolError(
        `old_string occurs ${count} times in ${file}; include more surrounding text to make it unique, or set replace_all.`,
      );
    }
    const next = replace_all
      ? text.split(old_string).join(new_string)
      : text.replace(old_string, () => new_string);
    await ctx.host.writeFile(file, Buffer.from(next, 'utf8'));
    return {
      content: `Replaced ${replace_all ? count : 1} occurrence${count > 1 && replace_all ? 's' : ''} in ${file}.`,
      isError: false,
    };
  },
};

const listInput = z.object({
  path: z.string().min(1),
  pattern: z.string().optional().describe('A glob such as *.md or **/*.ts to search below path.'),
});

/** `list_files`: a folder's entries, or the files below it matching a glob. */
export const listFilesTool: Tool<typeof listInput> = {
  name: 'list_files',
  description:
    'List a folder in the VM. With pattern (a glob like *.csv or **/*.py), list matching files below it instead.',
  input: listInput,
  async run({ path: p, pattern }, ctx) {
    const dir = guestPath(ctx, p);
    if (!pattern) {
      const entries = await ctx.host.list(dir).catch((e: Error) => {
        throw new ToolError(
          tooBig(e)
            ? `${dir} has too many entries to list whole; use a pattern, or bash (ls | head, find … | head).`
            : e.message,
        );
      });
      // The host bounds the listing in bytes; the model gets a bounded number of lines of it.
      const shown = entries
        .sort((a, b) => byPath.compare(a.path, b.path))
        .slice(0, MAX_LIST_ENTRIES);
      const lines = shown.map((e) => {
        const name = path.basename(e.path);
        return e.type === 'dir'
          ? `${name}/`
          : e.type === 'symlink'
            ? `${name}@`
            : `${name}  (${e.size.toLocaleString('en-US')} bytes)`;
      });
      const more =
        entries.length > shown.length
          ? `\n[… ${(entries.length - shown.length).toLocaleString('en-US')} more entries; use a pattern or bash to see them]`
          : '';
      return {
        content: lines.length
          ? capText(lines.join('\n'), MAX_RESULT_CHARS) + more
          : `${dir} is empty.`,
        isError: false,
      };
    }
    const recursive = pattern.includes('**') || pattern.includes('/');
    const name = pattern.split('/').pop()!.replace(/\*\*/g, '*');
    const r = await runCommand(ctx, {
      shell: `find ${shQuote(dir)} ${recursive ? '' : '-maxdepth 1'} -name ${shQuote(name)} -not -path '*/.git/*' | head -n 2000`,
      timeoutMs: 60_000,
    });
    if (r.exitCode !== 0) throw new ToolError(r.stderr.trim() || `Could not list ${dir}.`);
    return { content: r.stdout.trim() || `No files match ${pattern} in ${dir}.`, isError: false };
  },
};
