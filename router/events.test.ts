// Which NATS instance events the router believes and acts on.
import { describe, expect, it } from 'vitest';
import { CONTROLLER_SOURCE, agentSource, instanceEvent } from '../common/events.js';
import { parseInstanceEvent } from './events.js';

function event(source: string, reason: 'quiesce.started' | 'healthy' | 'drained', app = 'shop', instance = 'web-1') {
  const { subject, event: e } = instanceEvent(source, app, instance, reason, { edition: '2.0' });
  return { subject, payload: JSON.stringify(e) };
}

describe('parseInstanceEvent', () => {
  it('takes the instance agent\'s events the controller republished', () => {
    const { subject, payload } = event(agentSource('web-1'), 'quiesce.started');
    expect(parseInstanceEvent('shop', subject, payload)).toMatchObject({ instance: 'web-1', reason: 'quiesce.started', data: { edition: '2.0' } });
    const c = event(CONTROLLER_SOURCE, 'healthy');
    expect(parseInstanceEvent('shop', c.subject, c.payload)).toMatchObject({ reason: 'healthy' });
  });

  it('drops events it does not act on, and events whose subject, source and data disagree', () => {
    const drained = event(agentSource('web-1'), 'drained');
    expect(parseInstanceEvent('shop', drained.subject, drained.payload)).toEqual({ dropped: 'not routed: drained' });
    const other = event(agentSource('web-2'), 'quiesce.started');
    expect(parseInstanceEvent('shop', other.subject, other.payload)).toMatchObject({ dropped: expect.stringMatching(/source/) });
    const moved = event(agentSource('web-1'), 'quiesce.started');
    expect(parseInstanceEvent('shop', moved.subject.replace('web-1', 'web-9'), moved.payload)).toMatchObject({ dropped: expect.stringMatching(/subject/) });
    expect(parseInstanceEvent('shop', moved.subject, '{oops')).toEqual({ dropped: 'not JSON' });
    expect(parseInstanceEvent('api', moved.subject, moved.payload)).toMatchObject({ dropped: expect.stringMatching(/another app/) });
  });
});
