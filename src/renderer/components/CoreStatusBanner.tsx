import { useState } from 'react';
import type { CoreStatus } from '../../shared/api.js';
import { call, useEvent } from '../api/hooks.js';

/**
 * Says so when Paddock's engine (the Electron app's core process) crashed and is restarting, and
 * offers Restart once it stopped retrying, so a crash there never leaves a dead window. Hidden
 * again when the engine is back. Never shown in the browser, where no such event comes.
 */
export function CoreStatusBanner(props: { onReady?: () => void }) {
  const [status, setStatus] = useState<CoreStatus | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEvent('core:status', (s) => {
    setProblem(null);
    if (s.state === 'ready') {
      setStatus(null);
      props.onReady?.();
    } else setStatus(s);
  });
  if (!status) return null;
  const restart = () =>
    call('core:restart', {}).then(
      () => setProblem(null),
      (e: Error) => setProblem(e.message),
    );
  return (
    <div className="toast" role="alert" data-testid="core-status">
      <span>{status.message}</span>
      {status.state === 'failed' && (
        <>
          {' '}
          <button type="button" className="primary" onClick={() => void restart()}>
            Restart
          </button>
        </>
      )}
      {problem && <span className="error"> {problem}</span>}
    </div>
  );
}
