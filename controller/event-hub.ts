// Fans out every event the controller publishes or receives to in-process listeners (the SSE endpoint).
import { EventEmitter } from 'node:events';
import type { CloudEvent } from '../common/events.js';

export type HubListener = (subject: string, event: CloudEvent) => void;

export class EventHub {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish(subject: string, event: CloudEvent): void {
    this.emitter.emit('event', subject, event);
  }

  /** Returns the unsubscribe function. */
  subscribe(listener: HubListener): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}
