// The paged listings' side of the CLI (`agent list`, `instance list`, `release show`): the filter and page flags,
// the loop that fetches page after page, the summary printed before the rows, and JSON written as pages arrive.
//
//   flags ──check──▶ page 1 ──▶ summary (table) ──▶ rows ──▶ page 2 … until next_after is '' or --limit rows are out
//
// `--output json` prints the same JSON array (release show: the same object) as one whole answer would, written
// element by element as pages arrive; when --limit stops before the end, the next page's cursor goes to stderr
// (`next page: --after CURSOR`), so stdout stays one JSON document.
import type { Command } from 'commander';
import { MAX_PAGE, checkListFilter, type ListFilter } from '../common/listing.js';
import { BadInputError } from '../common/errors.js';
import type { Instance, ListSummary } from '../proto/gen/fleetwave/v1/admin.js';
import type { AdminClient } from './client.js';
import { table } from './format.js';
import type { Io } from './io.js';
import { parseCount } from './options.js';

/** The raw flags of a paged listing. */
export interface PageFlags {
  group?: string;
  status?: string;
  edition?: string;
  limit?: string;
  after?: string;
}

/** What a listing asks the server for: filters, the most rows to print (0: all) and where to start. */
export interface PageRequest {
  filter: ListFilter;
  limit: number;
  after: string;
}

/** One answer of the server: a page of rows, the summary of every page, the next page's cursor. */
export interface PageAnswer<T> {
  rows: T[];
  summary: ListSummary | undefined;
  nextAfter: string;
}

/** Adds --group, --status, --edition, --limit and --after; `statuses` go in the help of --status. */
export function withPaging(cmd: Command, statuses: readonly string[], edition: string): Command {
  return cmd
    .option('--group <name>', 'only this group')
    .option('--status <status>', `only this status: ${statuses.join(', ')}`)
    .option('--edition <name>', edition)
    .option('--limit <n>', 'print at most N rows (default: all, fetched page by page)')
    .option('--after <cursor>', 'start after this cursor (the one a --limit listing printed for its next page)');
}

/** Checks the flags before anything is sent (bad input: one line, exit 2). */
export function parsePageFlags(flags: PageFlags, statuses: readonly string[]): PageRequest {
  const filter = checkListFilter({ group: flags.group?.trim() ?? '', status: flags.status?.trim() ?? '', edition: flags.edition?.trim() ?? '' }, statuses);
  if (flags.group !== undefined && !filter.group) throw new BadInputError('--group: give a group name');
  if (flags.edition !== undefined && !filter.edition) throw new BadInputError('--edition: give an edition name');
  if (flags.status !== undefined && !filter.status) throw new BadInputError(`--status: give one of ${statuses.join(', ')}`);
  const limit = flags.limit === undefined ? 0 : parseCount(flags.limit, '--limit');
  const after = flags.after?.trim() ?? '';
  if (flags.after !== undefined && !/^[A-Za-z0-9_-]+$/.test(after)) {
    throw new BadInputError(`--after: '${flags.after}' is not a cursor (the one a --limit listing printed for its next page)`);
  }
  return { filter, limit, after };
}

/**
 * Fetches pages until the last one or until `limit` rows (0: no limit) are out, handing each to `onPage` as it
 * arrives; resolves to the cursor after the last row handed out ('' when the listing is complete).
 */
export async function forEachPage<T>(
  request: PageRequest,
  fetch: (after: string, limit: number) => Promise<PageAnswer<T>>,
  onPage: (page: PageAnswer<T>, first: boolean) => void,
): Promise<string> {
  let after = request.after;
  let remaining = request.limit || Infinity;
  for (let first = true; ; first = false) {
    // No limit: the server's default page. A limit: never more than is left to print.
    const page = await fetch(after, remaining === Infinity ? 0 : Math.min(remaining, MAX_PAGE));
    const rows = page.rows.slice(0, remaining);
    onPage({ ...page, rows }, first);
    remaining -= rows.length;
    if (!page.nextAfter || rows.length === 0) return '';
    if (remaining <= 0) return page.nextAfter;
    after = page.nextAfter;
  }
}

/** Writes a JSON array element by element, exactly as `JSON.stringify(array, null, 2)` would print it whole. */
export class JsonArrayWriter {
  private pending: string | undefined;
  private started = false;

  /**
   * @param open   the text before the first element ('[' for a bare array)
   * @param close  the text after the last (']'); an empty array prints `open` + `close` trimmed
   * @param indent the elements' indentation ('  ' for a bare array)
   */
  constructor(
    private readonly io: Io,
    private readonly open = '[',
    private readonly close = ']',
    private readonly indent = '  ',
  ) {}

  /** Each element is printed once the next arrives (or at the end), so it knows whether it takes a comma. */
  push(item: unknown): void {
    if (!this.started) this.io.out(this.open);
    this.started = true;
    if (this.pending !== undefined) this.io.out(`${this.pending},`);
    this.pending = JSON.stringify(item, null, 2).split('\n').map((line) => this.indent + line).join('\n');
  }

  end(): void {
    if (!this.started) return this.io.out(`${this.open}${this.close.trimStart()}`);
    this.io.out(this.pending!);
    this.io.out(this.close);
  }
}

/**
 * The summary before a listing's rows: a total line, then, when there is more than one group, one line per group
 * with its count per status. E.g. `3 agents: 2 connected, 1 unreachable` and a GROUP / TOTAL / <status>… table.
 */
export function renderListSummary(noun: string, summary: ListSummary | undefined, statusOrder: readonly string[]): string {
  const total = summary?.total ?? 0;
  const byStatus = new Map<string, number>();
  const byGroup = new Map<string, Map<string, number>>();
  for (const c of summary?.counts ?? []) {
    byStatus.set(c.status, (byStatus.get(c.status) ?? 0) + c.count);
    const group = byGroup.get(c.group) ?? new Map<string, number>();
    group.set(c.status, (group.get(c.status) ?? 0) + c.count);
    byGroup.set(c.group, group);
  }
  const statuses = orderStatuses([...byStatus.keys()], statusOrder);
  const head = `${total} ${noun}${total === 1 ? '' : 's'}${statuses.length ? `: ${statuses.map((s) => `${byStatus.get(s)} ${s}`).join(', ')}` : ''}`;
  if (byGroup.size < 2) return head;
  const rows = [...byGroup].map(([group, counts]) => [
    group || '-',
    [...counts.values()].reduce((a, b) => a + b, 0),
    ...statuses.map((s) => counts.get(s) ?? 0),
  ]);
  return `${head}\n${table(['group', 'total', ...statuses], rows)}`;
}

/** The summary of rows at hand (from a controller that sent none). */
export function summarize(rows: Array<{ group: string; status: string; batch?: number }>): ListSummary {
  const counts = new Map<string, ListSummary['counts'][number]>();
  for (const r of rows) {
    const key = `${r.group}\u0000${r.batch ?? 0}\u0000${r.status}`;
    const entry = counts.get(key) ?? { group: r.group, batch: r.batch ?? 0, status: r.status, count: 0 };
    entry.count += 1;
    counts.set(key, entry);
  }
  return { total: rows.length, counts: [...counts.values()] };
}

/** Known statuses in their lifecycle order, unknown ones after them in name order. */
export function orderStatuses(present: string[], order: readonly string[]): string[] {
  const rank = (s: string) => (order.includes(s) ? order.indexOf(s) : order.length);
  return [...present].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** The line that tells how to go on after a --limit listing stopped before the end. */
export function nextPageLine(cursor: string): string {
  return `next page: --after ${cursor}`;
}

/** Every instance of an app, page after page (for views that need them all, such as `edition show`). */
export async function allInstances(client: AdminClient, app: string): Promise<Instance[]> {
  const all: Instance[] = [];
  const request = { filter: { group: '', status: '', edition: '' }, limit: 0, after: '' };
  await forEachPage(request, async (after, limit) => {
    const page = await client.listInstances(app, { after, limit });
    return { rows: page.instances, summary: page.summary, nextAfter: page.nextAfter };
  }, (page) => all.push(...page.rows));
  return all;
}
