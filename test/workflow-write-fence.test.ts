import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { openLocalPorts, runWorkflow, type WorkflowReport } from '../src/adapters/local/local-workflows.ts';
import type { StepInvoker } from '../src/adapters/local/local-runner.ts';
import { connectPg } from '../src/adapters/local/pg-connection.ts';
import { fenceSlotName } from '../src/adapters/local/write-fence.ts';
import type { RunInput } from '../src/steps/state.ts';
import { runStep } from '../src/steps/registry.ts';
import { testServerUrl } from './support/database.ts';
import { defined } from './support/defined.ts';
import { interfere } from './support/interfere.ts';
import { EXAMPLE_MIGRATIONS, productionState, type CaseDatabase } from './support/shop.ts';
import { useShopCases } from './support/shop-cases.ts';

/**
 * The write fence: a writer the run did not quiesce (another service, a cron job, a person with
 * psql) changes production while the run has it. Whatever would replace production (a restore, a
 * swap, a swap back) would discard those writes, so the run never replaces it: before production
 * changed it rolls back and production keeps them; after, it needs an operator and deletes nothing.
 * The writer here is the superuser, whom no quiescer stops.
 */
const cases = useShopCases(60, 'wfref');
const { copies } = cases;

/** An order written by someone no quiescer stops; returns its id, which the server acknowledged. */
async function foreignOrder(db: CaseDatabase): Promise<string> {
  return db.withClient(async (c) => {
    const { rows } = await c.query<{ id: string }>('insert into orders (customer_id, amount_cents) values (1, 4242) returning id::text as id');
    return defined(rows[0], 'the inserted order').id;
  });
}

async function orderIds(db: CaseDatabase): Promise<Set<string>> {
  return db.withClient(async (c) => new Set((await c.query<{ id: string }>('select id::text as id from orders')).rows.map((r) => r.id)));
}

const nothing = (): Promise<void> => Promise.resolve();

/** A run during which someone writes an order as `at` begins (and `failAt` fails once); the order's id is returned beside the report. */
async function runWithForeignOrder(
  db: CaseDatabase,
  input: Omit<RunInput, 'runId' | 'database'>,
  at: string,
  failAt?: string,
): Promise<{ report: WorkflowReport; id: string }> {
  let id = '';
  const report = await run(
    db,
    input,
    interfere(
      at,
      async () => {
        id = await foreignOrder(db);
      },
      failAt,
    ),
  );
  return { report, id };
}

async function run(db: CaseDatabase, input: Omit<RunInput, 'runId' | 'database'>, invoke: StepInvoker): Promise<WorkflowReport> {
  const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: db.database, migrationsDir: EXAMPLE_MIGRATIONS });
  try {
    return await runWorkflow(
      ports,
      { rehearsal: false, quiesce: [`db-role:${cases.shop.appRole}`], ...input, database: db.database },
      { invoke, retryIntervalMs: 20 },
    );
  } finally {
    await ports.close();
  }
}

/** A run that needs an operator keeps its lock and its APIs stopped; the test frees both. */
async function release(db: CaseDatabase, report: WorkflowReport): Promise<void> {
  const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: db.database, migrationsDir: EXAMPLE_MIGRATIONS });
  try {
    expect((await ports.ctx.ledger.getLock(db.database))?.owner, 'the lock is kept for the operator').toBe(report.run.runId);
    expect(await ports.ctx.fleet.snapshotStatus(defined(report.run.snapshotId, 'the pre-upgrade snapshot')), 'the snapshot is kept').toBe('available');
    await ports.ctx.ledger.breakLock(db.database);
  } finally {
    await ports.close();
  }
}

/** The replication slot the fence kept for a run is let go when the run ends, however it ends. */
async function expectSlotReleased(report: WorkflowReport): Promise<void> {
  const admin = await connectPg(testServerUrl());
  try {
    const { rowCount } = await admin.query('select 1 from pg_replication_slots where slot_name = $1', [fenceSlotName(report.run.runId)]);
    expect(rowCount, 'the slot that kept the log for the fence').toBe(0);
  } finally {
    await admin.end();
  }
}

describe('in place: a write the run did not quiesce, then a failure after production changed', () => {
  it('restores nothing: the run needs an operator, names the write, and production keeps it', async () => {
    const db = await copies.copy(cases.shop, 'wf1');
    const { report, id } = await runWithForeignOrder(db, { kind: 'upgrade' }, 'VerifyProduction', 'VerifyProduction');
    expect(report.run.status, report.run.error?.message).toBe('needs-operator');
    await expectSlotReleased(report);
    expect(report.run.errors?.map((e) => e.code)).toEqual(['INTERNAL', 'WRITE_FENCE']);
    const fence = defined(report.run.errors?.[1], 'the fence error');
    expect(fence.message).toContain('public.orders (1 row change)');
    expect(fence.message).toMatch(/nothing was restored, swapped or deleted/);
    expect(report.timeline.some((t) => t.state === 'StartRestoreSnapshot')).toBe(false);
    expect(await orderIds(db)).toContain(id);
    expect(report.run.standing).toMatchObject({ productionVersion: '3', lock: 'kept' });
    await release(db, report);
  });

  it('without that write, the same failure restores the pre-upgrade snapshot: the run’s own migrations are not evidence', async () => {
    const db = await copies.copy(cases.shop, 'wf2');
    const report = await run(db, { kind: 'upgrade' }, interfere('VerifyProduction', nothing, 'VerifyProduction'));
    expect(report.run.status, report.run.error?.message).toBe('rolled-back');
    await expectSlotReleased(report);
    expect(await db.withClient(productionState)).toEqual(cases.before);
  });
});

describe('swap: the fence guards every database it would replace', () => {
  it('a write to production after the snapshot: the clone is never swapped in, production keeps the write, and the run rolls back', async () => {
    const db = await copies.copy(cases.shop, 'wf3');
    const { report, id } = await runWithForeignOrder(db, { kind: 'upgrade', strategy: 'swap' }, 'MigrateNewClone');
    expect(report.run.status, report.run.error?.message).toBe('rolled-back');
    expect(report.run.error?.code).toBe('WRITE_FENCE');
    expect(report.run.error?.message).toContain('Swapping in the migrated clone would discard them');
    expect(report.timeline.map((t) => t.state)).not.toContain('VerifyProduction');
    const ids = await orderIds(db);
    expect(ids).toContain(id);
    expect(ids.size).toBe(61);
    expect(report.quiesced.every((q) => q.status === 'resumed')).toBe(true);
  });

  it('a write to the swapped-in production, then a failure: it is not swapped back, and needs an operator', async () => {
    const db = await copies.copy(cases.shop, 'wf4');
    const { report, id } = await runWithForeignOrder(db, { kind: 'upgrade', strategy: 'swap' }, 'VerifyProduction', 'VerifyProduction');
    expect(report.run.status, report.run.error?.message).toBe('needs-operator');
    expect(report.run.errors?.map((e) => e.code)).toEqual(['INTERNAL', 'WRITE_FENCE']);
    expect(report.run.errors?.[1]?.message).toContain('Swapping the old production back would discard them');
    expect(await orderIds(db)).toContain(id);
    expect(report.run.standing?.productionVersion).toBe('3');
    await release(db, report);
  });
});

describe('restore: the state it replaces is guarded too', () => {
  it('a write after the safety snapshot: the chosen snapshot is not brought back, and production keeps the write', async () => {
    const db = await copies.copy(cases.shop, 'wf5');
    const upgraded = await run(db, { kind: 'upgrade' }, (step, input, _state, ctx) => runStep(step, input, ctx));
    expect(upgraded.run.status).toBe('succeeded');
    const snapshotId = defined(upgraded.run.snapshotId, 'the pre-upgrade snapshot');
    const { report, id } = await runWithForeignOrder(db, { kind: 'restore', snapshotId }, 'ConfirmQuiesced');
    expect(report.run.status, report.run.error?.message).toBe('rolled-back');
    expect(report.run.error?.code).toBe('WRITE_FENCE');
    expect(report.run.error?.message).toContain('Bringing back the chosen snapshot would discard them');
    expect(await orderIds(db)).toContain(id);
    expect(await db.withClient(async (c) => (await c.query('select 1 from safeshift_schema_history where version = $1', ['3'])).rowCount)).toBe(1);
  });
});

/** A --no-quiesce case: the run, where it is made to fail, and what it must end with. */
interface UnquiescedCase {
  readonly name: string;
  readonly input: Omit<RunInput, 'runId' | 'database'>;
  readonly failAt?: string;
  readonly codes: readonly string[];
  readonly status: 'rolled-back' | 'needs-operator';
}

const UNQUIESCED: readonly UnquiescedCase[] = [
  {
    name: 'in place, failing after the migrations (restore)',
    input: { kind: 'upgrade' },
    failAt: 'VerifyProduction',
    codes: ['INTERNAL', 'WRITE_FENCE'],
    status: 'needs-operator',
  },
  {
    name: 'in place, failing before them (nothing to bring back)',
    input: { kind: 'upgrade' },
    failAt: 'MigrateProduction',
    codes: ['INTERNAL'],
    status: 'rolled-back',
  },
  { name: 'swap (the clone is not swapped in)', input: { kind: 'upgrade', strategy: 'swap' }, codes: ['WRITE_FENCE'], status: 'rolled-back' },
  { name: 'restore (the snapshot is not brought back)', input: { kind: 'restore' }, codes: ['WRITE_FENCE'], status: 'rolled-back' },
];

describe('nothing quiesced on purpose (--no-quiesce), a writer under load', () => {
  it.each(UNQUIESCED)('$name: no acknowledged write is lost', async (c) => {
    const db = await copies.copy(cases.shop, 'wf6');
    const restoring = c.input.kind === 'restore' ? await run(db, { kind: 'upgrade' }, (step, input, _state, ctx) => runStep(step, input, ctx)) : undefined;
    const acknowledged: string[] = [];
    const writer = { writing: true };
    // Like an app's pool: a session the run ends (the snapshot copy needs production to itself) is opened again.
    const load = (async () => {
      let session: pg.Client | undefined;
      while (writer.writing) {
        try {
          session ??= await connectPg(db.url);
          const { rows } = await session.query<{ id: string }>('insert into orders (customer_id, amount_cents) values (2, 1) returning id::text as id');
          acknowledged.push(defined(rows[0], 'the order').id);
        } catch {
          await session?.end().catch(() => undefined);
          session = undefined;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      await session?.end().catch(() => undefined);
    })();
    try {
      const input = { ...c.input, quiesce: [], noQuiesce: true, ...(restoring ? { snapshotId: restoring.run.snapshotId } : {}) };
      const report = await run(db, input, interfere('Preflight', nothing, c.failAt));
      expect(report.run.errors?.map((e) => e.code) ?? [report.run.error?.code], report.run.error?.message).toEqual(c.codes);
      expect(report.run.status).toBe(c.status);
      await expectSlotReleased(report);
      writer.writing = false;
      await load;
      expect(acknowledged.length).toBeGreaterThan(0);
      const ids = await orderIds(db);
      expect(
        acknowledged.filter((a) => !ids.has(a)),
        'acknowledged orders missing from production',
      ).toEqual([]);
      if (report.run.status === 'needs-operator') await release(db, report);
    } finally {
      writer.writing = false;
      await load;
    }
  });
});
