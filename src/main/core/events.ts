import { EventEmitter } from 'node:events';
import type { EventName, EventPayload } from '../../shared/api.js';

/** Typed fan-out of contract events to whichever transports are attached. */
export class EventBus {
  private readonly emitter = new EventEmitter();

  emit<E extends EventName>(event: E, payload: EventPayload<E>): void {
    this.emitter.emit('event', event, payload);
  }

  /** Subscribes to every event; returns the unsubscribe function. */
  onAny(listener: (event: EventName, payload: unknown) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }

  dispose(): void {
    this.emitter.removeAllListeners();
  }
}
