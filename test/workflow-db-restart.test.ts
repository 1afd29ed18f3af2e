import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { seedShop } from '../examples/seed/seed-shop.ts';
import type { StepInvoker } from '../src/adapters/local/local-runner.ts';
import { openLocalPorts, runWorkflow, type WorkflowReport } from '../src/adapters/local/local-workflows.ts';
import { connectPg, withDatabase } from '../src/adapters/local/pg-connection.ts';
import { runStep } from '../src/steps/registry.ts';
import { restartableServer, type RestartableServer } from './support/restartable-server.ts';
import { EXAMPLE_MIGRATIONS, leftovers, productionState, roleState } from './support/shop.ts';

/**
 * PostgreSQL restarts in the middle of an upgrade (an operator, a crash, a failover), down for about
 * 8 s. The run rides it out with the ASL's own retries (IntervalSeconds 2, BackoffRate 2, MaxAttempts
 * 6, MaxDelaySeconds 20, full jitter) and succeeds, or, when those run out first, rolls back with
 * production exactly as before; it never ends needing an operator. On a server of this file's own.
 *
 * Full jitter draws each wait from [0, its interval], so which happens depends on the draw (the six
 * waits sum to 35 s on average, 70 s at most). Each case pins the draw (Math.random, which
 * aws-local-stepfunctions uses for the jitter) so that it tests one outcome, not luck.
 */
const OUTAGE_MS = 8_000;
const TEST_TIMEOUT_MS = 120_000;

let server: RestartableServer;
beforeAll(async () => {
  server = await restartableServer();
}, TEST_TIMEOUT_MS);
// Unset when beforeAll failed before making it.
afterAll(async () => {
  await (server as RestartableServer | undefined)?.dispose();
});

const unique = () => randomBytes(4).toString('hex');

async function withClient<T>(database: string, fn: (c: Awaited<ReturnType<typeof connectPg>>) => Promise<T>): Promise<T> {
  const client = await connectPg(withDatabase(server.url, database));
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The real steps; on the first call of `state` the server is stopped first and started again OUTAGE_MS later. */
function restartAt(state: string, restarted: Promise<void>[]): StepInvoker {
  let done = false;
  return async (step, input, stateName, ctx) => {
    if (stateName === state && !done) {
      done = true;
      await server.stop();
      restarted.push(new Promise((resolve) => setTimeout(resolve, OUTAGE_MS)).then(() => server.start()));
    }
    return runStep(step, input, ctx);
  };
}

interface Case {
  readonly report: WorkflowReport;
  readonly before: Record<string, unknown>;
  readonly roleBefore: Record<string, unknown>;
  readonly database: string;
  readonly appRole: string;
}

/** Seeds a small shop at V2 and upgrades it in place, the server restarting at `state`, the jitter draw pinned at `draw`. */
async function upgradeThroughRestart(state: string, draw: number): Promise<Case> {
  const database = `shop_${unique()}`;
  const appRole = `shop_app_${unique()}`;
  await seedShop({ serverUrl: server.url, database, appRole, appPassword: unique(), migrationsDir: EXAMPLE_MIGRATIONS, customers: 20, orders: 100 });
  const before = await withClient(database, productionState);
  const roleBefore = await withClient(database, (c) => roleState(c, appRole, database));
  const ports = await openLocalPorts({ serverUrl: server.url, database, migrationsDir: EXAMPLE_MIGRATIONS });
  const restarted: Promise<void>[] = [];
  const random = vi.spyOn(Math, 'random').mockReturnValue(draw);
  try {
    // No retryIntervalMs: the ASL's real back-off is what is tested.
    const report = await runWorkflow(
      ports,
      { kind: 'upgrade', database, quiesce: [`db-role:${appRole}`], rehearsal: false, strategy: 'in-place' },
      { invoke: restartAt(state, restarted) },
    );
    return { report, before, roleBefore, database, appRole };
  } finally {
    random.mockRestore();
    await Promise.all(restarted);
    await ports.close();
  }
}

async function expectApisBackAndNothingLeft(c: Case): Promise<void> {
  expect(c.report.quiesced.length, 'the API was quiesced').toBeGreaterThan(0);
  expect(
    c.report.quiesced.every((q) => q.status === 'resumed'),
    'every API resumed',
  ).toBe(true);
  expect(await withClient(c.database, (cl) => roleState(cl, c.appRole, c.database)), 'the app role is back').toEqual(c.roleBefore);
  expect(await withClient(c.database, (cl) => leftovers(cl, c.database)), 'no temporary database').toEqual([]);
}

describe('PostgreSQL restarting for 8 s in the middle of an upgrade', () => {
  it(
    'while production is migrated: the retries outlast the restart and the run succeeds',
    async () => {
      // The top of the jitter range: waits of 2, 4, 8 … s, soon more than the outage.
      const c = await upgradeThroughRestart('MigrateProduction', 0.999);
      expect(c.report.run.status, c.report.run.error?.message).toBe('succeeded');
      const versions = await withClient(
        c.database,
        async (cl) =>
          (
            await cl.query<{ v: string }>(
              "select string_agg(version, ',' order by installed_rank) as v from safeshift_schema_history where success and version is not null",
            )
          ).rows[0]?.v,
      );
      expect(versions, 'every versioned migration applied, each once').toBe('1,1.1,2,2.1,3');
      await expectApisBackAndNothingLeft(c);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'while production is migrated, retries running out first: the run rolls back, production exactly as before',
    async () => {
      // A tenth of the range: 0.2 + 0.4 + 0.8 + 1.6 + 2 + 2 = 7 s, less than the outage (8 s and the
      // server's start); the rollback's own retries (7 s more) then outlast it.
      const c = await upgradeThroughRestart('MigrateProduction', 0.1);
      expect(c.report.run.status, c.report.run.error?.message).toBe('rolled-back');
      // Recorded under its own code (the connector's, or the ledger's raw socket error), not as Transient.
      expect(['CONNECTION_FAILED', 'INTERNAL']).toContain(c.report.run.error?.code);
      expect(await withClient(c.database, productionState), 'production exactly as before').toEqual(c.before);
      await expectApisBackAndNothingLeft(c);
    },
    TEST_TIMEOUT_MS,
  );
});
