import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';
import SlowFirstSequencer from './test/support/slow-first-sequencer.ts';

/**
 * The suite in four tiers, one vitest project each (`npm run test:<tier>`, or `vitest run --project
 * <tier>`); `npm test` runs them all in one invocation.
 *
 * - unit: no database, no server; nothing here may need the embedded PostgreSQL (the AWS adapters
 *   against aws-sdk-client-mock, CDK synth, the ASL, lint, versions, the reporter).
 * - integration: everything else that is not below: the engine, adapters, CLI, console API and
 *   workflows against a real PostgreSQL.
 * - faults: the fault-injection matrices and the workflows under failure (a fault at every Task, a
 *   step failing mid-SQL, a quiesce lost, the server restarting, transient errors, an API restarted,
 *   the orchestrator killed). The slowest tier.
 * - browser: the console in a real Chromium.
 *
 * A new test file lands in integration unless its name puts it in another tier.
 *
 * One private PostgreSQL for the whole run (test/support/shared-test-server.ts starts
 * test/support/global-setup.ts once, for the first project that needs it, and shares it); each test
 * makes its own database on it with `freshDatabase()`, so test files run in parallel without seeing
 * each other. The unit and browser tiers do not start it (the browser test runs a server of its own).
 */
const UNIT = [
  'test/asl-valid.test.ts',
  'test/aws-*.test.ts',
  'test/cdk-*.test.ts',
  'test/console-aws-backend.test.ts',
  'test/console-security.test.ts',
  'test/discover.test.ts',
  'test/lint.test.ts',
  'test/step-specs.test.ts',
  'test/transient.test.ts',
  'test/version.test.ts',
  'test/support/*.test.ts',
];
const FAULTS = [
  'test/faults-*.test.ts',
  'test/interrupted-*.test.ts',
  'test/workflow-restore*.test.ts',
  'test/workflow-quiesce-lost.test.ts',
  'test/workflow-db-restart.test.ts',
  'test/workflow-transient-retry.test.ts',
  'test/workflow-load-restart.test.ts',
];
const BROWSER = ['test/console-browser.test.ts'];
const SERVER = ['test/support/shared-test-server.ts'];

/** What every tier shares. Real databases: creating a cluster, a clone or a snapshot takes seconds, not milliseconds. */
const common = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  // Child processes rather than threads: tests start subprocesses and use process-wide state.
  pool: 'forks',
} as const;

export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    // The long matrices first, even on a first run with no durations recorded (see the file).
    sequence: { sequencer: SlowFirstSequencer },
    ...common,
    // One pool for every project. At least three at once even on a 2-core machine: the longest files
    // now mostly wait (a migration sleeping past a timeout, the ASL's real back-off, a server
    // restarting) rather than burn CPU, and a third file keeps the cores busy meanwhile; no more than
    // four, as the one server shares the same cores.
    poolOptions: { forks: { minForks: 1, maxForks: Math.min(4, Math.max(3, availableParallelism())) } },
    projects: [
      { test: { ...common, name: 'unit', include: UNIT } },
      {
        test: {
          ...common,
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...UNIT, ...FAULTS, ...BROWSER],
          globalSetup: SERVER,
        },
      },
      { test: { ...common, name: 'faults', include: FAULTS, globalSetup: SERVER } },
      { test: { ...common, name: 'browser', include: BROWSER } },
    ],
  },
});
