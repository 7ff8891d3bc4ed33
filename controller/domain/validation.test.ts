// The validation lifecycle's pure parts: the next step from the releases' statuses, the transition table, the
// --route syntax and the clone's instances.
import { describe, expect, it } from 'vitest';
import { BadInputError, IllegalTransitionError, NotFoundError } from '../../common/errors.js';
import { cloneInstances, nextValidationStep, parseRouteSpec, validationInProgress, validationTransition } from './validation.js';

describe('nextValidationStep', () => {
  it.each([
    ['activating', 'To release', '', 'start-release'],
    ['activating', 'Releasing', '', 'none'],
    ['activating', 'Released', '', 'add-rule'],
    ['activating', 'Release failed', '', 'activation-failed'],
    ['activating', 'Rolled back', '', 'activation-failed'],
    ['activation-failed', 'Release failed', '', 'none'],
    ['activation-failed', 'Released', '', 'add-rule'],
    ['validating', 'Released', '', 'none'],
    ['rolling-out', 'Released', 'Releasing', 'none'],
    ['rolling-out', 'Released', 'Released', 'remove'],
    ['rolling-out', 'Released', 'Release failed', 'rollout-ended'],
    ['rolling-out', 'Released', 'Rolled back', 'rollout-ended'],
    // A failed rollout retried later and Released still ends the validation.
    ['validating', 'Released', 'Released', 'remove'],
    ['validating', 'Released', 'Release failed', 'none'],
    ['removing', 'Released', 'Released', 'none'],
    ['done', 'Released', 'Released', 'none'],
  ] as const)('%s, clone release %s, rollout %s → %s', (status, clone, rollout, step) => {
    expect(nextValidationStep(status, clone, rollout).kind).toBe(step);
  });
});

describe('validation transitions', () => {
  it('allows the lifecycle and refuses the rest with a named error', () => {
    expect(validationTransition('activating', 'validating')).toBe('validating');
    expect(validationTransition('validating', 'removing')).toBe('removing');
    expect(validationTransition('removing', 'done')).toBe('done');
    expect(() => validationTransition('activating', 'removing')).toThrow(IllegalTransitionError);
    expect(() => validationTransition('done', 'validating')).toThrow(IllegalTransitionError);
    expect(validationInProgress('removing')).toBe(true);
    expect(validationInProgress('cancelled')).toBe(false);
  });
});

describe('parseRouteSpec', () => {
  it.each([
    ['header:X-Validate=1', { kind: 'header', name: 'X-Validate', value: '1', percent: 0 }],
    ['cookie:beta=a=b', { kind: 'cookie', name: 'beta', value: 'a=b', percent: 0 }],
    ['path-prefix:/beta', { kind: 'path-prefix', name: '', value: '/beta', percent: 0 }],
    ['source:10.1.0.0/16', { kind: 'source', name: '', value: '10.1.0.0/16', percent: 0 }],
    ['percent:5', { kind: 'percent', name: '', value: '', percent: 5 }],
  ])('%s', (text, match) => expect(parseRouteSpec(text)).toEqual(match));

  it.each(['header', 'query:a=b', 'header:X-Validate', 'percent:five', 'percent:'])('refuses %s', (text) => {
    expect(() => parseRouteSpec(text)).toThrow(BadInputError);
  });
});

describe('cloneInstances', () => {
  const fleet = [
    { agentId: 'a1', group: 'blue' },
    { agentId: 'a2', group: 'blue' },
    { agentId: 'a3', group: 'canary' },
    { agentId: 'a4', group: 'green' },
  ];

  it('takes a group, or named instances, beside the target', () => {
    expect(cloneInstances(fleet, 'blue', { group: 'canary', instances: [] })).toEqual(['a3']);
    expect(cloneInstances(fleet, 'blue', { group: '', instances: ['a4', 'a3', 'a4'] })).toEqual(['a3', 'a4']);
  });

  it('refuses the target itself, unknown names and an empty target', () => {
    expect(() => cloneInstances(fleet, 'blue', { group: 'blue', instances: [] })).toThrow(BadInputError);
    expect(() => cloneInstances(fleet, 'blue', { group: '', instances: ['a1'] })).toThrow(/is in the target group 'blue'/);
    expect(() => cloneInstances(fleet, 'blue', { group: 'nope', instances: [] })).toThrow(NotFoundError);
    expect(() => cloneInstances(fleet, 'blue', { group: '', instances: ['a9'] })).toThrow(NotFoundError);
    expect(() => cloneInstances(fleet, 'nope', { group: 'canary', instances: [] })).toThrow(NotFoundError);
  });
});
