// What a join token may enrol: how many agents, which ids, in which group. Checked at Enroll (uses, ids)
// and at every Hello (group), so a leaked token opens at most what its scopes allow.
import { BadInputError, FleetwaveError } from '../common/errors.js';

export interface JoinScopes {
  /** Enrolments allowed; 0: unlimited. */
  maxUses: number;
  /** Glob over agent ids (`*` any run, `?` one character); '' any id. */
  idPattern: string;
  /** The group the enrolled agent must declare at Hello; '' any group. */
  group: string;
}

/** Why Enroll refused an otherwise valid join token: the gRPC code follows the kind. */
export class JoinRefusedError extends FleetwaveError {
  constructor(
    readonly kind: 'permission' | 'exhausted' | 'exists',
    message: string,
  ) {
    super(message);
  }
}

const PATTERN = /^[A-Za-z0-9._*?-]{1,128}$/;

/** The regular expression of an id glob; agent ids hold no glob characters, so an exact id matches only itself. */
export function compileIdPattern(glob: string): RegExp {
  if (!PATTERN.test(glob)) throw new BadInputError(`--id-pattern: '${glob}' may hold only letters, digits, '.', '_', '-', '*' and '?'`);
  const body = glob.replace(/[.]/g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** The Hello's group when the credential's join token named one: null when allowed, else why not. */
export function groupRefusal(scopeGroup: string, helloGroup: string, agentId: string): string | null {
  const declared = helloGroup || 'default';
  if (!scopeGroup || scopeGroup === declared) return null;
  return `agent '${agentId}' was enrolled for group '${scopeGroup}' and may not declare group '${declared}'`;
}
