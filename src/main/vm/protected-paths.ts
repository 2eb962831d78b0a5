/**
 * Files that tools on the person's computer run or trust on sight, kept out of the guest's reach
 * in read-write grants.
 *
 * The attack this answers: the guest (root in the VM) writes `core.fsmonitor = <command>` into
 * `/mnt/<repo>/.git/config`, and the next `git status` on the host (editors and shell prompts run
 * one by themselves) runs that command on the host. A renamed hook sample, a new `.envrc`, a
 * `.vscode/tasks.json` that runs on folder open and a `.git` file pointing at a gitdir the guest
 * wrote are the same class. The defence, enforced on the host because the guest can unmount
 * anything inside the VM:
 *
 * 1. Before QEMU starts, {@link readOnlyBindsFor} finds the protected paths that exist in each
 *    read-write grant; QEMU runs in a mount namespace of its own where each is bound read-only
 *    over itself (mount-namespace.ts), so its 9p server gets EROFS (EBUSY for a rename of the
 *    path itself) whatever the guest does.
 * 2. Protected paths that do not exist yet cannot be bound. After every command, after every file
 *    write, and when the session stops, {@link BoundaryGuard.sweep} moves any the guest created
 *    into the session's quarantine folder (never deleting them), and takes the executable bit
 *    off any file that has one at a path that had none before the session.
 * 3. Each refusal, move and bit taken is reported to the model (in the tool result) and the
 *    person (a notice).
 *
 * A grant with `allowProtectedWrites` (the person's explicit choice) skips all of this.
 *
 * Bounded: the walk stops after {@link DEFAULT_MAX_ENTRIES} entries (breadth-first, names
 * sorted), and what lies beyond is reported as not checked rather than slowing every boot.
 */
import { randomBytes } from 'node:crypto';
import { constants as FS, lstatSync, readdirSync, type Dirent, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { hostWritable, type ShareSpec } from './backend.js';

/** One name that host tools run or trust on sight, with the reason it is protected. */
export interface ProtectedName {
  /** A file or folder name (compared without case), or `*.suffix` for a name ending. */
  name: string;
  why: string;
}

/**
 * The documented list. Compared without regard to case (a case-insensitive host filesystem would
 * otherwise let `.GIT` through). Protected at any depth of a grant, as a whole (a folder with
 * everything in it).
 */
export const PROTECTED_NAMES: readonly ProtectedName[] = [
  // Version control: config and hooks run commands on the host's next status, commit or fetch.
  {
    name: '.git',
    why: 'git config (core.fsmonitor, pager, editor, aliases, filters) and hooks run on git commands; a .git file sends git to another gitdir',
  },
  { name: '.gitmodules', why: 'submodule URLs and paths that git submodule follows' },
  { name: '.gitconfig', why: 'git reads it as user config where the folder is a home' },
  { name: '.husky', why: 'git hooks of projects using husky (core.hooksPath)' },
  { name: '.githooks', why: 'git hooks by convention (core.hooksPath)' },
  { name: '.pre-commit-config.yaml', why: 'pre-commit runs the commands it lists on commit' },
  { name: 'lefthook.yml', why: 'lefthook runs the commands it lists on commit' },
  { name: '.lefthook.yml', why: 'lefthook runs the commands it lists on commit' },
  { name: '.hg', why: 'Mercurial: .hg/hgrc hooks run on hg commands' },
  { name: '.jj', why: 'Jujutsu: repo config' },
  // Run on `cd`.
  { name: '.envrc', why: 'direnv runs it when a shell enters the folder' },
  { name: '.autoenv.zsh', why: 'zsh-autoenv runs it on cd' },
  { name: '.autoenv_leave.zsh', why: 'zsh-autoenv runs it on cd' },
  { name: '.mise.toml', why: 'mise runs its env scripts and hooks on cd' },
  { name: 'mise.toml', why: 'mise runs its env scripts and hooks on cd' },
  { name: '.mise.local.toml', why: 'mise runs its env scripts and hooks on cd' },
  { name: 'mise.local.toml', why: 'mise runs its env scripts and hooks on cd' },
  { name: '.mise', why: 'mise config folder' },
  // Shell start-up files: run by every shell where the folder is a home.
  ...[
    '.bashrc',
    '.bash_profile',
    '.bash_login',
    '.bash_logout',
    '.profile',
    '.zshrc',
    '.zshenv',
    '.zprofile',
    '.zlogin',
    '.zlogout',
  ].map((name) => ({ name, why: 'a shell runs it at start-up' })),
  // Editors and IDEs.
  {
    name: '.vscode',
    why: 'VS Code: tasks.json runs on folder open, settings.json names binaries (git.path, terminal profiles), launch.json',
  },
  { name: '*.code-workspace', why: 'VS Code workspace: settings and tasks' },
  { name: '.idea', why: 'JetBrains IDEs: run configurations, startup tasks, tool paths' },
  { name: '.fleet', why: 'JetBrains Fleet: run configurations' },
  { name: '.zed', why: 'Zed: tasks and language server binaries' },
  { name: '.devcontainer', why: 'Dev Containers: initializeCommand runs on the host' },
  { name: '.devcontainer.json', why: 'Dev Containers: initializeCommand runs on the host' },
  { name: '.nvim.lua', why: "Neovim runs it with 'exrc'" },
  { name: '.nvimrc', why: "Neovim runs it with 'exrc'" },
  { name: '.exrc', why: "Vim runs it with 'exrc'" },
  { name: '*.sublime-project', why: 'Sublime Text: build systems' },
  // Coding agents on the host.
  { name: '.claude', why: 'Claude Code: settings hooks run commands' },
  { name: '.mcp.json', why: 'MCP servers that coding agents start' },
  { name: '.cursor', why: 'Cursor: MCP servers and rules' },
  // Tools that read project config on any command.
  { name: '.npmrc', why: 'npm: script-shell, node-options on any npm command' },
  { name: '.yarnrc', why: 'yarn: yarn-path runs a file on any yarn command' },
  { name: '.yarnrc.yml', why: 'yarn: yarnPath runs a file on any yarn command' },
  {
    name: '.cargo',
    why: 'cargo: rustc-wrapper and runners, run by editors’ cargo check on open',
  },
  { name: '.ripgreprc', why: 'ripgrep flags (--pre runs a command)' },
];

const EXACT = new Set(PROTECTED_NAMES.filter((p) => !p.name.startsWith('*')).map((p) => p.name));
const SUFFIXES = PROTECTED_NAMES.filter((p) => p.name.startsWith('*')).map((p) => p.name.slice(1));

/** Whether a single file or folder name is on the protected list (without regard to case). */
export function isProtectedName(name: string): boolean {
  const n = name.toLowerCase();
  return EXACT.has(n) || SUFFIXES.some((s) => n.endsWith(s) && n.length > s.length);
}

/**
 * The walk's default limit in entries per grant: past it, a huge folder is checked only in part
 * (breadth-first, so the top levels, where editors and git look first, always are). Measured on
 * a loaded 2-core machine, 100,000 files: the bind walk before QEMU starts ~0.1 s, the inventory
 * (one lstat per file, while the VM boots) ~0.4–0.7 s, a sweep ~10 ms when little changed (a
 * folder whose ctime did not move is not listed again).
 */
export const DEFAULT_MAX_ENTRIES = 100_000;

/** What is known about one grant before the session's first command. */
export interface ShareInventory {
  share: string;
  /** The grant's real path. */
  root: string;
  /** False when the walk stopped at its limit. */
  complete: boolean;
  entries: number;
  /**
   * Folders (relative, '' for the root) whose entries were all seen, with what the sweep needs
   * to skip one that did not change: its inode and change time (ctime, which nobody can set: a
   * rename, link or new entry in a folder changes it) and its subfolders.
   */
  covered: Map<string, DirState>;
  /** Every folder met, listed or not. */
  dirs: Set<string>;
  /** Regular files with an executable bit (only when scanned with modes). */
  exec: Set<string>;
  /** Protected paths that exist, with the identity they must keep. */
  protected: Map<string, Identity>;
  /** Paths git config points at (hooksPath, scripts) that do not exist yet. */
  watch: Set<string>;
  ms: number;
}

interface DirState {
  ino: bigint;
  ctimeNs: bigint;
  /** Changed less than a second before the walk: its ctime may not move for a change in the same clock tick, so it is always listed. */
  recent: boolean;
  subdirs: string[];
}

/**
 * A folder whose ctime is under a second old: a change in the same clock tick (coarse, a few ms)
 * would leave its ctime as it is, so such a folder is always listed.
 */
function isRecent(ctimeNs: bigint): boolean {
  return Number(ctimeNs / 1_000_000n) > Date.now() - 1000;
}

interface Identity {
  dev: number;
  ino: number;
  kind: 'dir' | 'file' | 'symlink' | 'other';
}

function identityOf(st: Stats): Identity {
  return {
    dev: st.dev,
    ino: st.ino,
    kind: st.isDirectory()
      ? 'dir'
      : st.isFile()
        ? 'file'
        : st.isSymbolicLink()
          ? 'symlink'
          : 'other',
  };
}

const sameIdentity = (a: Identity, b: Identity) =>
  a.dev === b.dev && a.ino === b.ino && a.kind === b.kind;

/** Whether `child` is `parent` or below it (both absolute, normalised). */
function within(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Reads at most `max` bytes of a regular file without following a final symlink. */
async function readSmall(file: string, max: number): Promise<string | null> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, FS.O_RDONLY | FS.O_NOFOLLOW | FS.O_NONBLOCK);
    if (!(await fh.stat()).isFile()) return null;
    const buf = Buffer.alloc(max);
    const { bytesRead } = await fh.read(buf, 0, max, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } catch {
    return null;
  } finally {
    await fh?.close();
  }
}

/** Paths a git config names that git runs or reads as config: hooks, includes, commands. */
export interface GitConfigRefs {
  /** core.hooksPath values. */
  hookDirs: string[];
  /** include.path and includeIf.*.path values. */
  includes: string[];
  /** The program of each command-valued key (core.fsmonitor, filters, aliases, …) with a `/`. */
  commands: string[];
  /** core.worktree, if set. */
  worktree?: string;
}

const COMMAND_KEYS = new Set([
  'core.fsmonitor',
  'core.sshcommand',
  'core.pager',
  'core.editor',
  'core.askpass',
  'core.gitproxy',
  'sequence.editor',
  'credential.helper',
  'gpg.program',
  'filter.clean',
  'filter.smudge',
  'filter.process',
  'diff.command',
  'diff.textconv',
  'merge.driver',
  'difftool.cmd',
  'mergetool.cmd',
  'interactive.difffilter',
  'uploadpack.packobjectshook',
]);

/** Unquotes a git config value: `"` groups, backslash escapes, comments outside quotes. */
function configValue(raw: string): string {
  let out = '';
  let quoted = false;
  let pendingSpace = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\' && i + 1 < raw.length) {
      const n = raw[++i]!;
      out += pendingSpace + ({ n: '\n', t: '\t', b: '\b' }[n] ?? n);
      pendingSpace = '';
    } else if (c === '"') {
      out += pendingSpace;
      pendingSpace = '';
      quoted = !quoted;
    } else if (!quoted && (c === '#' || c === ';')) {
      break;
    } else if (!quoted && (c === ' ' || c === '\t')) {
      if (out) pendingSpace += c;
    } else {
      out += pendingSpace + c;
      pendingSpace = '';
    }
  }
  return out;
}

/** The program a shell command starts with, if it names a path (has a `/`). */
function commandPath(value: string): string | null {
  const v = value.trim().replace(/^!\s*/, '');
  const m = /^(?:"([^"]*)"|'([^']*)'|([^\s;|&<>()]+))/.exec(v);
  const word = m?.[1] ?? m?.[2] ?? m?.[3];
  return word && word.includes('/') ? word : null;
}

/**
 * The paths a git config names (a small reader of git's config syntax: sections, subsections,
 * quotes, escapes, continuation lines, comments). Only keys whose values git runs or reads.
 */
export function gitConfigRefs(text: string): GitConfigRefs {
  const refs: GitConfigRefs = { hookDirs: [], includes: [], commands: [] };
  let section = '';
  const lines = text.replace(/\\\r?\n/g, '').split(/\r?\n/);
  for (let line of lines) {
    const header = /^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"(?:[^"\\]|\\.)*")?\s*\](.*)$/.exec(line);
    if (header) {
      section = header[1]!.toLowerCase().split('.')[0]!;
      line = header[2]!;
    }
    const kv = /^\s*([A-Za-z][A-Za-z0-9-]*)\s*(?:=(.*))?$/.exec(line);
    if (!kv) continue;
    const key = `${section}.${kv[1]!.toLowerCase()}`;
    const value = configValue(kv[2] ?? '');
    if (key === 'core.hookspath') refs.hookDirs.push(value);
    else if (key === 'include.path' || key === 'includeif.path') refs.includes.push(value);
    else if (key === 'core.worktree') refs.worktree = value;
    else if (COMMAND_KEYS.has(key) || section === 'pager' || section === 'alias') {
      if (section === 'alias' && !value.trim().startsWith('!')) continue;
      const p = commandPath(value);
      if (p) refs.commands.push(p);
    }
  }
  return refs;
}

/** What a `.git` file says: the gitdir it points at, or null. */
export function gitFileTarget(text: string): string | null {
  const m = /^gitdir:\s*(.+?)\s*$/m.exec(text);
  return m ? m[1]! : null;
}

/**
 * Adds to `out` the gitdir itself, its common dir (worktrees) and every path its config names
 * (hooks, included config, command scripts), all as absolute paths. `worktree` is where git runs
 * commands from (the folder holding `.git`), or null for a bare gitdir.
 */
async function collectGitDir(
  gitDir: string,
  worktree: string | null,
  out: Set<string>,
  depth = 0,
): Promise<void> {
  if (depth > 3 || out.has(gitDir)) return;
  out.add(gitDir);
  const common = await readSmall(path.join(gitDir, 'commondir'), 4096);
  const dirs = [gitDir];
  if (common?.trim()) {
    const c = path.resolve(gitDir, common.trim());
    out.add(c);
    dirs.push(c);
  }
  for (const dir of dirs) {
    const configs = [path.join(dir, 'config')];
    for (let i = 0; i < configs.length && i < 8; i++) {
      const text = await readSmall(configs[i]!, 256 * 1024);
      if (text === null) continue;
      const refs = gitConfigRefs(text);
      const wt = refs.worktree ? path.resolve(dir, refs.worktree) : worktree;
      const base = wt ?? dir;
      const home = (p: string) => p.startsWith('~');
      for (const p of refs.hookDirs) if (!home(p)) out.add(path.resolve(base, p));
      for (const p of refs.commands) if (!home(p)) out.add(path.resolve(base, p));
      for (const p of refs.includes) {
        if (home(p)) continue;
        const inc = path.resolve(path.dirname(configs[i]!), p);
        out.add(inc);
        configs.push(inc);
      }
    }
  }
}

/** Reads a `.git` found at `dotGit` (a folder or a gitdir file) into `out`. */
async function collectDotGit(dotGit: string, st: Stats, out: Set<string>): Promise<void> {
  const worktree = path.dirname(dotGit);
  if (st.isDirectory()) return collectGitDir(dotGit, worktree, out);
  if (!st.isFile()) return;
  const target = gitFileTarget((await readSmall(dotGit, 4096)) ?? '');
  if (target) await collectGitDir(path.resolve(worktree, target), worktree, out);
}

/** Whether a listed folder is shaped like a gitdir (git would take it for a bare repository). */
function gitShaped(ents: Dirent[]): boolean {
  let head = false;
  let objects = false;
  let refs = false;
  for (const e of ents) {
    if (e.name === 'HEAD' && e.isFile()) head = true;
    else if (e.name === 'objects' && e.isDirectory()) objects = true;
    else if (e.name === 'refs' && e.isDirectory()) refs = true;
  }
  return head && objects && refs;
}

const byName = (a: Dirent, b: Dirent) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The walks use the synchronous calls in short slices: measured here, lstatSync is about four
 * times faster than fs.promises.lstat (no thread-pool round trip per file), and yielding every
 * {@link SLICE} entries keeps the event loop free (each slice is a millisecond or two).
 */
const SLICE = 1000;
let sinceYield = 0;
async function pace(n: number): Promise<void> {
  sinceYield += n;
  if (sinceYield < SLICE) return;
  sinceYield = 0;
  await new Promise((r) => setImmediate(r));
}

function listDir(abs: string): Dirent[] | null {
  try {
    return readdirSync(abs, { withFileTypes: true });
  } catch {
    return null;
  }
}

/** lstat for many files, null for any that is gone. */
async function lstatAll(paths: string[]): Promise<(Stats | null)[]> {
  const out: (Stats | null)[] = [];
  for (let i = 0; i < paths.length; i += SLICE) {
    for (const p of paths.slice(i, i + SLICE))
      out.push(lstatSync(p, { throwIfNoEntry: false }) ?? null);
    await pace(Math.min(SLICE, paths.length - i));
  }
  return out;
}

/** Options of {@link scanShare}. */
export interface ScanOptions {
  maxEntries?: number;
  /** Record executable files (one lstat per file); the bind list does not need them. */
  modes?: boolean;
}

/**
 * Walks one grant breadth-first (names sorted, so two walks cover the same folders), never
 * following a symlink and never entering a protected folder, and records the protected paths
 * that exist, the executable files, and what git config points at. The repository that holds the
 * grant, if any, counts too: its config can name hooks inside the grant.
 */
export async function scanShare(
  share: string,
  root: string,
  opts: ScanOptions = {},
): Promise<ShareInventory> {
  const t0 = performance.now();
  const max = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const inv: ShareInventory = {
    share,
    root,
    complete: true,
    entries: 0,
    covered: new Map(),
    dirs: new Set(['']),
    exec: new Set(),
    protected: new Map(),
    watch: new Set(),
    ms: 0,
  };
  const pointed = new Set<string>();
  await collectEnclosingRepo(root, pointed);

  const queue: string[] = [''];
  for (let q = 0; q < queue.length; q++) {
    const rel = queue[q]!;
    const abs = path.join(root, rel);
    // The folder's ctime before its listing: a change in between shows as a changed ctime.
    const dst = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
    const ents = listDir(abs);
    if (!ents || !dst?.isDirectory()) continue;
    await pace(ents.length);
    if (inv.entries + ents.length > max) {
      inv.complete = false;
      break;
    }
    inv.entries += ents.length;
    const state: DirState = {
      ino: dst.ino,
      ctimeNs: dst.ctimeNs,
      recent: isRecent(dst.ctimeNs),
      subdirs: [],
    };
    inv.covered.set(rel, state);
    if (gitShaped(ents)) {
      const st = await fs.lstat(abs).catch(() => null);
      if (st) inv.protected.set(rel, identityOf(st));
      await collectGitDir(abs, null, pointed);
      continue;
    }
    ents.sort(byName);
    const files: string[] = [];
    for (const e of ents) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (isProtectedName(e.name)) {
        const st = await fs.lstat(path.join(root, r)).catch(() => null);
        if (!st) continue;
        inv.protected.set(r, identityOf(st));
        if (e.name.toLowerCase() === '.git') await collectDotGit(path.join(root, r), st, pointed);
      } else if (e.isDirectory()) {
        inv.dirs.add(r);
        state.subdirs.push(r);
        queue.push(r);
      } else if (e.isFile() && opts.modes) {
        files.push(r);
      }
    }
    const stats = await lstatAll(files.map((f) => path.join(root, f)));
    stats.forEach((st, i) => {
      if (st?.isFile() && st.mode & 0o111) inv.exec.add(files[i]!);
    });
  }

  // What git config points at inside the grant is protected like .git itself.
  for (const p of pointed) {
    const real = await fs.realpath(p).catch(() => null);
    const abs = real ?? path.resolve(p);
    if (!within(abs, root)) continue;
    const rel = path.relative(root, abs);
    if (underProtected(rel, inv.protected)) continue;
    const st = real ? await fs.lstat(abs).catch(() => null) : null;
    if (st) inv.protected.set(rel, identityOf(st));
    else inv.watch.add(rel);
  }
  inv.ms = Math.round(performance.now() - t0);
  return inv;
}

/** Whether `rel` is a protected path of the inventory or lies inside one. */
function underProtected(rel: string, prot: Map<string, Identity>): boolean {
  for (let r = rel; ; r = path.dirname(r)) {
    if (prot.has(r === '.' ? '' : r)) return true;
    if (r === '.' || r === '' || r === '/') return false;
  }
}

/** The repository whose worktree holds `root`, if any: its `.git` adds what it points at. */
async function collectEnclosingRepo(root: string, out: Set<string>): Promise<void> {
  for (let d = path.dirname(root); ; d = path.dirname(d)) {
    const dotGit = path.join(d, '.git');
    const st = await fs.lstat(dotGit).catch(() => null);
    if (st) {
      await collectDotGit(dotGit, st, out);
      return;
    }
    if (d === path.dirname(d)) return;
  }
}

/**
 * The paths to bind read-only over themselves for QEMU: every protected file or folder that
 * exists (a symlink is left alone: the 9p server never follows one, and a bind would land on
 * its target), outermost first, none inside another.
 */
export function bindTargets(inv: ShareInventory): string[] {
  const rels = [...inv.protected]
    .filter(([, id]) => id.kind === 'dir' || id.kind === 'file')
    .map(([rel]) => rel)
    .sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
  const out: string[] = [];
  for (const rel of rels) {
    if (out.some((o) => within(path.join(inv.root, rel), o))) continue;
    out.push(path.join(inv.root, rel));
  }
  return out;
}

/**
 * Whether this share gets the protection: the guest writes the folder itself (read-write, not
 * review: a review share is read-only on the host), and the person did not waive it.
 */
export function guarded(s: ShareSpec): boolean {
  return hostWritable(s) && !s.allowProtectedWrites;
}

/**
 * The paths QEMU must see read-only, for a VM about to start: what {@link bindTargets} gives for
 * each guarded share (its walk needs no per-file lstat, so it is quick).
 */
export async function readOnlyBindsFor(
  shares: readonly ShareSpec[],
  maxEntries = DEFAULT_MAX_ENTRIES,
): Promise<string[]> {
  const out: string[] = [];
  for (const s of shares.filter(guarded)) {
    const root = await fs.realpath(s.hostPath).catch(() => path.resolve(s.hostPath));
    out.push(...bindTargets(await scanShare(s.name, root, { maxEntries })));
  }
  return out;
}

/** Something the boundary refused or undid, for the model and the person. */
export interface BoundaryFinding {
  kind: 'write-refused' | 'quarantined' | 'exec-cleared' | 'unchecked' | 'failed';
  /** The grant's name (`/mnt/<share>`). */
  share: string;
  /** Relative to the grant. */
  path: string;
  /** A sentence for the model and the person (no host paths). */
  message: string;
}

/** Why the boundary acts, said once in every note. */
export const BOUNDARY_WHY =
  'In read-write folders, files that tools on the person’s computer run by themselves (git config and hooks, editor tasks and settings, direnv, …) are read-only to the VM, and no file may gain an executable bit, unless the person allows it for that folder.';

function finding(kind: BoundaryFinding['kind'], share: string, rel: string): BoundaryFinding {
  const where = `/mnt/${share}/${rel}`.replace(/\/$/, '');
  const message = {
    'write-refused': `A write to ${where} was refused (read-only to the VM).`,
    quarantined: `${where} was created or replaced in the VM and has been moved out of the folder (kept in the session's quarantine).`,
    'exec-cleared': `${where} lost its executable bit on the host: that path had none before this session.`,
    unchecked: `/mnt/${share} is large: only its first entries (breadth-first) are checked; deeper files host tools run are not protected.`,
    failed: `${where} should have been moved out of the folder but could not be; the person should check it.`,
  }[kind];
  return { kind, share, path: rel, message };
}

/**
 * Formats findings as the note a tool result or a notice to the person carries, or '' when
 * there are none.
 */
export function boundaryNote(findings: readonly BoundaryFinding[]): string {
  if (findings.length === 0) return '';
  const lines = findings.slice(0, 20).map((f) => `- ${f.message}`);
  if (findings.length > 20) lines.push(`- … and ${findings.length - 20} more.`);
  return `[Paddock boundary] ${BOUNDARY_WHY}\n${lines.join('\n')}`;
}

/** Options of {@link BoundaryGuard}. */
export interface BoundaryGuardOptions {
  shares: readonly ShareSpec[];
  /** Where moved-aside files go: `<quarantineDir>/<share>/<path>`. */
  quarantineDir: string;
  maxEntries?: number;
}

/**
 * One session's watch over its read-write grants: the inventory before the first command, the
 * sweep after each, the refusals seen in command output. Sweeps run one at a time.
 */
export class BoundaryGuard {
  private readonly shares: ShareSpec[];
  private inventories: Promise<ShareInventory[]> | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private reportedUnchecked = new Set<string>();

  constructor(private readonly opts: BoundaryGuardOptions) {
    this.shares = opts.shares.filter(guarded);
  }

  /** Whether any grant is guarded (otherwise every method is a no-op). */
  get active(): boolean {
    return this.shares.length > 0;
  }

  /** The inventory, taken once, before the guest runs anything. */
  inventory(): Promise<ShareInventory[]> {
    this.inventories ??= Promise.all(
      this.shares.map(async (s) => {
        const root = await fs.realpath(s.hostPath).catch(() => path.resolve(s.hostPath));
        return scanShare(s.name, root, {
          modes: true,
          ...(this.opts.maxEntries ? { maxEntries: this.opts.maxEntries } : {}),
        });
      }),
    );
    return this.inventories;
  }

  /** The read-only binds QEMU must have, from the inventory. */
  async bindTargets(): Promise<string[]> {
    return (await this.inventory()).flatMap(bindTargets);
  }

  /** Grants too large to check whole, reported once each. */
  async notes(): Promise<BoundaryFinding[]> {
    const out: BoundaryFinding[] = [];
    for (const inv of await this.inventory()) {
      if (inv.complete || this.reportedUnchecked.has(inv.share)) continue;
      this.reportedUnchecked.add(inv.share);
      out.push(finding('unchecked', inv.share, ''));
    }
    return out;
  }

  /**
   * Quarantines protected paths the guest created or replaced and takes executable bits it
   * gained; returns what it did. Never follows a symlink; never deletes.
   */
  sweep(): Promise<BoundaryFinding[]> {
    if (!this.active) return Promise.resolve([]);
    const run = this.chain.then(async () => {
      const out: BoundaryFinding[] = [];
      for (const inv of await this.inventory()) {
        out.push(...(await sweepShare(inv, this.opts.quarantineDir, this.opts.maxEntries)));
      }
      return out;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Before a file write by the host's tools (write_file): the protected grant path it would land
   * on, or null. `guestPath` is absolute in the guest.
   */
  async refuseWrite(guestPath: string): Promise<BoundaryFinding | null> {
    const m = /^\/mnt\/([^/]+)\/(.+)$/.exec(path.posix.normalize(guestPath));
    if (!m) return null;
    const s = this.shares.find((x) => x.name === m[1]);
    if (!s) return null;
    const rel = m[2]!.replace(/\/+$/, '');
    const inv = (await this.inventory()).find((i) => i.share === s.name);
    const parts = rel.split('/');
    const hit =
      parts.some(isProtectedName) ||
      (inv !== undefined &&
        (underProtected(rel, inv.protected) ||
          [...inv.watch].some((w) => rel === w || rel.startsWith(`${w}/`))));
    return hit ? finding('write-refused', s.name, rel) : null;
  }

  /**
   * Passes a command's output through unchanged while noting lines where a write to a protected
   * path was refused (EROFS from the read-only binds, EBUSY for a rename of one).
   */
  outputTap(): { pipe(src: Readable): Readable; findings(): BoundaryFinding[] } {
    const seen = new Map<string, BoundaryFinding>();
    const shares = this.shares;
    return {
      pipe(src: Readable): Readable {
        let carry = '';
        const t = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            const text = carry + chunk.toString('latin1');
            const lines = text.split('\n');
            carry = lines.pop()!.slice(-1024);
            for (const l of lines) refusalsIn(l, shares, seen);
            cb(null, chunk);
          },
          flush(cb) {
            refusalsIn(carry, shares, seen);
            cb();
          },
        });
        // Errors (the VM died) must reach the reader, which pipe() alone does not do.
        src.on('error', (e) => t.destroy(e));
        return src.pipe(t);
      },
      findings: () => [...seen.values()],
    };
  }
}

const REFUSED = /read-only file system|\berofs\b|device or resource busy|\bebusy\b/i;
const NAME_ALT = PROTECTED_NAMES.map((p) =>
  p.name.startsWith('*')
    ? `[^\\s'"\`/:]+${p.name.slice(1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`
    : p.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
).join('|');
const PROTECTED_IN_TEXT = new RegExp(
  `(?<=^|[\\s'"\`:(=])(?:[^\\s'"\`:]*/)?(?:${NAME_ALT})(?=$|[/\\s'"\`:,)])(?:/[^\\s'"\`:,)]*)?`,
  'gi',
);

/** Adds to `seen` the protected paths a line of command output says a write to was refused. */
function refusalsIn(
  line: string,
  shares: readonly ShareSpec[],
  seen: Map<string, BoundaryFinding>,
): void {
  if (!REFUSED.test(line) || seen.size >= 50) return;
  for (const m of line.matchAll(PROTECTED_IN_TEXT)) {
    let p = m[0];
    let share = shares[0]?.name ?? '';
    const abs = /^\/mnt\/([^/]+)\/(.*)$/.exec(p);
    if (abs) {
      share = abs[1]!;
      p = abs[2]!;
    } else if (p.startsWith('/')) continue; // outside the grants
    p = path.posix.normalize(p).replace(/^(\.\/)+/, '');
    if (!shares.some((s) => s.name === share) || p.startsWith('..')) continue;
    const key = `${share}/${p}`;
    if (!seen.has(key)) seen.set(key, finding('write-refused', share, p));
  }
}

/** One grant's sweep; see {@link BoundaryGuard.sweep}. */
async function sweepShare(
  inv: ShareInventory,
  quarantineDir: string,
  maxEntries = DEFAULT_MAX_ENTRIES,
): Promise<BoundaryFinding[]> {
  const out: BoundaryFinding[] = [];
  const ids = new Set([...inv.protected.values()].map((i) => `${i.dev}:${i.ino}:${i.kind}`));
  const { root } = inv;
  // The whole grant is a gitdir, bound read-only: nothing in it can change.
  if (inv.protected.has('')) return out;
  // A folder is walked when the inventory listed it whole, or when it is new (every entry in
  // it is then the guest's); a folder that existed but lay past the limit is not.
  const queue: { rel: string; fresh: boolean }[] = [{ rel: '', fresh: false }];
  let entries = 0;
  for (let q = 0; q < queue.length; q++) {
    const { rel, fresh } = queue[q]!;
    const abs = path.join(root, rel);
    const before = fresh ? undefined : inv.covered.get(rel);
    const dst = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
    if (!dst?.isDirectory()) continue;
    if (before && !before.recent && dst.ino === before.ino && dst.ctimeNs === before.ctimeNs) {
      // Unchanged since the inventory: no entry was added, removed, renamed or linked here.
      for (const d of before.subdirs) queue.push({ rel: d, fresh: false });
      entries += 1;
      continue;
    }
    // A folder that is new, or replaced (another inode), holds only the guest's entries.
    const isNew = fresh || !before || dst.ino !== before.ino;
    const ents = listDir(abs);
    if (!ents) continue;
    await pace(ents.length);
    entries += ents.length;
    if (entries > maxEntries * 1.5) {
      out.push(finding('unchecked', inv.share, rel));
      break;
    }
    if (gitShaped(ents) && !inv.protected.has(rel)) {
      // A gitdir the guest shaped: without its HEAD git no longer takes it for a repository.
      const head = rel ? `${rel}/HEAD` : 'HEAD';
      await act(out, 'quarantined', inv, head, () =>
        quarantine(root, head, quarantineDir, inv.share),
      );
    }
    const files: string[] = [];
    const subdirs: string[] = [];
    for (const e of ents.sort(byName)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const known = inv.protected.get(r);
      if (isProtectedName(e.name) || known || inv.watch.has(r)) {
        const st = lstatSync(path.join(root, r), { throwIfNoEntry: false });
        if (!st) continue;
        const id = identityOf(st);
        // The person's own (bound read-only, so unchanged), here or moved with its folder.
        if ((known && sameIdentity(known, id)) || ids.has(`${id.dev}:${id.ino}:${id.kind}`))
          continue;
        await act(out, 'quarantined', inv, r, () => quarantine(root, r, quarantineDir, inv.share));
      } else if (e.isDirectory()) {
        // A folder that existed but lay past the walk's limit is not entered: nothing is known
        // of what it held.
        if (inv.covered.has(r) && !isNew) queue.push({ rel: r, fresh: false });
        else if (isNew || !inv.dirs.has(r)) queue.push({ rel: r, fresh: true });
        else continue;
        subdirs.push(r);
      } else if (e.isFile() && !inv.exec.has(r)) {
        files.push(r);
      }
    }
    const stats = await lstatAll(files.map((f) => path.join(root, f)));
    for (let i = 0; i < files.length; i++) {
      const st = stats[i];
      if (!st?.isFile() || !(st.mode & 0o111)) continue;
      await act(out, 'exec-cleared', inv, files[i]!, () => clearExec(root, files[i]!, st));
    }
    // Checked as of `dst` (taken before the listing): the next sweep skips this folder unless
    // its ctime moves, which our own moves above make it do once.
    inv.dirs.add(rel);
    inv.covered.set(rel, {
      ino: dst.ino,
      ctimeNs: dst.ctimeNs,
      recent: isRecent(dst.ctimeNs),
      subdirs,
    });
  }
  return out;
}

async function act(
  out: BoundaryFinding[],
  kind: 'quarantined' | 'exec-cleared',
  inv: ShareInventory,
  rel: string,
  fn: () => Promise<void>,
): Promise<void> {
  try {
    await fn();
    out.push(finding(kind, inv.share, rel));
  } catch {
    out.push(finding('failed', inv.share, rel));
  }
}

/**
 * SECURITY: the guest can rename a host symlink that was already in the grant into a folder's
 * place between our look and our act; refuse to act unless the folder is still what its path
 * says (no symlink on the way).
 */
async function assertRealParent(root: string, rel: string): Promise<string> {
  const abs = path.join(root, rel);
  const parent = path.dirname(abs);
  if ((await fs.realpath(parent)) !== parent || !within(abs, root) || abs === root)
    throw new Error(`${rel} moved while it was checked`);
  return abs;
}

/** Moves a path out of the grant into the quarantine folder (copy then remove across disks). */
async function quarantine(root: string, rel: string, qdir: string, share: string): Promise<void> {
  const src = await assertRealParent(root, rel);
  const base = path.join(qdir, share, rel);
  await fs.mkdir(path.dirname(base), { recursive: true, mode: 0o700 });
  let dest = base;
  for (
    let i = 1;
    await fs.lstat(dest).then(
      () => true,
      () => false,
    );
    i++
  )
    dest = `${base}.${i}`;
  try {
    await fs.rename(src, dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    // Symlinks are copied as symlinks, never followed.
    await fs.cp(src, dest, {
      recursive: true,
      verbatimSymlinks: true,
      errorOnExist: true,
      force: false,
    });
    await fs.rm(src, { recursive: true, force: true });
  }
}

/**
 * Takes the executable bits (and set-id bits) off a file, through a descriptor opened without
 * following a symlink and checked to be the file that was looked at. A file with other hard
 * links gets a copy of its own without the bits, so the other names keep theirs.
 */
async function clearExec(root: string, rel: string, seen: Stats): Promise<void> {
  const abs = await assertRealParent(root, rel);
  const fh = await fs.open(abs, FS.O_RDONLY | FS.O_NOFOLLOW | FS.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.ino !== seen.ino || st.dev !== seen.dev)
      throw new Error(`${rel} changed while it was checked`);
    const mode = st.mode & 0o666;
    if (st.nlink <= 1) {
      await fh.chmod(mode);
      return;
    }
    const tmp = path.join(path.dirname(abs), `.paddock-${randomBytes(6).toString('hex')}.tmp`);
    const out = await fs.open(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW, mode);
    try {
      const buf = Buffer.alloc(1 << 16);
      for (let pos = 0; ;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        await out.write(buf, 0, bytesRead);
        pos += bytesRead;
      }
      await out.chmod(mode);
    } finally {
      await out.close();
    }
    await fs.rename(tmp, abs).catch(async (e: unknown) => {
      await fs.rm(tmp, { force: true });
      throw e;
    });
  } finally {
    await fh.close();
  }
}
