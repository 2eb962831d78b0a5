import { buildImage, findImage, ImageBuildError } from '../vm/image.js';
import type { EventBus } from './events.js';

/**
 * `image:build` for the first-run screen: one build at a time, its progress streamed as
 * `image:progress` events so the page can show a progress bar, and the outcome as the last one.
 */
export class ImageBuilds {
  private building: Promise<void> | null = null;
  private readonly controller = new AbortController();

  constructor(
    private readonly dataDir: string,
    private readonly events: EventBus,
  ) {}

  /** Starts a build unless one runs; false when one was already running. */
  start(): boolean {
    if (this.building) return false;
    this.building = this.run().finally(() => (this.building = null));
    return true;
  }

  private async run(): Promise<void> {
    const emit = this.events.emit.bind(this.events);
    try {
      if (await findImage(this.dataDir)) {
        emit('image:progress', { state: 'done', step: 'ready', fraction: 1 });
        return;
      }
      emit('image:progress', { state: 'running', step: 'starting', fraction: 0 });
      let last = -1;
      await buildImage({
        dataDir: this.dataDir,
        signal: this.controller.signal,
        onProgress: (step, fraction) => {
          const pct = Math.round(fraction * 100);
          if (pct === last) return;
          last = pct;
          emit('image:progress', { state: 'running', step, fraction: Math.min(1, fraction) });
        },
      });
      emit('image:progress', { state: 'done', step: 'ready', fraction: 1 });
    } catch (e) {
      const message =
        e instanceof ImageBuildError
          ? e.message
          : `The image build failed: ${(e as Error).message}`;
      emit('image:progress', { state: 'failed', step: 'failed', fraction: 0, message });
    }
  }

  dispose(): void {
    this.controller.abort();
  }
}
