import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChangeService } from '../src/main/core/changes/service.js';
import { vmStagedSource } from '../src/main/core/changes/vm-source.js';
import type { StagedEntry, StagedSource } from '../src/main/core/changes/types.js';
import { EventBus } from '../src/main/core/events.js';
import { Store } from '../src/main/store/store.js';
import { findImage } from '../src/main/vm/image.js';
import { QemuBackend } from '../src/main/vm/qemu/backend.js';
import { Sandbox } from '../src/main/vm/sandbox.js';
import { median, round } from './stats.js';
import type { BenchSuite } from './suites.js';

const FILES = 10_000;
const CHANGED = 100;
const RUNS = 5;

const rel = (i: number) =>
  `src/d${String(i % 100).padStart(2, '0')}/f${String(i).padStart(5, '0')}.txt`;
const content = (i: number, v: string) => `${v} file ${i}\n${'x'.repeat(200 + (i % 300))}\n`;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * A session's listing made in memory (no VM): `CHANGED` of the folder's files rewritten, or the
 * whole `src` folder deleted. Staging reads the folder itself, as it does for a real session.
 */
function source(kind: 'modify' | 'delete', run: number): StagedSource {
  const data = new Map<string, Buffer>();
  const entries: StagedEntry[] = [];
  if (kind === 'delete') entries.push({ path: 'src', type: 'whiteout', lower: null });
  else {
    entries.push({ path: 'src', type: 'dir', mode: 0o755, lower: null });
    const dirs = new Set<string>();
    for (let k = 0; k < CHANGED; k++) {
      const i = k * (FILES / CHANGED);
      const p = rel(i);
      const dir = path.posix.dirname(p);
      if (!dirs.has(dir)) {
        dirs.add(dir);
        entries.push({ path: dir, type: 'dir', mode: 0o755, lower: null });
      }
      const b = Buffer.from(content(i, `new ${run}`));
      data.set(p, b);
      entries.push({
        path: p,
        type: 'file',
        mode: 0o644,
        size: b.length,
        sha256: sha(b),
        lower: null,
      });
    }
  }
  return {
    list: async () => ({
      truncated: false,
      shares: [{ name: 'work', truncated: false, skipped: 0, entries }],
    }),
    read: async (_name, p) => data.get(p)!,
  };
}

/**
 * Staged folder edits: staging a changeset from a listing against a folder of 10,000 files (100
 * changed; and the whole folder deleted), applying the 100 (journal, fsync, rename per file) and
 * undoing them.
 */
export const changesSuite: BenchSuite = {
  name: 'changes',
  async run(log) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-bench-changes-'));
    const figures: Record<string, number | string> = {};
    try {
      const folder = path.join(root, 'folder');
      for (let i = 0; i < FILES; i++) {
        const abs = path.join(folder, rel(i));
        fs.mkdirSync(path.dirname(abs), { recursive: true });
        fs.writeFileSync(abs, content(i, 'old'));
      }
      const lower = fs.realpathSync(folder);
      const stage: number[] = [];
      const apply: number[] = [];
      const undo: number[] = [];
      const del: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const dataDir = path.join(root, `data${run}`);
        const store = Store.open(dataDir);
        const service = new ChangeService({
          store,
          events: new EventBus(),
          dataDir,
          pruneOnStart: false,
        });
        try {
          const task = store.sessions.create({
            title: 'bench',
            model: 'm',
            approvalMode: 'auto',
            folders: [{ hostPath: lower, name: 'work', readOnly: false, review: true }],
          }).id;
          let t0 = performance.now();
          const staged = await service.stage(task, source('modify', run));
          stage.push(performance.now() - t0);
          const id = staged.changesets[0]!.id;
          t0 = performance.now();
          const a = await service.apply(id);
          apply.push(performance.now() - t0);
          if (a.refused.length) throw new Error(`apply refused ${a.refused.length} files`);
          t0 = performance.now();
          const u = await service.undo(id);
          undo.push(performance.now() - t0);
          if (u.refused.length) throw new Error(`undo refused ${u.refused.length} files`);

          const other = store.sessions.create({
            title: 'bench delete',
            model: 'm',
            approvalMode: 'auto',
            folders: [{ hostPath: lower, name: 'work', readOnly: false, review: true }],
          }).id;
          t0 = performance.now();
          const gone = await service.stage(other, source('delete', run));
          del.push(performance.now() - t0);
          if (gone.changesets[0]!.counts.deleted !== FILES)
            throw new Error('not every file listed');
        } finally {
          service.dispose();
          store.dispose();
        }
      }
      figures.stage_10k_100_ms = round(median(stage), 1);
      figures.apply_100_ms = round(median(apply), 1);
      figures.undo_100_ms = round(median(undo), 1);
      figures.stage_delete_10k_ms = round(median(del), 1);
      log(`stage 10k/100: ${stage.map((x) => round(x, 0)).join(', ')} ms`);
      log(`apply 100: ${apply.map((x) => round(x, 0)).join(', ')} ms`);
      log(`stage a deletion of 10k: ${del.map((x) => round(x, 0)).join(', ')} ms`);
      Object.assign(figures, await stageInVm(root, log));
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
    return figures;
  },
};

/**
 * The whole path in a real VM (TCG here): a review grant of 10,000 files, 100 of them rewritten
 * in the guest, then staged: the guest lists its overlay, the 100 files are copied out and the
 * changeset made. Needs the built image (PADDOCK_TEST_CACHE, as the vm suite); says so if absent.
 */
async function stageInVm(
  root: string,
  log: (line: string) => void,
): Promise<Record<string, number | string>> {
  const home = process.env.PADDOCK_TEST_CACHE ?? path.join(os.tmpdir(), 'paddock-test-home');
  const image = await findImage(home);
  if (!image) return { stage_10k_100_vm_note: 'no VM image: run the vm suite first' };
  const folder = path.join(root, 'vm-folder');
  for (let i = 0; i < FILES; i++) {
    const p = path.join(folder, rel(i));
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content(i, 'old'));
  }
  const share = { hostPath: folder, name: 'w', readOnly: false, review: true };
  const sandbox = new Sandbox({
    backend: new QemuBackend(),
    imageDir: image.dir,
    sessionDir: path.join(root, 'vm-session'),
    runDir: root,
    shares: [share],
    allowHosts: [],
    memoryMb: 512,
    cpus: 2,
  });
  const data = path.join(root, 'vm-data');
  const store = Store.open(data);
  const service = new ChangeService({
    store,
    events: new EventBus(),
    dataDir: data,
    pruneOnStart: false,
  });
  try {
    const vm = await sandbox.ready();
    const edits = Array.from({ length: CHANGED }, (_, k) => rel(k * (FILES / CHANGED)));
    const h = await sandbox.exec({
      cwd: '/mnt/w',
      shell: `for f in ${edits.join(' ')}; do echo changed >> "$f"; done`,
    });
    h.stdin.end();
    h.stdout.resume();
    h.stderr.resume();
    if ((await h.result).exitCode !== 0) throw new Error('the guest could not edit the files');
    const task = store.sessions.create({
      title: 'bench',
      model: 'm',
      approvalMode: 'auto',
      folders: [share],
    });
    const t0 = performance.now();
    const staged = await service.stage(
      task.id,
      vmStagedSource(() => Promise.resolve(vm), ['w']),
      [share],
    );
    const ms = performance.now() - t0;
    if (staged.changesets[0]?.counts.modified !== CHANGED) throw new Error('not every edit staged');
    log(`stage 10k/100 from the VM (${vm.accel}): ${round(ms, 0)} ms`);
    return { stage_10k_100_vm_ms: round(ms, 0), stage_vm_accel: vm.accel };
  } finally {
    service.dispose();
    store.dispose();
    await sandbox.stop();
  }
}
