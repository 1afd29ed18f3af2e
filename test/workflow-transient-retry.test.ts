import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepInvoker } from '../src/adapters/local/local-runner.ts';
import { runLocally } from '../src/adapters/local/local-runner.ts';
import { openLocalPorts, runWorkflow, type WorkflowReport } from '../src/adapters/local/local-workflows.ts';
import { ConnectionError, MigrationError, SafeshiftError } from '../src/core/errors.ts';
import { runStep } from '../src/steps/registry.ts';
import { testServerUrl } from './support/database.ts';
import { EXAMPLE_MIGRATIONS, productionState, shopTemplate, type CaseDatabase, type ShopTemplate } from './support/shop.ts';

/**
 * A step that fails with a SafeshiftError around a dropped connection (what the adapters throw when
 * the server restarts or a socket resets) is retried by the state machine, and the run goes on; one
 * that says it is final is not. And the local runner waits between retries as the ASL says.
 */
let shop: ShopTemplate;
let after: Record<string, unknown>;
beforeAll(async () => {
  shop = await shopTemplate(50);
  const ref = await shop.copy('trref');
  try {
    const report = await upgrade(
      ref,
      invokeOnce(undefined, () => new Error('unused')),
    );
    expect(report.run.status, report.run.error?.message).toBe('succeeded');
    after = await ref.withClient(productionState);
  } finally {
    await ref.drop();
  }
}, 120_000);
// Unset when beforeAll failed before making it.
afterAll(async () => {
  await (shop as ShopTemplate | undefined)?.dispose();
});

const socketError = (code: string) => Object.assign(new Error(`read ${code}`), { code, syscall: 'read' });
/** What node-postgres gives for a session the server ended at shutdown. */
const adminShutdown = () => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01', severity: 'FATAL' });

/** The real steps, except that the first call of `state` throws what `fault` makes; counts the calls of `state`. */
function invokeOnce(state: string | undefined, fault: () => unknown): StepInvoker & { calls: () => number } {
  let calls = 0;
  const invoke: StepInvoker = async (step, input, stateName, ctx) => {
    if (stateName !== state) return runStep(step, input, ctx);
    calls++;
    if (calls === 1) throw fault();
    return runStep(step, input, ctx);
  };
  return Object.assign(invoke, { calls: () => calls });
}

async function upgrade(db: CaseDatabase, invoke: StepInvoker): Promise<WorkflowReport> {
  const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: db.database, migrationsDir: EXAMPLE_MIGRATIONS });
  try {
    // Fast retries: what is tested here is which failures are retried, not how long the wait is.
    return await runWorkflow(
      ports,
      { kind: 'upgrade', database: db.database, quiesce: [`db-role:${shop.appRole}`], rehearsal: false },
      { invoke, retryIntervalMs: 10 },
    );
  } finally {
    await ports.close();
  }
}

describe('a step failing with a SafeshiftError around a dropped connection', () => {
  it.each<[string, string, () => SafeshiftError]>([
    ['Quiesce', 'a ConnectionError around ECONNRESET', () => new ConnectionError('lost the connection to the server', socketError('ECONNRESET'))],
    [
      'CheckPreUpgradeSnapshot',
      'a ConnectionError around a connection node-postgres saw end',
      () => new ConnectionError('lost the connection', new Error('Connection terminated unexpectedly')),
    ],
    [
      'MigrateProduction',
      'a transactional migration ended by a server shutdown (57P01)',
      () => new MigrationError('MIGRATION_FAILED', 'V3 failed: terminating connection', { outcome: 'rolled-back', cause: adminShutdown() }),
    ],
    [
      'VerifyProduction',
      'an INTERNAL SafeshiftError around an Error around ECONNRESET',
      () => new SafeshiftError('INTERNAL', 'verify could not run', { cause: new Error('query failed', { cause: socketError('ECONNRESET') }) }),
    ],
  ])('at %s (%s) is retried and the run succeeds', async (state, _what, fault) => {
    const db = await shop.copy('tr');
    try {
      const invoke = invokeOnce(state, fault);
      const report = await upgrade(db, invoke);
      // Called again after the failure (a migrate Task also runs once more per migration left).
      expect(invoke.calls(), `${state} was called again`).toBeGreaterThanOrEqual(2);
      expect(report.run.status, report.run.error?.message).toBe('succeeded');
      expect(await db.withClient(productionState), 'production fully upgraded').toEqual(after);
    } finally {
      await db.drop();
    }
  });

  it('is not retried when the migration says it half ran (needs-operator): the run rolls back instead', async () => {
    const db = await shop.copy('trno');
    try {
      const before = await db.withClient(productionState);
      const invoke = invokeOnce(
        'MigrateProduction',
        () => new MigrationError('MIGRATION_FAILED', 'V2.1 failed after 1 of 2 statements', { outcome: 'needs-operator', cause: adminShutdown() }),
      );
      const report = await upgrade(db, invoke);
      expect(invoke.calls(), 'MigrateProduction was not called again').toBe(1);
      expect(report.run.status).toBe('rolled-back');
      expect(report.run.error?.code).toBe('MIGRATION_FAILED');
      expect(await db.withClient(productionState), 'production exactly as before').toEqual(before);
    } finally {
      await db.drop();
    }
  });
});

describe('the local runner between retries', () => {
  /** One Task, retried once on Transient after exactly one second (no jitter), and a step that fails once. */
  const definition = {
    Comment: 'one retried Task',
    StartAt: 'Only',
    States: {
      Only: {
        Type: 'Task',
        Resource: '${finishFunctionArn}',
        Parameters: { 'state.$': '$', args: {} },
        Retry: [{ ErrorEquals: ['Transient'], IntervalSeconds: 1, MaxAttempts: 1, BackoffRate: 1 }],
        End: true,
      },
    },
  };
  async function timedRun(retryIntervalMs?: number): Promise<{ status: string; ms: number }> {
    const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: 'unused', migrationsDir: EXAMPLE_MIGRATIONS });
    let failed = false;
    const invoke: StepInvoker = () => {
      if (failed) return Promise.resolve({});
      failed = true;
      return Promise.reject(new ConnectionError('lost the connection', socketError('ECONNRESET')));
    };
    const started = Date.now();
    try {
      const result = await runLocally({ definition, input: {}, ctx: ports.ctx, invoke, ...(retryIntervalMs === undefined ? {} : { retryIntervalMs }) });
      return { status: result.status, ms: Date.now() - started };
    } finally {
      await ports.close();
    }
  }

  it("waits the ASL's interval by default", async () => {
    const { status, ms } = await timedRun();
    expect(status).toBe('SUCCEEDED');
    expect(ms).toBeGreaterThanOrEqual(1000);
  });

  it('waits retryIntervalMs when it is given', async () => {
    const { status, ms } = await timedRun(10);
    expect(status).toBe('SUCCEEDED');
    expect(ms).toBeLessThan(900);
  });
});
