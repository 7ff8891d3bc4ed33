// Validation mode as pure functions: the lifecycle of a validation clone, the next step it takes from the status of
// its releases, and the `--route KIND:MATCH` syntax (docs/validation.md).
//
//   validate ──▶ activating ── clone release Released ──▶ validating ── release --from-validation ──▶ rolling-out
//                   │  ▲                                   ▲  │                                         │   │
//     release ended │  │ retried, Released                 │  └── cancel ──┐      rollout ended, not    │   │ Released
//     not Released  ▼  │                                   └───────────────┼───── Released ◀───────────┘   │
//             activation-failed ── cancel ─────────────────────────────────┤                               │
//                                                                          ▼                               ▼
//                                               removing (outcome cancelled)          removing (outcome done)
//                                                 rule removed, StopApp to every clone instance (outbox)
//                                                          └── every StopApp answered ──▶ cancelled / done
import { BadInputError, IllegalTransitionError, NotFoundError } from '../../common/errors.js';
import { ROUTE_KINDS, type RouteKind } from './routing.js';

export const VALIDATION_STATUSES = [
  /** The edition is being released to the clone's instances; no rule yet. */
  'activating',
  /** The clone's release ended without Released; the clone takes no traffic. Cancel removes it (or retry the release). */
  'activation-failed',
  /** The clone runs the edition and the rule sends the selected users there. */
  'validating',
  /** A --from-validation release rolls the edition out to the target; the clone and its rule stay until it is Released. */
  'rolling-out',
  /** The rule is gone; StopApp commands to the clone's instances wait in the outbox for their answers. */
  'removing',
  /** Rolled out to the target, clone removed. */
  'done',
  /** Removed without a rollout. */
  'cancelled',
] as const;
export type ValidationStatus = (typeof VALIDATION_STATUSES)[number];

/** Allowed moves; anything else throws IllegalTransitionError. */
const MOVES: Record<ValidationStatus, readonly ValidationStatus[]> = {
  activating: ['validating', 'activation-failed'],
  'activation-failed': ['validating', 'removing'],
  validating: ['rolling-out', 'removing'],
  'rolling-out': ['validating', 'removing'],
  removing: ['done', 'cancelled'],
  done: [],
  cancelled: [],
};

/** A validation not yet done or cancelled: the app may start no other. */
export function validationInProgress(status: ValidationStatus): boolean {
  return status !== 'done' && status !== 'cancelled';
}

export function validationTransition(from: ValidationStatus, to: ValidationStatus): ValidationStatus {
  if (!MOVES[from].includes(to)) throw new IllegalTransitionError('validation', from, to);
  return to;
}

/** Ids of validations start with this; outbox rows of a clone's removal carry the validation id as their owner. */
export const VALIDATION_ID_PREFIX = 'v-';
export function isValidationId(id: string): boolean {
  return id.startsWith(VALIDATION_ID_PREFIX);
}

/** The rule's match, as validateRoute takes it. */
export interface RouteMatch {
  kind: RouteKind;
  name: string;
  value: string;
  percent: number;
}

/**
 * `header:NAME=VALUE`, `cookie:NAME=VALUE`, `path-prefix:/p`, `source:CIDR`, `percent:N` → the match (checked
 * further by validateRoute). One line naming what is wrong otherwise.
 */
export function parseRouteSpec(text: string): RouteMatch {
  const colon = text.indexOf(':');
  const kind = (colon < 0 ? text : text.slice(0, colon)).trim() as RouteKind;
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  const usage = 'header:NAME=VALUE, cookie:NAME=VALUE, path-prefix:/P, source:CIDR or percent:N';
  if (colon < 0 || !ROUTE_KINDS.includes(kind)) throw new BadInputError(`--route: '${text}' is not one of ${usage}`);
  if (kind === 'header' || kind === 'cookie') {
    const eq = rest.indexOf('=');
    if (eq < 0) throw new BadInputError(`--route: a ${kind} match is ${kind}:NAME=VALUE (got '${text}')`);
    return { kind, name: rest.slice(0, eq), value: rest.slice(eq + 1), percent: 0 };
  }
  if (kind === 'percent') {
    const percent = /^\d+$/.test(rest) ? Number(rest) : NaN;
    if (!Number.isInteger(percent)) throw new BadInputError(`--route: percent '${rest}' is not a whole number from 1 to 100`);
    return { kind, name: '', value: '', percent };
  }
  return { kind, name: '', value: rest, percent: 0 };
}

/** What a validation does next, given its status and the status of its releases ('' when it has none). */
export type ValidationStep =
  | { kind: 'none' }
  /** Recovery: the clone's release was created but not started (the controller stopped in between). */
  | { kind: 'start-release' }
  | { kind: 'add-rule' }
  | { kind: 'activation-failed'; releaseStatus: string }
  /** The rollout ended without Released: the validation goes on, clone and rule in place. */
  | { kind: 'rollout-ended'; releaseStatus: string }
  | { kind: 'remove'; outcome: 'done' };

const ENDED_UNRELEASED = ['Release failed', 'Rolled back', 'Rollback failed'];

export function nextValidationStep(status: ValidationStatus, cloneRelease: string, rolloutRelease: string): ValidationStep {
  switch (status) {
    case 'activating':
      if (cloneRelease === 'To release') return { kind: 'start-release' };
      if (cloneRelease === 'Released') return { kind: 'add-rule' };
      if (ENDED_UNRELEASED.includes(cloneRelease)) return { kind: 'activation-failed', releaseStatus: cloneRelease };
      return { kind: 'none' };
    case 'activation-failed':
      // An operator retried the clone's release and it made it.
      return cloneRelease === 'Released' ? { kind: 'add-rule' } : { kind: 'none' };
    case 'validating':
    case 'rolling-out':
      if (rolloutRelease === 'Released') return { kind: 'remove', outcome: 'done' };
      if (status === 'rolling-out' && ENDED_UNRELEASED.includes(rolloutRelease)) return { kind: 'rollout-ended', releaseStatus: rolloutRelease };
      return { kind: 'none' };
    default:
      return { kind: 'none' };
  }
}

/** The clone's instances as given: the app's instances of `cloneGroup`, or the named ones; none of them in the target. */
export function cloneInstances(
  instances: Array<{ agentId: string; group: string }>,
  targetGroup: string,
  clone: { group: string; instances: string[] },
): string[] {
  if (!instances.some((i) => i.group === targetGroup)) throw new NotFoundError(`group '${targetGroup}' has no instance of this app`);
  let chosen: string[];
  if (clone.group) {
    if (clone.group === targetGroup) throw new BadInputError(`validate: the clone group '${clone.group}' is the target; name another group`);
    chosen = instances.filter((i) => i.group === clone.group).map((i) => i.agentId);
    if (chosen.length === 0) throw new NotFoundError(`group '${clone.group}' has no instance of this app`);
  } else {
    const byId = new Map(instances.map((i) => [i.agentId, i]));
    for (const id of clone.instances) {
      const found = byId.get(id);
      if (!found) throw new NotFoundError(`instance '${id}' of this app does not exist`);
      if (found.group === targetGroup) throw new BadInputError(`validate: instance '${id}' is in the target group '${targetGroup}'; a clone is beside its target`);
    }
    chosen = [...new Set(clone.instances)];
  }
  return chosen.sort();
}
