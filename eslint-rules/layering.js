// Enforces the import direction of DESIGN.md in code, not in memory:
//   shared ← platform ← store ← vm ← agent ← automations ← core ← web ← hosts (electron, cli)
// `web` is the browser transport (the HTTP/WebSocket server): `paddock serve` connects it, and it
// imports nothing of a host. Hosts never import each other (the Electron host is index.ts,
// electron/ — its core process's entry included — and ipc/; the CLI is cli/).
// plus: only the Electron host and the preload may import `electron`; only the store may import
// better-sqlite3; the renderer may import only shared and itself; the preload only shared.
import path from 'node:path';

const RANK = {
  shared: 0,
  platform: 1,
  store: 2,
  vm: 3,
  agent: 4,
  automations: 5,
  core: 6,
  web: 7,
  host: 8,
};
/** Host folders, and which host each belongs to. */
const HOST_DIRS = { ipc: 'electron', electron: 'electron', cli: 'cli' };

/** Which layer a file belongs to, from the part of its path after the last `src/`. */
export function layerOf(file) {
  const norm = file.split(path.sep).join('/');
  const i = norm.lastIndexOf('/src/');
  const rel = i >= 0 ? norm.slice(i + 5) : norm.startsWith('src/') ? norm.slice(4) : null;
  if (rel === null) return null;
  const [top, second] = rel.split('/');
  if (top === 'shared') return { layer: 'shared', rank: RANK.shared };
  if (top === 'renderer') return { layer: 'renderer' };
  if (top === 'preload') return { layer: 'preload' };
  if (top === 'guest') return { layer: 'guest' };
  if (top === 'main') {
    if (second === undefined || second === 'index.ts')
      return { layer: 'host', host: 'electron', rank: RANK.host };
    if (second in RANK && second !== 'host' && second !== 'shared')
      return { layer: second, rank: RANK[second] };
    if (second in HOST_DIRS) return { layer: 'host', host: HOST_DIRS[second], rank: RANK.host };
  }
  return null;
}

const ELECTRON_ALLOWED = (from) =>
  from.layer === 'preload' || (from.layer === 'host' && from.host === 'electron');

function check(context, node, spec) {
  const file = context.filename;
  const from = layerOf(file);
  if (!from || typeof spec !== 'string') return;
  const report = (message) => context.report({ node, message });

  if (spec === 'electron' || spec.startsWith('electron/')) {
    if (!ELECTRON_ALLOWED(from)) {
      report(
        `Only the Electron host (src/main/index.ts, src/main/electron, src/main/ipc) and the preload may import 'electron'; ${from.layer} code must not.`,
      );
    }
    return;
  }
  if (spec === 'better-sqlite3' && from.layer !== 'store') {
    report(`All SQL lives in src/main/store: ${from.layer} code must not import better-sqlite3.`);
    return;
  }
  if (!spec.startsWith('.')) return;
  const target = layerOf(path.resolve(path.dirname(file), spec));
  if (!target) return;

  if (from.layer === 'renderer' || from.layer === 'preload') {
    if (target.layer !== 'shared' && target.layer !== from.layer) {
      report(`The ${from.layer} may import only src/shared and itself, not ${target.layer}.`);
    }
    return;
  }
  if (target.layer === 'renderer' || target.layer === 'preload') {
    report(`${from.layer} code must not import the ${target.layer}.`);
    return;
  }
  if (from.rank === undefined || target.rank === undefined) return;
  if (target.rank > from.rank) {
    report(
      `Import against the layer direction: ${from.layer} must not import ${target.layer} (shared ← platform ← store ← vm ← agent ← automations ← core ← web ← hosts).`,
    );
  } else if (from.layer === 'host' && target.layer === 'host' && target.host !== from.host) {
    report(
      `Hosts never import each other: the ${from.host} host must not import the ${target.host} host; move what both need into the core.`,
    );
  }
}

export const layering = {
  meta: {
    type: 'problem',
    docs: { description: 'Enforce Paddock’s import direction' },
    schema: [],
  },
  create(context) {
    return {
      ImportDeclaration: (node) => check(context, node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(context, node, node.source.value),
      ExportAllDeclaration: (node) => check(context, node, node.source.value),
      ImportExpression: (node) =>
        node.source.type === 'Literal' && check(context, node, node.source.value),
    };
  },
};

export const plugin = { rules: { layering } };
