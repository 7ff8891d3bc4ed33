// The agent's version, sent in every Hello (and part of the gate protocol: another version hands the gate host over).

/** Set by the bundler (deploy/dist/bundle.ts) to package.json's version, or to a test's own version. */
declare const FLEETWAVE_VERSION: string | undefined;

export const AGENT_VERSION = typeof FLEETWAVE_VERSION === 'string' ? FLEETWAVE_VERSION : '0.1.0';
