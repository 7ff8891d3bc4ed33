// Fleet: per app and group, instance counts by status (the server's ListSummary aggregates; no instance rows), and the
// agents per group. Tiles of one group's instances only when it is opened, a page at a time.
import { useState } from 'preact/hooks';
import { rpc } from '../api.js';
import { Loading, TableHead, useLive } from '../components.js';
import { countsByGroup, toneOf } from '../format.js';
import type { App, Instance, ListQuery, ListSummary } from '../types.js';
import { isFleetChange } from '../streams.js';

const PAGE = 100;

interface Filters {
  group: string;
  status: string;
  edition: string;
}

interface FleetData {
  agents: ListSummary;
  apps: Array<{ name: string; summary: ListSummary }>;
}


function query(f: Filters, extra: ListQuery): ListQuery {
  return { group: f.group.trim(), status: f.status.trim(), edition: f.edition.trim(), ...extra };
}

export function FleetView() {
  const [filters, setFilters] = useState<Filters>({ group: '', status: '', edition: '' });
  const [open, setOpen] = useState<string>('');
  const { data, error } = useLive<FleetData>(
    async () => {
      const [agents, apps] = await Promise.all([
        rpc<{ summary?: ListSummary }>('listAgents', { query: { group: filters.group.trim(), limit: 1 } }),
        rpc<{ apps?: App[] }>('listApps'),
      ]);
      // limit 1: only the summary (counts over every matching row) is read; the page itself is ignored.
      const summaries = await Promise.all(
        (apps.apps ?? []).map(async (a) => ({
          name: a.name ?? '',
          summary: (await rpc<{ summary?: ListSummary }>('listInstances', { app: a.name, query: query(filters, { limit: 1 }) })).summary ?? {},
        })),
      );
      return { agents: agents.summary ?? {}, apps: summaries };
    },
    isFleetChange,
    [filters.group, filters.status, filters.edition],
  );

  return (
    <section aria-labelledby="fleet-h">
      <h1 id="fleet-h" tabIndex={-1}>Fleet</h1>
      <FilterBox value={filters} onChange={setFilters} />
      {!data ? (
        <Loading error={error} what="the fleet" />
      ) : (
        <>
          {error && <p class="error" role="alert">Refresh failed: {error}</p>}
          {data.apps.length === 0 && <p>No app is defined yet.</p>}
          {data.apps.map((app) => (
            <section key={app.name} class="app" aria-labelledby={`app-${app.name}`}>
              <h2 id={`app-${app.name}`}>
                {app.name} <span class="muted">— {app.summary.total ?? 0} instances</span>{' '}
                <a href={`#/editions/${encodeURIComponent(app.name)}`}>editions</a>
              </h2>
              <ul class="groups">
                {countsByGroup(app.summary.counts).map((g) => {
                  const key = `${app.name}/${g.group}`;
                  return (
                    <li key={key} class="group">
                      <button type="button" aria-expanded={open === key} onClick={() => setOpen(open === key ? '' : key)}>
                        {g.group || '(no group)'} · {g.total}
                      </button>
                      <span class="counts">
                        {g.byStatus.map(([status, n]) => (
                          <span key={status} class={`count tone-${toneOf(status)}`}>
                            {n} {status}
                          </span>
                        ))}
                      </span>
                      {open === key && <Tiles app={app.name} group={g.group} filters={filters} />}
                    </li>
                  );
                })}
              </ul>
            </section>
          ))}
          <section aria-labelledby="agents-h">
            <h2 id="agents-h">
              Agents <span class="muted">— {data.agents.total ?? 0}</span>
            </h2>
            <table>
              <TableHead columns={['Group', 'Agents by status']} />
              <tbody>
                {countsByGroup(data.agents.counts).map((g) => (
                  <tr key={g.group}>
                    <th scope="row">{g.group || '(no group)'}</th>
                    <td>
                      {g.byStatus.map(([status, n]) => (
                        <span key={status} class={`count tone-${toneOf(status)}`}>
                          {n} {status}
                        </span>
                      ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
        </>
      )}
    </section>
  );
}

function FilterBox({ value, onChange }: { value: Filters; onChange: (f: Filters) => void }) {
  const [draft, setDraft] = useState(value);
  return (
    <form
      class="filters"
      role="search"
      aria-label="Filter the fleet"
      onSubmit={(e) => {
        e.preventDefault();
        onChange(draft);
      }}
    >
      <label>
        Group <input name="group" value={draft.group} onInput={(e) => setDraft({ ...draft, group: e.currentTarget.value })} />
      </label>
      <label>
        Status{' '}
        <select name="status" value={draft.status} onChange={(e) => setDraft({ ...draft, status: e.currentTarget.value })}>
          <option value="">any</option>
          {['running', 'starting', 'stopped', 'failed', 'unreachable'].map((s) => (
            <option key={s} value={s}>{s}</option>
          ))}
        </select>
      </label>
      <label>
        Edition <input name="edition" value={draft.edition} onInput={(e) => setDraft({ ...draft, edition: e.currentTarget.value })} />
      </label>
      <button type="submit">Filter</button>
    </form>
  );
}

/** One group's instances as tiles, PAGE at a time ("Show more" follows the server's cursor). */
function Tiles({ app, group, filters }: { app: string; group: string; filters: Filters }) {
  const [pages, setPages] = useState(1);
  const { data, error } = useLive<{ rows: Instance[]; nextAfter: string }>(
    async () => {
      // A live refresh reads the pages shown so far again, in one call while they fit the server's cap.
      const rows: Instance[] = [];
      let after = '';
      let left = pages * PAGE;
      do {
        const page = await rpc<{ instances?: Instance[]; nextAfter?: string }>('listInstances', {
          app,
          query: query({ ...filters, group }, { limit: Math.min(left, 1000), after }),
        });
        rows.push(...(page.instances ?? []));
        after = page.nextAfter ?? '';
        left -= page.instances?.length ?? 0;
      } while (after && left > 0);
      return { rows, nextAfter: after };
    },
    (e) => isFleetChange(e) && (!e.app || e.app === app),
    [app, group, filters.status, filters.edition, pages],
  );
  if (!data) return <Loading error={error} what={`the instances of ${group}`} />;
  return (
    <div class="tiles-box">
      <ul class="tiles" aria-label={`Instances of ${app} in ${group}`}>
        {data.rows.map((i) => (
          <li key={i.instance} class={`tile tone-${toneOf(i.status)}`}>
            <span class="tile-id">{i.instance}</span>
            <span class="tile-status">{i.status || 'unknown'}{i.quiesced ? ' · quiesced' : ''}</span>
            <span class="tile-edition">edition {i.edition || 'none'}</span>
          </li>
        ))}
      </ul>
      {data.nextAfter && (
        <button type="button" onClick={() => setPages(pages + 1)}>
          Show more
        </button>
      )}
    </div>
  );
}

