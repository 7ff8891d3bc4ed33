// The commands a step sends: a validation clone's env overrides reach its start and restart commands only.
import { describe, expect, it } from 'vitest';
import type { AppRecord, EditionRecord } from '../domain/records.js';
import { compileReleaseSpec } from '../domain/spec.js';
import { stepCommand } from './commands.js';

const app: AppRecord = { name: 'shop', startCommand: ['run'], env: { A: 'app', B: 'app' }, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 1000, createdUnixMs: 1 };
const edition: EditionRecord = { app: 'shop', name: '2.0', description: '', url: 'http://x', sha256: 'a', size: 1, format: 'tar.gz', fileName: '', createdUnixMs: 1 };

describe('env overrides', () => {
  const spec = { ...compileReleaseSpec({ app: 'shop', edition: '2.0' }), env: { B: 'clone' } };
  const input = { commandId: 'c', releaseId: 'r', app, edition, spec, deadlineUnixMs: 1 };

  it("win over the app's env in start, restart and hard reset to the release's edition", () => {
    expect(stepCommand('start', input)!.startApp!.app!.env).toEqual({ A: 'app', B: 'clone' });
    expect(stepCommand('restart', input)!.restartApp!.app!.env).toEqual({ A: 'app', B: 'clone' });
    expect(stepCommand('hard-reset', input)!.hardResetServer!.app!.env).toEqual({ A: 'app', B: 'clone' });
  });

  it('stay out of a revert to the old edition, and of releases without them', () => {
    expect(stepCommand('restart', { ...input, targetEdition: '1.0' })!.restartApp!.app!.env).toEqual({ A: 'app', B: 'app' });
    expect(stepCommand('start', { ...input, spec: compileReleaseSpec({ app: 'shop', edition: '2.0' }) })!.startApp!.app!.env).toEqual({ A: 'app', B: 'app' });
  });
});
