import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{agent,controller,cli,common,test}/**/*.test.ts'],
    exclude: ['dist/**', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Integration suites start real processes; two at a time fits 2 cores.
    maxWorkers: 2,
  },
});
