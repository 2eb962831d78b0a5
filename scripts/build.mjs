// Builds every bundle Paddock runs: the CLI, the Electron main, its core process and preload, and
// the renderer.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const dist = path.join(root, 'dist');
const started = Date.now();

const node = {
  platform: 'node',
  target: 'node20',
  bundle: true,
  format: 'esm',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
  // ESM bundles still need require() for the few CJS-only spots in dependencies.
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
};

await Promise.all([
  build({ ...node, entryPoints: ['src/main/cli/entry.ts'], outfile: path.join(dist, 'cli.js') }),
  build({
    ...node,
    entryPoints: ['src/main/index.ts'],
    outfile: path.join(dist, 'main', 'index.js'),
    external: ['electron'],
  }),
  // The core process, its own file next to index.js, which starts it with utilityProcess.fork.
  build({
    ...node,
    entryPoints: ['src/main/electron/core-process-entry.ts'],
    outfile: path.join(dist, 'main', 'core-process.js'),
  }),
  build({
    entryPoints: ['src/preload/index.ts'],
    outfile: path.join(dist, 'preload', 'index.cjs'),
    platform: 'node',
    target: 'chrome120',
    format: 'cjs',
    bundle: true,
    external: ['electron'],
    logLevel: 'warning',
  }),
  build({
    entryPoints: ['src/renderer/main.tsx'],
    outfile: path.join(dist, 'renderer', 'app.js'),
    platform: 'browser',
    target: 'chrome120',
    format: 'esm',
    bundle: true,
    minify: true,
    sourcemap: 'linked',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  }),
  // The artifact frame's libraries that npm ships only as CommonJS, bundled for the browser, each
  // setting the global the frame uses (ARTIFACT_LIBRARIES in src/main/core/artifact-frame.ts; the
  // others are read from node_modules as they are).
  ...Object.entries({
    'react.js':
      "globalThis.React = require('react'); globalThis.ReactDOM = Object.assign({}, require('react-dom'), require('react-dom/client'));",
    'highlight.js': "globalThis.hljs = require('highlight.js/lib/common');",
    'sucrase.js': "globalThis.sucrase = { transform: require('sucrase').transform };",
  }).map(([name, contents]) =>
    build({
      stdin: { contents, resolveDir: root, loader: 'js' },
      outfile: path.join(dist, 'artifact-lib', name),
      platform: 'browser',
      target: 'chrome120',
      format: 'iife',
      bundle: true,
      minify: true,
      legalComments: 'inline',
      define: { 'process.env.NODE_ENV': '"production"' },
      logLevel: 'warning',
    }),
  ),
]);

for (const f of ['index.html', 'app.css']) {
  fs.copyFileSync(path.join(root, 'src', 'renderer', f), path.join(dist, 'renderer', f));
}
process.stdout.write(`paddock: built dist/ in ${Date.now() - started} ms\n`);
