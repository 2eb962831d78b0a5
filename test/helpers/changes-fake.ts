import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EventBus } from '../../src/main/core/events.js';
import { ChangeService, type ChangeServiceDeps } from '../../src/main/core/changes/service.js';
import type {
  StagedEntry,
  StagedListing,
  StagedSource,
} from '../../src/main/core/changes/types.js';
import { Store } from '../../src/main/store/store.js';

/**
 * A review grant's overlay made of folders, standing in for the VM (the one part of staging that
 * needs one): `lower` is the person's folder, `upper` holds the session's files, and deletions
 * and opaque folders are kept as lists, as the guest's listing reports them.
 */
export class FakeOverlay {
  readonly whiteouts = new Set<string>();
  readonly opaque = new Set<string>();
  /** Entries added to the listing as they are (hostile ones). */
  readonly extra: StagedEntry[] = [];
  truncated = false;
  /** Paths read from the upper layer, in order. */
  readonly reads: string[] = [];

  constructor(
    readonly name: string,
    readonly lower: string,
    readonly upper: string,
  ) {
    fs.mkdirSync(upper, { recursive: true });
  }

  private at(rel: string): string {
    return path.join(this.upper, ...rel.split('/'));
  }

  /** The session writes a file (its folders made in the upper layer). */
  write(rel: string, content: string | Buffer, mode = 0o644): this {
    this.whiteouts.delete(rel);
    fs.mkdirSync(path.dirname(this.at(rel)), { recursive: true });
    fs.rmSync(this.at(rel), { force: true, recursive: true });
    fs.writeFileSync(this.at(rel), content);
    fs.chmodSync(this.at(rel), mode);
    return this;
  }

  /** The session copies a file up unchanged and changes its mode. */
  chmod(rel: string, mode: number): this {
    if (!fs.existsSync(this.at(rel))) {
      fs.mkdirSync(path.dirname(this.at(rel)), { recursive: true });
      fs.copyFileSync(path.join(this.lower, ...rel.split('/')), this.at(rel));
    }
    fs.chmodSync(this.at(rel), mode);
    return this;
  }

  symlink(rel: string, target: string): this {
    fs.mkdirSync(path.dirname(this.at(rel)), { recursive: true });
    fs.rmSync(this.at(rel), { force: true });
    fs.symlinkSync(target, this.at(rel));
    return this;
  }

  /** The session deletes a path (a whiteout over the folder's copy). */
  remove(rel: string): this {
    fs.rmSync(this.at(rel), { force: true, recursive: true });
    this.whiteouts.add(rel);
    return this;
  }

  /** The session replaces a folder by a new, empty one (opaque: the folder's files are hidden). */
  replaceDir(rel: string): this {
    fs.rmSync(this.at(rel), { force: true, recursive: true });
    fs.mkdirSync(this.at(rel), { recursive: true });
    this.whiteouts.delete(rel);
    this.opaque.add(rel);
    return this;
  }

  /** A rename: the new path written with the old one's content, the old one deleted. */
  rename(from: string, to: string): this {
    this.write(to, fs.readFileSync(path.join(this.lower, ...from.split('/'))));
    return this.remove(from);
  }

  listing(): StagedListing {
    const entries: StagedEntry[] = [];
    const walk = (dir: string, rel: string) => {
      for (const d of fs
        .readdirSync(dir, { withFileTypes: true })
        .sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const r = rel ? `${rel}/${d.name}` : d.name;
        const abs = path.join(dir, d.name);
        const st = fs.lstatSync(abs);
        if (d.isDirectory()) {
          entries.push({
            path: r,
            type: this.opaque.has(r) ? 'opaque' : 'dir',
            mode: st.mode & 0o7777,
            lower: null,
          });
          walk(abs, r);
        } else if (d.isSymbolicLink()) {
          const target = fs.readlinkSync(abs);
          entries.push({
            path: r,
            type: 'symlink',
            size: Buffer.byteLength(target),
            target,
            lower: null,
          });
        } else {
          const data = fs.readFileSync(abs);
          entries.push({
            path: r,
            type: 'file',
            mode: st.mode & 0o7777,
            size: data.length,
            sha256: createHash('sha256').update(data).digest('hex'),
            lower: null,
          });
        }
      }
    };
    walk(this.upper, '');
    for (const w of this.whiteouts) entries.push({ path: w, type: 'whiteout', lower: null });
    entries.push(...this.extra);
    return {
      truncated: this.truncated,
      shares: [{ name: this.name, truncated: this.truncated, skipped: 0, entries }],
    };
  }

  source(maxReadBytes?: number): StagedSource {
    return {
      ...(maxReadBytes ? { maxReadBytes } : {}),
      list: async () => this.listing(),
      read: async (name, rel, max) => {
        if (name !== this.name) throw new Error(`no share ${name}`);
        this.reads.push(rel);
        const data = fs.readFileSync(this.at(rel));
        if (data.length > max) throw new Error('too large');
        return data;
      },
    };
  }
}

/** Every file and link under `root` (folders only by what they hold): type, mode, content hash. */
export function treeOf(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      const abs = path.join(dir, d.name);
      if (d.isDirectory()) walk(abs, r);
      else if (d.isSymbolicLink()) out[r] = `link:${fs.readlinkSync(abs)}`;
      else {
        const mode = (fs.lstatSync(abs).mode & 0o7777).toString(8);
        out[r] = `file:${mode}:${createHash('sha256').update(fs.readFileSync(abs)).digest('hex')}`;
      }
    }
  };
  walk(root, '');
  return out;
}

/** The folders under `root`, for checking that undo leaves none it made. */
export function dirsOf(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true }))
      if (d.isDirectory()) {
        const r = rel ? `${rel}/${d.name}` : d.name;
        out.push(r);
        walk(path.join(dir, d.name), r);
      }
  };
  walk(root, '');
  return out.sort();
}

/** What the folder would hold with the overlay's changes in it: the staged state. */
export function mergedTree(o: FakeOverlay): Record<string, string> {
  const tree = treeOf(o.lower);
  const drop = (prefix: string) => {
    for (const k of Object.keys(tree))
      if (k === prefix || k.startsWith(prefix + '/')) delete tree[k];
  };
  for (const w of o.whiteouts) drop(w);
  for (const d of o.opaque) drop(d);
  const upper = treeOf(o.upper);
  // A folder in the upper layer hides a file of the same name below.
  const walkDirs = (dir: string, rel: string) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true }))
      if (d.isDirectory()) {
        const r = rel ? `${rel}/${d.name}` : d.name;
        delete tree[r];
        walkDirs(path.join(dir, d.name), r);
      }
  };
  walkDirs(o.upper, '');
  for (const [k, v] of Object.entries(upper)) {
    drop(k);
    tree[k] = v;
  }
  return tree;
}

/** A store, a task with one review grant on `lower`, and the change service over them. */
export function setup(
  dataDir: string,
  lower: string,
  opts: Partial<ChangeServiceDeps> & { name?: string; allowProtectedWrites?: boolean } = {},
) {
  const store = Store.open(dataDir);
  const events = new EventBus();
  const name = opts.name ?? 'work';
  const task = store.sessions.create({
    title: 'Edit the folder',
    model: 'm',
    approvalMode: 'auto',
    folders: [
      {
        hostPath: lower,
        name,
        readOnly: false,
        review: true,
        ...(opts.allowProtectedWrites ? { allowProtectedWrites: true } : {}),
      },
    ],
  }).id;
  const service = new ChangeService({
    store,
    events,
    dataDir,
    pruneOnStart: false,
    blobGraceMs: 0,
    ...opts,
  });
  const seen: string[] = [];
  events.onAny((e, p) => {
    if (e === 'changes:changed') seen.push((p as { id: string }).id);
  });
  return {
    store,
    events,
    task,
    service,
    seen,
    close: () => {
      service.dispose();
      store.dispose();
    },
  };
}

/** Writes files under `root` from a map of relative path → content. */
export function writeTree(root: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(root, ...rel.split('/'));
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, content);
  }
}
