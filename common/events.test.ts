// Every event type the code can emit is documented in docs/events.md, and no code invents its own.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, instanceEvent, instanceSubject, releaseEvent, subjectToken } from './events.js';

const root = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

describe('event catalogue', () => {
  const doc = readFileSync(join(root, 'docs/events.md'), 'utf8');

  it.each(EVENT_TYPES)('documents %s with a heading and an example', (type) => {
    expect(doc).toContain(`### \`${type}\``);
    expect(doc).toContain(`"type":"${type}"`);
  });

  it('documents no type the code does not emit', () => {
    const documented = [...doc.matchAll(/### `(io\.fleetwave\.[a-z.]+)`/g)].map((m) => m[1]);
    expect(documented.sort()).toEqual([...EVENT_TYPES].sort());
  });

  it('has no subject or type strings outside common/events.ts', () => {
    for (const dir of ['agent', 'controller', 'cli']) {
      for (const file of sources(join(root, dir))) {
        const text = readFileSync(file, 'utf8');
        expect(text, file).not.toMatch(/['"`]io\.fleetwave\./);
        expect(text, file).not.toMatch(/['"`]fleetwave\.events\./);
      }
    }
  });

  it('builds CloudEvents on safe subjects', () => {
    expect(subjectToken('a.b*c>d e')).toBe('a_b_c_d_e');
    expect(instanceSubject('shop', 'host.1')).toBe('fleetwave.events.shop.instance.host_1');
    const { subject, event } = instanceEvent('fleetwave/agent/a1', 'shop', 'a1', 'drained', { inFlight: 0 });
    expect(subject).toBe('fleetwave.events.shop.instance.a1');
    expect(event).toMatchObject({ specversion: '1.0', type: 'io.fleetwave.instance.drained', data: { app: 'shop', instance: 'a1', inFlight: 0 } });
    const release = releaseEvent('fleetwave/controller/c', 'shop', 'r1', 'batch.started', { batch: 1 });
    expect(release.subject).toBe('fleetwave.events.shop.release.r1');
    expect(Date.parse(release.event.time)).not.toBeNaN();
  });
});
