import { useState } from 'react';
import type { Grant } from '../../../shared/app-contract.js';
import { call } from '../../api/hooks.js';
import { FolderBrowser } from './FolderBrowser.js';

/**
 * How a person adds a folder: the native picker in Electron, or in the web host a typed path or
 * the folder browser. Every path goes through `grants:add`/`grants:pick`, which judge it.
 */
export function GrantAdder(props: {
  host: 'electron' | 'web' | 'cli';
  /** Accessible name of the typed-path field. */
  label: string;
  onGrant: (g: Grant) => void;
  onError: (message: string | null) => void;
}) {
  const { host, label, onGrant, onError } = props;
  const [typed, setTyped] = useState('');
  const [browsing, setBrowsing] = useState(false);

  const add = async (path: string) => {
    if (!path) return;
    onError(null);
    try {
      onGrant(await call('grants:add', { path, readOnly: false }));
      setTyped('');
      setBrowsing(false);
    } catch (e) {
      onError((e as Error).message);
    }
  };
  const pick = async () => {
    onError(null);
    try {
      const r = await call('grants:pick', { readOnly: false });
      if (r.grant) onGrant(r.grant);
    } catch (e) {
      onError((e as Error).message);
    }
  };

  if (host === 'electron') {
    return (
      <button type="button" onClick={() => void pick()}>
        Choose folder…
      </button>
    );
  }
  return (
    <>
      <div className="row">
        <input
          type="text"
          className="grow"
          placeholder="/home/you/Documents/project"
          aria-label={label}
          value={typed}
          onChange={(e) => setTyped(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter') {
              e.preventDefault();
              void add(typed.trim());
            }
          }}
        />
        <button type="button" disabled={!typed.trim()} onClick={() => void add(typed.trim())}>
          Add folder
        </button>
        <button type="button" onClick={() => setBrowsing((b) => !b)} aria-expanded={browsing}>
          Browse…
        </button>
      </div>
      {browsing && (
        <FolderBrowser onChoose={(p) => void add(p)} onClose={() => setBrowsing(false)} />
      )}
    </>
  );
}
