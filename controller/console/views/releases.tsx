// Releases: every release, newest first, with status (colour and text) and progress.
import { rpc } from '../api.js';
import { Loading, Status, TableHead, useLive } from '../components.js';
import { formatTime } from '../format.js';
import type { Release } from '../types.js';
import { isReleaseChange } from '../streams.js';

export function ReleasesView() {
  const { data, error } = useLive<Release[]>(
    async () => {
      const res = await rpc<{ releases?: Release[] }>('listReleases', { app: '' });
      return (res.releases ?? []).sort((a, b) => (b.createdUnixMs ?? 0) - (a.createdUnixMs ?? 0));
    },
    isReleaseChange,
    [],
  );
  return (
    <section aria-labelledby="releases-h">
      <h1 id="releases-h" tabIndex={-1}>Releases</h1>
      {!data ? (
        <Loading error={error} what="the releases" />
      ) : data.length === 0 ? (
        <p>No release yet.</p>
      ) : (
        <table>
          <TableHead columns={['Release', 'App', 'Edition', 'Group', 'Status', 'Batch', 'Created', 'By']} />
          <tbody>
            {data.map((r) => (
              <tr key={r.id}>
                <th scope="row">
                  <a href={`#/releases/${encodeURIComponent(r.id ?? '')}`}>{r.id}</a>
                </th>
                <td>{r.app}</td>
                <td>{r.edition}</td>
                <td>{r.group}</td>
                <td>
                  <Status status={r.status} />
                  {r.waitingFor && <span class="muted"> waiting for {r.waitingFor}</span>}
                </td>
                <td>
                  {r.currentBatch ?? 0}/{r.batchCount ?? 0}
                </td>
                <td>{formatTime(r.createdUnixMs)}</td>
                <td>{r.createdBy}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
