import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { packageRoot } from '../platform/app-paths.js';
import { describeMissingTools, missingHostTools, withSbin } from './host-tools.js';

/** What vm-images/build.sh writes to manifest.json; the part Paddock reads. */
export interface ImageManifest {
  format: number;
  /** Hash of the recipe inputs (vm-images/ and src/guest/), also the image folder's name. */
  version: string;
  suite: string;
  builtAt: string;
  buildSeconds: number;
  kernel: { package: string; packageVersion: string; release: string };
  /** False when built with PADDOCK_ALLOW_NO_AGENT=1 (the guest then only prints a marker). */
  agent: boolean;
  files: Record<'vmlinux' | 'initrd.img' | 'rootfs.img', { sha256: string; size: number }>;
  packages: Record<string, string>;
}

/** A finished image on disk. */
export interface ImageInfo {
  dir: string;
  version: string;
  manifest: ImageManifest;
}

/** The sentence a person gets when there is no image yet. */
export const IMAGE_MISSING_HINT =
  'The sandbox VM image is not built yet: run `paddock image build` (about a minute).';

/** No usable image in the data folder; the message says what to run. */
export class ImageMissingError extends Error {
  readonly code = 'IMAGE_MISSING';
  constructor(message = IMAGE_MISSING_HINT) {
    super(message);
    this.name = 'ImageMissingError';
  }
}

/** Building the image failed; `logPath` holds the recipe's full output. */
export class ImageBuildError extends Error {
  readonly code = 'IMAGE_BUILD_FAILED';
  constructor(
    message: string,
    readonly logPath: string,
  ) {
    super(message);
    this.name = 'ImageBuildError';
  }
}

const REQUIRED_FILES = ['vmlinux', 'initrd.img', 'rootfs.img', 'manifest.json'] as const;

/** The folder all images live in. */
export function imagesDir(dataDir: string): string {
  return join(dataDir, 'images');
}

async function listFiles(root: string, rel: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(abs, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(abs, e.name);
      const r = relative(root, p).split(sep).join('/');
      if (e.name.startsWith('.')) continue;
      if (r === 'vm-images/out' || r === 'src/guest/out') continue;
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && !e.name.endsWith('.o')) out.push(r);
    }
  };
  await walk(join(root, rel));
  return out;
}

/**
 * The image version: a hash of every recipe input (vm-images/ and src/guest/). Same algorithm
 * as recipe_version() in vm-images/build.sh: sha256 over `sha256sum` lines of the files sorted
 * by path (byte order), first 16 hex digits.
 */
export async function imageVersion(root: string = packageRoot()): Promise<string> {
  const files = [...(await listFiles(root, 'vm-images')), ...(await listFiles(root, 'src/guest'))];
  files.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const outer = createHash('sha256');
  for (const f of files) {
    const h = createHash('sha256')
      .update(await readFile(join(root, f)))
      .digest('hex');
    outer.update(`${h}  ${f}\n`);
  }
  return outer.digest('hex').slice(0, 16);
}

async function readManifest(dir: string): Promise<ImageManifest | null> {
  for (const f of REQUIRED_FILES) if (!existsSync(join(dir, f))) return null;
  try {
    const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ImageManifest;
    return typeof m.version === 'string' ? m : null;
  } catch {
    return null;
  }
}

/**
 * The image built from the current recipe, or null when there is none (tell the person
 * IMAGE_MISSING_HINT). Only finished builds count: they are renamed into place atomically.
 */
export async function findImage(dataDir: string): Promise<ImageInfo | null> {
  const version = await imageVersion();
  const dir = join(imagesDir(dataDir), version);
  const manifest = await readManifest(dir);
  return manifest ? { dir, version, manifest } : null;
}

/** Like findImage, but throws ImageMissingError with the sentence to act on. */
export async function requireImage(dataDir: string): Promise<ImageInfo> {
  const img = await findImage(dataDir);
  if (!img) throw new ImageMissingError();
  return img;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes partial builds (".build-<pid>-<rand>") whose builder process is gone. */
async function cleanStaleBuilds(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^\.(?:build|old)-(\d+)-/.exec(n);
    if (m && (Number(m[1]) === process.pid ? n.startsWith('.old-') : !pidAlive(Number(m[1])))) {
      await rm(join(dir, n), { recursive: true, force: true });
    }
  }
}

/** One build per data folder at a time: an O_EXCL lock file holding the builder's pid. */
async function acquireLock(dir: string): Promise<() => Promise<void>> {
  const lock = join(dir, '.build.lock');
  for (;;) {
    try {
      const fh = await open(lock, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(lock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (!pid || !pidAlive(pid)) {
        await rm(lock, { force: true });
        continue;
      }
      // Another process is building: wait for it (a second build would only repeat the work).
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

export interface BuildImageOptions {
  dataDir: string;
  /** step is a short word from the recipe (kernel, rootfs, mkfs, ...), fraction in 0..1. */
  onProgress?: (step: string, fraction: number) => void;
  /** Rebuild even when an image for the current recipe exists. */
  force?: boolean;
  /** Extra environment for the recipe (e.g. PADDOCK_MIRROR, PADDOCK_AGENT_BIN). */
  env?: Record<string, string>;
  signal?: AbortSignal;
}

/**
 * Builds the image from vm-images/build.sh into images/.build-<pid>-<rand> and renames it to
 * images/<version> when finished, so a half-written build is never used. Reuses a finished
 * build unless `force`. The recipe's output goes to images/build-<version>.log.
 */
export async function buildImage(opts: BuildImageOptions): Promise<ImageInfo> {
  const root = packageRoot();
  const dir = imagesDir(opts.dataDir);
  await mkdir(dir, { recursive: true });
  const version = await imageVersion(root);
  const finalDir = join(dir, version);

  const release = await acquireLock(dir);
  try {
    await cleanStaleBuilds(dir);
    if (!opts.force) {
      const manifest = await readManifest(finalDir);
      if (manifest) {
        opts.onProgress?.('done', 1);
        return { dir: finalDir, version, manifest };
      }
    }
    const problem = imageBuildProblem(opts.dataDir);
    if (problem) throw new ImageBuildError(problem, '');
    const tmp = join(dir, `.build-${process.pid}-${randomBytes(4).toString('hex')}`);
    const logPath = join(dir, `build-${version}.log`);
    await mkdir(tmp);
    try {
      await runRecipe(root, tmp, version, logPath, opts);
      const manifest = await readManifest(tmp);
      if (!manifest || manifest.version !== version) {
        throw new ImageBuildError(
          `The image recipe finished without a valid manifest; see ${logPath}.`,
          logPath,
        );
      }
      if (existsSync(finalDir)) {
        const old = join(dir, `.old-${process.pid}-${randomBytes(4).toString('hex')}`);
        await rename(finalDir, old);
        await rename(tmp, finalDir);
        await rm(old, { recursive: true, force: true });
      } else {
        await rename(tmp, finalDir);
      }
      return { dir: finalDir, version, manifest };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  } finally {
    await release();
  }
}

async function runRecipe(
  root: string,
  outDir: string,
  version: string,
  logPath: string,
  opts: BuildImageOptions,
): Promise<void> {
  const log = await open(logPath, 'w');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('bash', [join(root, 'vm-images', 'build.sh'), outDir], {
        cwd: root,
        env: {
          ...process.env,
          PATH: withSbin(process.env.PATH),
          ...opts.env,
          PADDOCK_IMAGE_VERSION: version,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Own process group, so that an abort stops mmdebstrap and apt too, not only bash.
        detached: true,
      });
      const onAbort = (): void => {
        if (child.pid) process.kill(-child.pid, 'SIGTERM');
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      let tail = '';
      let pending = '';
      const keep = (s: string): void => {
        tail = (tail + s).slice(-4000);
        void log.write(s);
      };
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        pending += chunk;
        let nl;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          const m = /^@@progress ([\d.]+) (\S+)/.exec(line);
          if (m) opts.onProgress?.(m[2]!, Number(m[1]));
          keep(line + '\n');
        }
      });
      child.stderr.setEncoding('utf8').on('data', keep);
      child.on('error', reject);
      child.on('close', (code, sig) => {
        opts.signal?.removeEventListener('abort', onAbort);
        if (code === 0) return resolve();
        reject(
          new ImageBuildError(
            `Building the VM image failed: ${failureCause(tail, sig ?? `exit ${code}`)}. The full log is in ${logPath}.`,
            logPath,
          ),
        );
      });
    });
  } finally {
    await log.close();
  }
}

/**
 * The one cause of a failed recipe run, from its output: the last `build.sh: ...` sentence (the
 * recipe's die()), else the last non-empty line, else how the process ended.
 */
export function failureCause(output: string, ended: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const died = lines.filter((l) => /^(build\.sh|assemble-rootfs\.sh): /.test(l)).at(-1);
  const cause = (died?.replace(/^[\w.-]+: /, '') ?? lines.at(-1) ?? `the recipe ended (${ended})`)
    .replace(/[.\s]+$/, '')
    .slice(0, 500);
  return cause;
}

/**
 * Why the image cannot be built on this machine, in one sentence with the command that fixes it,
 * or null when it can: every host tool present (with its package named when not), and for a
 * normal user subordinate ids and user namespaces (the rootless build needs both). Checked before
 * anything is downloaded; `paddock doctor` shows the same sentence.
 */
export function imageBuildProblem(dataDir: string): string | null {
  const missing = describeMissingTools(missingHostTools(['image']), 'Building the VM image');
  if (missing) return missing;
  if (process.getuid?.() === 0) return null;
  const user = userInfo().username;
  const asRoot = `\`sudo env PADDOCK_HOME='${dataDir}' npx paddock image build\``;
  const hasIds = (file: string): boolean => {
    try {
      return readFileSync(file, 'utf8')
        .split('\n')
        .some((l) => l.startsWith(`${user}:`));
    } catch {
      return false;
    }
  };
  if (!hasIds('/etc/subuid') || !hasIds('/etc/subgid')) {
    return (
      `Building the VM image as ${user} needs subordinate ids in /etc/subuid and /etc/subgid: run ` +
      `\`sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user}\`, or build as root with ${asRoot}.`
    );
  }
  const probe = spawnSync('unshare', ['--user', '--map-root-user', 'true'], { stdio: 'ignore' });
  if (probe.status !== 0) {
    return (
      `Building the VM image as ${user} needs user namespaces, which this system does not allow ` +
      `(on Ubuntu, AppArmor restricts them): build as root with ${asRoot}.`
    );
  }
  return null;
}

/** Writes a file atomically (temp + rename); used for small caches next to images. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}
