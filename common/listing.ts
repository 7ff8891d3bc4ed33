// The rules of the paged fleet listings (agent list, instance list, release show), shared by the CLI, which checks
// its flags before it calls, and the controller, which checks every request again.
import { BadInputError } from './errors.js';
import { isSafeName } from './names.js';

/** Rows per call when the caller asks for no limit: no single answer carries a whole 10,000-host fleet. */
export const DEFAULT_PAGE = 500;
/** The most rows one call returns; a larger limit is cut to this (the rest is on the next page). */
export const MAX_PAGE = 1000;

/** What `agent list --status` accepts (AgentInfo.status). */
export const AGENT_STATUSES = ['connected', 'unreachable'] as const;
/** What `instance list --status` accepts (Instance.status: the process's state, or unreachable with its agent). */
export const INSTANCE_LIST_STATUSES = ['running', 'stopped', 'starting', 'failed', 'unreachable'] as const;

/** The filters of a listing; '' matches everything. */
export interface ListFilter {
  group: string;
  status: string;
  edition: string;
}

/**
 * Checks a listing's filters; throws BadInputError naming the flag. `statuses` are the values `--status` takes.
 * A group or edition that no row has is not an error (it matches nothing), a malformed one is.
 */
export function checkListFilter(filter: ListFilter, statuses: readonly string[]): ListFilter {
  if (filter.group && !isSafeName(filter.group)) {
    throw new BadInputError(`--group: '${filter.group}' is not a group name (letters, digits, '.', '_', '-')`);
  }
  if (filter.edition && !isSafeName(filter.edition)) {
    throw new BadInputError(`--edition: '${filter.edition}' is not an edition name (letters, digits, '.', '_', '-')`);
  }
  if (filter.status && !statuses.includes(filter.status)) {
    throw new BadInputError(`--status: '${filter.status}' is not one of ${statuses.join(', ')}`);
  }
  return filter;
}

/** The page size the server uses for a requested limit (0: the default). */
export function pageSize(limit: number): number {
  return limit <= 0 ? DEFAULT_PAGE : Math.min(limit, MAX_PAGE);
}
