// Small pieces the views share: a status shown as colour AND text, the live-refetch hook, the loading/error line.
import { useEffect, useRef, useState } from 'preact/hooks';
import { toneOf } from './format.js';
import { RefreshScheduler, type LiveEvent } from './live.js';

export function Status({ status }: { status: string | undefined }) {
  const text = status || 'unknown';
  return <span class={`status tone-${toneOf(status)}`}>{text}</span>;
}

type Listener = (e: LiveEvent) => void;
const listeners = new Set<Listener>();

/** app.tsx feeds every event of the stream here. */
export function publish(e: LiveEvent): void {
  for (const l of listeners) l(e);
}

/**
 * Loads with `load` now and again (coalesced, see RefreshScheduler) on each event `relevant` accepts. `deps` reload at once.
 * Returns the data, the last error (one line) and a reload for after an action.
 */
export function useLive<T>(load: () => Promise<T>, relevant: (e: LiveEvent) => boolean, deps: unknown[]): { data: T | undefined; error: string; reload: () => Promise<void> } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState('');
  const current = useRef({ load, relevant });
  current.current = { load, relevant };
  const reload = async () => {
    try {
      setData(await current.current.load());
      setError('');
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  useEffect(() => {
    setData(undefined);
    void reload();
    const scheduler = new RefreshScheduler(reload, 300);
    const listener: Listener = (e) => {
      if (current.current.relevant(e)) scheduler.poke();
    };
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      scheduler.stop();
    };
  }, deps);
  return { data, error, reload };
}

export function Loading({ error, what }: { error: string; what: string }) {
  return error ? <p class="error" role="alert">Could not load {what}: {error}</p> : <p aria-busy="true">Loading {what}…</p>;
}

/** A table's column headers (scoped, so a screen reader names each cell's column). */
export function TableHead({ columns }: { columns: string[] }) {
  return (
    <thead>
      <tr>
        {columns.map((c) => (
          <th scope="col" key={c}>
            {c}
          </th>
        ))}
      </tr>
    </thead>
  );
}
