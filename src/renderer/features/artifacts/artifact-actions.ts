import { artifactFileName } from '../../../shared/app-contract.js';
import { call } from '../../api/hooks.js';
import { sourceExtension } from './artifact-model.js';

/** How long a download's blob: URL stays valid (the download has started by then). */
const BLOB_URL_LIFE_MS = 60_000;

/** Saves text as a file: a download in the browser, the save dialog in Electron. */
export function downloadText(text: string, filename: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  link.style.display = 'none';
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), BLOB_URL_LIFE_MS);
}

/** Saves one version's source as `title-vN.ext`. */
export function saveSource(a: { title: string; kind: string; version: number; content: string }) {
  downloadText(
    a.content,
    artifactFileName(a.title, a.version, sourceExtension(a.kind)),
    a.kind === 'svg' ? 'image/svg+xml' : 'text/plain;charset=utf-8',
  );
}

/**
 * Saves the standalone document of one version, from the core (`artifacts:export`: libraries
 * inlined, no network), as `title-vN.html`.
 */
export async function exportArtifact(id: string, version: number): Promise<void> {
  const { filename, html } = await call('artifacts:export', { id, version });
  downloadText(html, filename, 'text/html;charset=utf-8');
}
