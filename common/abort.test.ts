import { describe, expect, it } from 'vitest';
import { timeoutSignal } from './abort.js';

const aborted = (signal: AbortSignal): Promise<unknown> => new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }));

describe('timeoutSignal', () => {
  it('aborts on its own timer with a TimeoutError, the parent left alone', async () => {
    const parent = new AbortController();
    const reason = await aborted(timeoutSignal(parent.signal, 20));
    expect((reason as DOMException).name).toBe('TimeoutError');
    expect(parent.signal.aborted).toBe(false);
  });

  it('aborts with its parent, at once when the parent already aborted', async () => {
    const parent = new AbortController();
    const signal = timeoutSignal(parent.signal, 60_000);
    const reason = aborted(signal);
    parent.abort('caller gone');
    expect(await reason).toBe('caller gone');
    expect(timeoutSignal(parent.signal, 60_000).aborted).toBe(true);
  });
});
