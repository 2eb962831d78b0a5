import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  describeMissingTools,
  HOST_TOOLS,
  installCommand,
  missingHostTools,
} from '../../src/main/vm/host-tools.js';

/**
 * The install list is complete: every program that Paddock, its image recipe or its tests run on
 * the host comes from a package scripts/setup.sh installs. The programs are collected from the
 * code itself (shell scripts by command position, TypeScript by spawn/execFile literals), resolved
 * on this machine, and their owning package found with `dpkg -S`; nothing here is a copy of
 * setup.sh's list. (kmod was missing from setup.sh for weeks: the image never built on a new
 * machine while CI, on a machine that had it, stayed green.)
 */

const repo = path.resolve(import.meta.dirname, '../..');

/** Host shell scripts (vm-images/init and paddock-init run inside the guest, not on the host). */
const SHELL_FILES = [
  'vm-images/build.sh',
  'vm-images/fetch-kernel.sh',
  'vm-images/assemble-rootfs.sh',
  'src/guest/build.sh',
  '.ci/run',
  ...fs
    .readdirSync(path.join(repo, 'scripts'))
    .filter((f) => f.endsWith('.sh'))
    .map((f) => `scripts/${f}`),
];

/** Run, but not installed by setup.sh, and why. */
const PREREQUISITES = new Map([
  ['node', "Node is the README's prerequisite"],
  ['npm', "Node is the README's prerequisite"],
  ['npx', "Node is the README's prerequisite"],
  ['sudo', 'setup.sh runs it only for a normal user, and says so when it is missing'],
]);

const KEYWORDS = new Set(
  'if then else elif fi case esac for select while until do done in function time coproc'.split(
    ' ',
  ),
);
const BUILTINS = new Set(
  execFileSync('bash', ['-c', 'compgen -b'], { encoding: 'utf8' }).split('\n').filter(Boolean),
);

interface Use {
  name: string;
  where: string;
}

/**
 * Quoted text set aside in one pass from the left (so an apostrophe inside double quotes does not
 * open a single-quoted string): single-quoted text becomes '', double-quoted text keeps only the
 * command substitutions inside it. Line breaks are kept.
 */
function stripQuotes(text: string): string {
  let out = '';
  for (let i = 0; i < text.length;) {
    const c = text[i]!;
    if (c === '\\') {
      out += text.slice(i, i + 2);
      i += 2;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      const stop = end < 0 ? text.length : end + 1;
      out += blank(text.slice(i, stop), "''");
      i = stop;
    } else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const inner = text.slice(i + 1, j);
      const subs = inner.match(/\$\([^)]*\)?/g);
      out += blank(text.slice(i, j + 1), subs ? subs.map(stripQuotes).join(' ') : '""');
      i = j + 1;
    } else {
      out += c;
      i += 1;
    }
  }
  return out;
}

/** Keeps a match's line breaks, so that line numbers stay true after blanking it. */
const blank = (m: string, keep = ''): string => keep + m.replace(/[^\n]/g, '').padEnd(0);

/** The words in command position of a shell script, with quoted text and comments set aside. */
export function shellCommands(text: string, file: string): Use[] {
  const functions = new Set([...text.matchAll(/^\s*([\w-]+)\s*\(\)\s*\{/gm)].map((m) => m[1]!));
  const noComments = text
    // here-documents: text for another program or another machine, not commands run here
    .replace(
      /<<-?[ \t]*(['"]?)(\w+)\1([^\n]*\n)([\s\S]*?\n)[ \t]*\2\n/g,
      (m, _q, _w, rest: string) => blank(m, `<<x${rest.replace(/\n$/, '')}`),
    )
    // comments (a # that starts a word), before quotes so that an apostrophe in one is harmless
    .replace(/(^|[ \t])#[^\n]*/gm, '$1')
    // parameter expansions: ${NAME}, ${NAME:-default}
    .replace(/\$\{[^}\n]*\}/g, 'x')
    // arithmetic: $(( ... ))
    .replace(/\$\(\([^)]*\)\)/g, 'x');
  const clean = stripQuotes(noComments)
    // array literals: NAME=( words )
    .replace(/\b[A-Za-z_]\w*\+?=\([^)]*\)/g, (m) => blank(m, 'x=x'))
    // continued lines join the line they continue (\0 stands for the newline, for line numbers)
    .replace(/\\\n/g, ' \0');
  const uses: Use[] = [];
  const re =
    /(?:^|[;&|(]|\{(?=\s)|\$\(|\$SUDO\s|\b(?:xargs|sudo|env)\s)[ \t\0]*(?:(?:then|do|else|elif|if|while|until|time|exec|!)[ \t\0]+)*(?:-\S+[ \t\0]+)*(?:[A-Za-z_]\w*\+?=(?:(?!\$\()\S)*[ \t\0]+)*([A-Za-z][\w.+-]*)(?![\w.+-])(?!\+?=|\[)/gm;
  for (const m of clean.matchAll(re)) {
    const name = m[1]!;
    if (KEYWORDS.has(name) || BUILTINS.has(name) || functions.has(name)) continue;
    const line = (clean.slice(0, m.index).match(/[\n\0]/g)?.length ?? 0) + 1;
    uses.push({ name, where: `${file}:${line}` });
  }
  return uses;
}

function walk(dir: string, exts: string[]): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(repo, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...walk(rel, exts));
    else if (exts.some((x) => e.name.endsWith(x))) out.push(rel);
  }
  return out;
}

/** Programs the TypeScript runs by name: spawn/execFile literals and QEMU's default binaries. */
function codeCommands(): Use[] {
  const files = [
    ...walk('src/main', ['.ts']),
    ...walk('test', ['.ts']),
    ...walk('bench', ['.ts']),
    ...walk('scripts', ['.mjs']),
  ];
  const uses: Use[] = [];
  // spawn('x', ...), a `cond ? ['x', [args]]` pair that is then spawned, and `Binary ?? 'x'`.
  const re =
    /(?:\b(?:spawn|spawnSync|execFile|execFileSync|execFileP)\(\s*|\?\s*\[\s*(?='[^']+',\s*\[)|Binary \?\? )'([a-z][\w.+-]*)'/g;
  for (const f of files) {
    if (f === 'test/unit/host-tools.test.ts') continue;
    const text = fs.readFileSync(path.join(repo, f), 'utf8');
    for (const m of text.matchAll(re)) {
      const line = text.slice(0, m.index).split('\n').length;
      uses.push({ name: m[1]!, where: `${f}:${line}` });
    }
  }
  return uses;
}

/** Debian's own folders only: a tool under /usr/local or ~ is not something setup.sh installs. */
const SYSTEM_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

function resolve(name: string): string | null {
  const r = spawnSync('bash', ['-c', 'command -v -- "$1"', 'bash', name], {
    encoding: 'utf8',
    env: { ...process.env, PATH: SYSTEM_PATH },
  });
  const p = r.stdout.trim();
  return r.status === 0 && p.startsWith('/') ? p : null;
}

/** The package that owns a file, trying the usrmerge spellings dpkg may know it by. */
function owner(file: string): string | null {
  const real = fs.realpathSync(file);
  const variants = [file, real].flatMap((p) =>
    p.startsWith('/usr/') ? [p, p.slice(4)] : [p, `/usr${p}`],
  );
  for (const v of variants) {
    const r = spawnSync('dpkg', ['-S', v], { encoding: 'utf8' });
    const line = r.stdout.split('\n').find((l) => !l.startsWith('diversion'));
    if (r.status === 0 && line) return line.split(':')[0]!.split(',')[0]!.trim();
  }
  return null;
}

function essential(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Essential}', pkg], { encoding: 'utf8' });
  return r.stdout.trim() === 'yes';
}

function directDepends(pkg: string): Set<string> {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Depends}, ${Pre-Depends}', pkg], {
    encoding: 'utf8',
  });
  return new Set(
    r.stdout
      .split(/[,|]/)
      .map((d) => d.trim().split(/[\s:(]/)[0]!)
      .filter(Boolean),
  );
}

/** The packages in setup.sh's PACKAGES=( ... ) list. */
function setupPackages(text: string): Set<string> {
  const m = /^PACKAGES=\(\n([\s\S]*?)^\)/m.exec(text);
  if (!m) throw new Error('scripts/setup.sh has no PACKAGES=( ... ) list');
  return new Set(
    m[1]!
      .split('\n')
      .map((l) => l.replace(/#.*$/, ''))
      .flatMap((l) => l.split(/\s+/))
      .filter(Boolean),
  );
}

/**
 * Every problem with the install list, as sentences naming the program and the package to add.
 * `setupText` is setup.sh's text, so that a mutation can be checked without touching the file.
 */
function installListProblems(setupText: string): string[] {
  const setup = setupPackages(setupText);
  const byName = new Map(HOST_TOOLS.map((t) => [t.name, t]));
  const uses = [
    ...SHELL_FILES.flatMap((f) => shellCommands(fs.readFileSync(path.join(repo, f), 'utf8'), f)),
    ...codeCommands(),
    ...HOST_TOOLS.map((t) => ({ name: t.path ?? t.name, where: 'src/main/vm/host-tools.ts' })),
  ];
  const seen = new Map<string, string>();
  for (const u of uses) if (!seen.has(u.name)) seen.set(u.name, u.where);

  const problems: string[] = [];
  for (const [name, where] of seen) {
    if (PREREQUISITES.has(name)) continue;
    const tool = byName.get(path.basename(name));
    const file = name.startsWith('/') ? (fs.existsSync(name) ? name : null) : resolve(name);
    if (!file) {
      problems.push(
        tool
          ? `${name} (run at ${where}) is not installed here: add the package ${tool.pkg} to scripts/setup.sh.`
          : `${name} (run at ${where}) is not installed here: install the package that provides it, add it to scripts/setup.sh and to HOST_TOOLS.`,
      );
      continue;
    }
    const pkg = owner(file);
    if (!pkg) {
      problems.push(`${name} (run at ${where}) resolves to ${file}, which no package owns.`);
      continue;
    }
    if (essential(pkg) && !tool) continue;
    if (!tool) {
      problems.push(
        `${name} (run at ${where}) comes from the package ${pkg}: add it to HOST_TOOLS in src/main/vm/host-tools.ts and the package to scripts/setup.sh.`,
      );
      continue;
    }
    if (tool.pkg !== pkg && !directDepends(tool.pkg).has(pkg)) {
      problems.push(
        `${name} comes from the package ${pkg}, but HOST_TOOLS says ${tool.pkg}: correct it.`,
      );
    }
    if (!setup.has(tool.pkg) && !essential(tool.pkg)) {
      problems.push(
        `${name} (run at ${where}) comes from the package ${tool.pkg}, which scripts/setup.sh does not install: add ${tool.pkg} to its PACKAGES list.`,
      );
    }
  }
  return problems;
}

const setupText = fs.readFileSync(path.join(repo, 'scripts/setup.sh'), 'utf8');

describe('the install list', () => {
  it('finds the programs the scripts run in command position, not in strings or awk', () => {
    const uses = shellCommands(
      [
        'die() { :; }',
        'depmod -b "$X" 1 || die "depmod failed (apt-get install kmod)"',
        'A="$(lz4 -dc x)"; awk \'{ print sort }\' y | sort',
        'DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y pkg',
        'if command -v strip >/dev/null; then strip x; fi # then gcc',
      ].join('\n'),
      'x.sh',
    ).map((u) => u.name);
    expect(uses).toEqual(['depmod', 'lz4', 'awk', 'sort', 'apt-get', 'strip']);
  });

  it('covers every program the code and scripts run with a package setup.sh installs', () => {
    expect(installListProblems(setupText)).toEqual([]);
  });

  it('fails naming the program and the package when a package is dropped from setup.sh', () => {
    const mutated = setupText.replace(/^(\s*bash apt mmdebstrap busybox-static) kmod /m, '$1 ');
    expect(mutated).not.toBe(setupText);
    expect(installListProblems(mutated)).toContainEqual(
      expect.stringMatching(
        /^depmod \(run at vm-images\/build\.sh:\d+\) comes from the package kmod, which scripts\/setup\.sh does not install/,
      ),
    );
  });

  it('names every missing tool with its package and one install command', () => {
    const missing = missingHostTools(['image'], { root: false, envPath: '/nonexistent' });
    const names = missing.map((t) => t.name);
    // /usr/sbin and /sbin are always searched; everything else is missing with an empty PATH.
    expect(names).toContain('mmdebstrap');
    expect(names).toContain('newuidmap');
    expect(names).not.toContain('depmod');
    const sentence = describeMissingTools(
      HOST_TOOLS.filter((t) => t.name === 'depmod' || t.name === 'lz4'),
      'Building the VM image',
    );
    expect(sentence).toBe(
      `Building the VM image needs depmod (package kmod) and lz4 (package lz4), which are missing: run \`${installCommand(['kmod', 'lz4'])}\` (or \`./scripts/setup.sh\`).`,
    );
    expect(installCommand(['kmod', 'kmod', 'lz4'], false)).toBe(
      'sudo apt-get install --no-install-recommends kmod lz4',
    );
    expect(missingHostTools(['image', 'vm'], { root: true })).toEqual([]);
  });
});
