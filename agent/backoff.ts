// Reconnect delays live in common/backoff.ts (the router uses them too); this keeps the agent's imports as they were.
export { BACKOFF_BASE_MS, BACKOFF_CAP_MS, backoffDelay } from '../common/backoff.js';
