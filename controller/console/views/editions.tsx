// Editions of an app: each with its description, age, whether it is the default, and where it is active (groups from
// the Edition message, instance counts per group from ListInstances' summary filtered by that edition).
import { rpc } from '../api.js';
import { Loading, TableHead, useLive } from '../components.js';
import { countsByGroup, formatTime } from '../format.js';
import type { App, Edition, ListSummary } from '../types.js';
import { isEditionChange } from '../streams.js';

interface EditionRow {
  edition: Edition;
  active: ListSummary;
}

export function EditionsView({ app }: { app: string }) {
  const apps = useLive<string[]>(async () => ((await rpc<{ apps?: App[] }>('listApps')).apps ?? []).map((a) => a.name ?? ''), () => false, []);
  const chosen = app || apps.data?.[0] || '';
  const { data, error } = useLive<EditionRow[]>(
    async () => {
      if (!chosen) return [];
      const res = await rpc<{ editions?: Edition[] }>('listEditions', { app: chosen });
      return Promise.all(
        (res.editions ?? []).map(async (edition) => ({
          edition,
          // limit 1: the summary counts every instance running it; the rows are not needed.
          active: (await rpc<{ summary?: ListSummary }>('listInstances', { app: chosen, query: { edition: edition.name, limit: 1 } })).summary ?? {},
        })),
      );
    },
    (e) => isEditionChange(e, chosen),
    [chosen],
  );
  return (
    <section aria-labelledby="editions-h">
      <h1 id="editions-h" tabIndex={-1}>
        Editions{chosen ? ` of ${chosen}` : ''}
      </h1>
      {apps.data && apps.data.length > 1 && (
        <nav aria-label="Apps" class="apps">
          {apps.data.map((a) => (
            <a key={a} href={`#/editions/${encodeURIComponent(a)}`} aria-current={a === chosen ? 'page' : undefined}>
              {a}
            </a>
          ))}
        </nav>
      )}
      {!data ? (
        <Loading error={error || apps.error} what="the editions" />
      ) : data.length === 0 ? (
        <p>{chosen ? `No edition of ${chosen} is installed.` : 'No app is defined yet.'}</p>
      ) : (
        <table>
          <TableHead columns={['Edition', 'Description', 'Installed', 'Default', 'Active on', 'Kept on disk']} />
          <tbody>
            {data.map(({ edition, active }) => (
              <tr key={edition.name}>
                <th scope="row">{edition.name}</th>
                <td>{edition.description}</td>
                <td>{formatTime(edition.createdUnixMs)}</td>
                <td>{edition.isDefault ? 'yes (default route)' : ''}</td>
                <td>
                  {(active.total ?? 0) === 0
                    ? 'nowhere'
                    : countsByGroup(active.counts)
                        .map((g) => `${g.group}: ${g.total}`)
                        .join(', ')}
                </td>
                <td>{edition.keptInstances ? `${edition.keptInstances} instance${edition.keptInstances === 1 ? '' : 's'}` : 'nowhere'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
