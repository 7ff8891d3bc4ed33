import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{agent,controller,cli,common,router,test}/**/*.test.ts'],
    exclude: ['dist/**', 'node_modules/**'],
    // Bounds for a hung test only (every wait inside has its own deadline): on a loaded 2-core machine an
    // integration test that takes 20 s alone has been seen to take close to 60 s.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Every reconcile pass also checks that it declared each row it changed (controller/store/live.ts); the
    // controllers the suites start inherit it.
    env: { FLEETWAVE_VERIFY_TOUCHED: '1' },
    // Integration suites start real processes; two at a time fits 2 cores.
    maxWorkers: 2,
  },
});
