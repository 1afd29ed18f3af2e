import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * One private PostgreSQL for the whole run (test/support/global-setup.ts); each test makes its own
 * database on it with `freshDatabase()`, so test files run in parallel without seeing each other.
 */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Real databases: creating a cluster, a clone or a snapshot takes seconds, not milliseconds.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Child processes rather than threads: tests start subprocesses and use process-wide state.
    // At least two at once even on a 2-core machine, since the files mostly wait on Postgres;
    // no more than four, as the one server shares the same cores.
    pool: 'forks',
    poolOptions: { forks: { minForks: 1, maxForks: Math.min(4, Math.max(2, availableParallelism() - 1)) } },
  },
});
