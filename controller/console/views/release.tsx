// One release: head, operator actions (role and status permitting), the batches as a timeline, each instance's steps
// with durations (a page at a time), and the change records.
import { useState } from 'preact/hooks';
import { rpc } from '../api.js';
import { ACTION_LABELS, actionsFor, type ActionName } from '../actions.js';
import { Loading, Status, TableHead, useLive } from '../components.js';
import { elapsed, formatTime } from '../format.js';
import type { Batch, ReleaseDetail, Whoami } from '../types.js';


const PAGE = 200;

export function ReleaseView({ id, me }: { id: string; me: Whoami | undefined }) {
  const [pages, setPages] = useState(1);
  const { data, error, reload } = useLive<ReleaseDetail>(
    () => rpc<ReleaseDetail>('getRelease', { id, query: { limit: Math.min(pages * PAGE, 1000) } }),
    (e) => e.release === id,
    [id, pages],
  );
  if (!data?.release) return <Loading error={error} what={`release ${id}`} />;
  const r = data.release;
  const now = Date.now();
  return (
    <section aria-labelledby="release-h">
      <h1 id="release-h" tabIndex={-1}>
        Release {r.id}
      </h1>
      {error && <p class="error" role="alert">Refresh failed: {error}</p>}
      <dl class="head">
        <dt>Status</dt>
        <dd data-testid="release-status">
          <Status status={r.status} />
          {r.message && <span class="muted"> {r.message}</span>}
        </dd>
        {r.waitingFor && (
          <>
            <dt>Waiting for</dt>
            <dd>{r.waitingFor}</dd>
          </>
        )}
        <dt>App, edition</dt>
        <dd>
          {r.app} → {r.edition} (group {r.group})
        </dd>
        <dt>Batch</dt>
        <dd>
          {r.currentBatch ?? 0} of {r.batchCount ?? 0}
        </dd>
        <dt>Created</dt>
        <dd>
          {formatTime(r.createdUnixMs)} by {r.createdBy || 'unknown'}
        </dd>
        {r.finishedUnixMs ? (
          <>
            <dt>Took</dt>
            <dd>{elapsed(r.createdUnixMs, r.finishedUnixMs, now)}</dd>
          </>
        ) : null}
      </dl>
      <Actions id={id} me={me} detail={data} onDone={reload} />

      <h2>Batches</h2>
      <ol class="timeline" aria-label="Batch timeline">
        {(data.batches ?? []).map((b) => (
          <BatchItem key={b.number} b={b} now={now} />
        ))}
      </ol>

      <h2>Instances</h2>
      <table class="instances">
        <TableHead columns={['Instance', 'Batch', 'Status', 'Edition', 'Steps (duration)']} />
        <tbody>
          {(data.instances ?? []).map((i) => (
            <tr key={i.instance}>
              <th scope="row">{i.instance}</th>
              <td>{i.batch}</td>
              <td>
                <Status status={i.status} />
                {i.step && i.status === 'in progress' && <span class="muted"> {i.step}</span>}
                {i.error && <div class="error-text">{i.error}</div>}
              </td>
              <td>{i.edition}</td>
              <td>
                <ol class="steps">
                  {(i.steps ?? []).map((s, n) => (
                    <li key={n} class={`step tone-${s.status === 'ok' ? 'ok' : s.status === 'failed' ? 'bad' : 'busy'}`}>
                      {s.step} {s.status} {elapsed(s.startedUnixMs, s.finishedUnixMs, now)}
                      {s.phase && s.phase !== 'upgrade' ? ` (${s.phase})` : ''}
                    </li>
                  ))}
                </ol>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {data.nextAfter && (
        <button type="button" onClick={() => setPages(pages + 1)}>
          Show more instances ({data.instances?.length ?? 0} of {data.summary?.total ?? '?'})
        </button>
      )}

      <h2>Change records</h2>
      <table class="changes">
        <TableHead columns={['When', 'Who', 'Action', 'Comment', 'Result']} />
        <tbody>
          {(data.changes ?? []).map((c, n) => (
            <tr key={n}>
              <td>{formatTime(c.atUnixMs)}</td>
              <td>{c.actor}</td>
              <td>{c.action}</td>
              <td>{c.comment}</td>
              <td>{c.result}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function BatchItem({ b, now }: { b: Batch; now: number }) {
  return (
    <li class={`batch`} aria-label={`Batch ${b.number}: ${b.status}`}>
      <span class="batch-n">Batch {b.number}</span> <Status status={b.status} />{' '}
      <span class="muted">
        {b.group} · {b.instanceCount ?? 0} instance{b.instanceCount === 1 ? '' : 's'}
        {b.startedUnixMs ? ` · ${b.finishedUnixMs ? 'took' : 'running for'} ${elapsed(b.startedUnixMs, b.finishedUnixMs, now)}` : ''}
      </span>
      {b.checkpoint && (
        <div class="checkpoint">
          checkpoint: {b.checkpoint}
          {b.checkpointBy ? ` — passed by ${b.checkpointBy}` : b.status === 'waiting' ? ' — waiting' : ''}
          {b.checkpointComment ? `: “${b.checkpointComment}”` : ''}
        </div>
      )}
    </li>
  );
}

function Actions({ id, me, detail, onDone }: { id: string; me: Whoami | undefined; detail: ReleaseDetail; onDone: () => Promise<void> }) {
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<{ text: string; bad: boolean }>({ text: '', bad: false });
  const actions = actionsFor(me?.role, detail.release, detail.batches, detail.summary);
  const run = async (action: ActionName) => {
    if (ACTION_LABELS[action].confirm && !confirm(`${ACTION_LABELS[action].label} release ${id}?`)) return;
    setBusy(true);
    setNotice({ text: `${action}…`, bad: false });
    try {
      await rpc('releaseAction', { id, action, comment });
      setNotice({ text: `${action}: done`, bad: false });
      setComment('');
      await onDone();
    } catch (err) {
      setNotice({ text: `${action} refused: ${err instanceof Error ? err.message : String(err)}`, bad: true });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="actions">
      {actions.length > 0 && (
        <form aria-label="Release actions" onSubmit={(e) => e.preventDefault()}>
          <label>
            Comment <input name="comment" value={comment} onInput={(e) => setComment(e.currentTarget.value)} size={40} />
          </label>
          {actions.map((a) => (
            <button key={a} type="button" class={`action action-${a}`} disabled={busy} onClick={() => void run(a)}>
              {ACTION_LABELS[a].label}
            </button>
          ))}
        </form>
      )}
      <p class={notice.bad ? 'error' : 'notice'} aria-live="polite" role="status">
        {notice.text}
      </p>
    </div>
  );
}
