import { useEffect, useState } from 'react';
import type { Res } from '../../../shared/api.js';
import { call } from '../../api/hooks.js';

/**
 * The web host's folder picker: browses folders (never files) on the serving machine, starting at
 * the home folder. System folders are not listed, and the core refuses them if asked.
 */
export function FolderBrowser(props: { onChoose: (path: string) => void; onClose: () => void }) {
  const [listing, setListing] = useState<Res<'grants:browse'> | null>(null);
  const [error, setError] = useState<string | null>(null);

  const open = (path?: string) => {
    setError(null);
    call('grants:browse', path ? { path } : {}).then(setListing, (e: Error) => setError(e.message));
  };
  useEffect(() => {
    call('grants:browse', {}).then(setListing, (e: Error) => setError(e.message));
  }, []);

  return (
    <div className="browser" role="dialog" aria-label="Browse folders" data-testid="folder-browser">
      <div className="browser-head">
        <code className="browser-path" title={listing?.path}>
          {listing?.path ?? '…'}
        </code>
        <button type="button" onClick={props.onClose} aria-label="Close the folder browser">
          Close
        </button>
      </div>
      {error && <p className="error small">{error}</p>}
      <ul className="browser-list">
        {listing?.parent && (
          <li>
            <button type="button" className="link-button" onClick={() => open(listing.parent!)}>
              ↑ Up
            </button>
          </li>
        )}
        {listing?.folders.map((f) => (
          <li key={f.path}>
            <button type="button" className="link-button" onClick={() => open(f.path)}>
              {f.name}/
            </button>
          </li>
        ))}
        {listing && listing.folders.length === 0 && (
          <li className="muted small">No folders here.</li>
        )}
      </ul>
      <div className="browser-foot">
        <button
          type="button"
          className="primary"
          disabled={!listing}
          onClick={() => listing && props.onChoose(listing.path)}
        >
          Use this folder
        </button>
      </div>
    </div>
  );
}
