import { cp } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openLocalPorts, runWorkflow, type WorkflowReport } from '../src/adapters/local/local-workflows.ts';
import { runStep } from '../src/steps/registry.ts';
import type { RunInput } from '../src/steps/state.ts';
import type { WriterReport } from '../examples/load/writer.ts';
import { testServerUrl } from './support/database.ts';
import { defined } from './support/defined.ts';
import { acknowledgedPresent, busyShop, type BusyShop, type WriteCounts } from './support/busy-shop.ts';
import { remainingDatabases, roleExists } from './support/run-resources.ts';
import { migrationsDir } from './support/migrations-dir.ts';
import { EXAMPLE_MIGRATIONS, productionState, roleState } from './support/shop.ts';

/**
 * Upgrades of a shop whose API is being written to by four writers at once: no acknowledged write
 * is lost, whether the upgrade succeeds, is rolled back on production, or is refused at the rehearsal.
 * The API and the writers run in processes of their own (test/support/busy-shop.ts), as a real app
 * and its clients do, and the test waits on what they report, never on a guessed sleep.
 */
const EXAMPLE_VERIFY = path.resolve(EXAMPLE_MIGRATIONS, '..', 'verify');
const ORDERS = 5_000;
const UPGRADE_TIMEOUT_MS = 180_000;
/** Writes acknowledged before the run starts, so it runs under load from its first state. */
const WRITES_BEFORE = 50;
/**
 * Writes acknowledged after the run ended before the writers are stopped: they slept out the API's
 * Retry-After and write again, to the database production is at the end.
 */
const WRITES_AFTER = 20;

const FAILING_MIGRATION = `-- The seed has about 1% free orders (amount_cents = 0): this check fails on the real data.
-- safeshift:allow check-without-not-valid demo
alter table orders add constraint orders_amount_positive check (amount_cents > 0);
`;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Every shop this file made (database, role), to check at the end that nothing of them is left. */
const made: { database: string; appRole: string }[] = [];
afterAll(async () => {
  expect(await remainingDatabases(made.map((m) => m.database)), 'no shop, snapshot or clone left').toEqual([]);
  for (const { appRole } of made) expect(await roleExists(appRole), `role ${appRole} dropped`).toBe(false);
});

async function newShop(): Promise<BusyShop> {
  const shop = await busyShop({ orders: ORDERS, prefix: 'load' });
  made.push({ database: shop.database, appRole: shop.appRole });
  cleanups.push(() => shop.dispose());
  return shop;
}

/** The example migrations plus V4, whose CHECK fails on the seeded rows. */
async function failingMigrations(): Promise<string> {
  const folder = await migrationsDir({});
  cleanups.push(folder.cleanup);
  await cp(EXAMPLE_MIGRATIONS, folder.dir, { recursive: true });
  await folder.put('V4__orders_amount_positive.sql', FAILING_MIGRATION);
  return folder.dir;
}

interface LoadedRun {
  readonly report: WorkflowReport;
  readonly writes: WriterReport;
  readonly writerLog: string[];
  /** Writes the API had acknowledged when the Quiesce step began (undefined: it never did). */
  readonly acknowledgedAtQuiesce: number | undefined;
  readonly acknowledgedAtEnd: number;
  readonly acknowledgedAfter: number;
  /** What the API counted once the writers had stopped. */
  readonly apiAfter: WriteCounts;
}

/** Runs a workflow while the writer writes: from before it starts until a little after it ends. */
async function runUnderLoad(shop: BusyShop, dir: string, input: Omit<RunInput, 'runId' | 'database' | 'kind' | 'quiesce'>): Promise<LoadedRun> {
  const writerLog: string[] = [];
  const writer = shop.startWriter(writerLog);
  const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: shop.database, migrationsDir: dir, verifyDir: EXAMPLE_VERIFY });
  try {
    // Writing for real before the run starts.
    await shop.api.acknowledged(WRITES_BEFORE);
    let acknowledgedAtQuiesce: number | undefined;
    const report = await runWorkflow(
      ports,
      { kind: 'upgrade', database: shop.database, quiesce: shop.quiesce, ...input },
      {
        // Counted before the Quiesce step does anything: every write acknowledged by then was committed before it.
        invoke: async (step, stepInput, state, ctx) => {
          if (state === 'Quiesce' && acknowledgedAtQuiesce === undefined) acknowledgedAtQuiesce = (await shop.api.stats()).acknowledged;
          return runStep(step, stepInput, ctx);
        },
      },
    );
    const acknowledgedAtEnd = (await shop.api.stats()).acknowledged;
    // The writers carry on after the run, into the database production is at the end.
    const acknowledgedAfter = (await shop.api.acknowledged(acknowledgedAtEnd + WRITES_AFTER)).acknowledged;
    const writes = await writer.stop();
    const apiAfter = await shop.api.stats();
    return { report, writes, writerLog, acknowledgedAtQuiesce, acknowledgedAtEnd, acknowledgedAfter, apiAfter };
  } finally {
    await writer.stop();
    await ports.close();
  }
}

/** What must hold after any run under load: nothing acknowledged is missing, nothing failed, the API is back to normal. */
async function expectNoWriteLost(shop: BusyShop, run: LoadedRun, roleBefore: Record<string, unknown>): Promise<void> {
  const { writes } = run;
  expect(run.writerLog, 'the writer saw nothing unexpected').toEqual([]);
  expect(writes.errors, 'no request failed other than with 503').toBe(0);
  expect(writes.acknowledgedIds.length).toBeGreaterThan(50);
  expect(new Set(writes.acknowledgedIds).size, 'no id acknowledged twice').toBe(writes.acknowledgedIds.length);
  expect(writes.requests).toBe(writes.acknowledgedIds.length + writes.refused);
  expect(run.apiAfter, 'the API counted what the writers saw').toEqual({ acknowledged: writes.acknowledgedIds.length, refused: writes.refused });
  expect(await shop.withClient((c) => acknowledgedPresent(c, writes)), 'every acknowledged write is in the database').toBe(writes.acknowledgedIds.length);
  // The writers carried on after the run, into the database production is at the end.
  expect(run.acknowledgedAfter, 'writes acknowledged after the run').toBeGreaterThan(run.acknowledgedAtEnd);
  const maintenance = await fetch(shop.api.maintenanceUrl);
  expect(await maintenance.json()).toMatchObject({ mode: 'normal' });
  expect(await shop.withClient((c) => roleState(c, shop.appRole, shop.database)), 'role rights back as before').toEqual(roleBefore);
  expect(roleBefore).toMatchObject({ rolcanlogin: true, can_connect: true });
}

/** The quiesce was real and undone: both APIs recorded, quiesced, resumed, in a non-empty window. */
function expectQuiescedAndResumed(shop: BusyShop, run: LoadedRun): void {
  const { report, writes } = run;
  expect(report.quiesced.map((q) => q.apiId)).toEqual(shop.quiesce);
  for (const q of report.quiesced) {
    expect(q.status, `${q.apiId} resumed`).toBe('resumed');
    expect(Date.parse(defined(q.resumedAt, `${q.apiId} resumedAt`))).toBeGreaterThanOrEqual(Date.parse(defined(q.quiescedAt, `${q.apiId} quiescedAt`)));
  }
  expect(report.quiesced[0]?.prior).toEqual({ mode: 'normal' });
  expect(report.quiesced[1]?.prior).toMatchObject({ kind: 'db-role', role: shop.appRole, canLogin: true });
  expect(report.quiescedWindowMs, 'a quiesced window was measured').toBeGreaterThan(0);
  expect(run.acknowledgedAtQuiesce, 'writes acknowledged before the quiesce').toBeGreaterThan(0);
  expect(writes.refused, 'writes during the quiesce were refused with 503, not lost').toBeGreaterThan(0);
}

/** Everything productionState compares except the orders' rows, which the writers keep adding to. */
function schemaOf(state: Record<string, unknown>): Record<string, unknown> {
  const { data, ...rest } = state as { data: Record<string, string> };
  const { orders: _orders, ...otherData } = data;
  return { ...rest, data: otherData };
}

async function historyVersions(shop: BusyShop): Promise<string> {
  return shop.withClient(async (c) => {
    const { rows } = await c.query<{ v: string }>(
      `select string_agg(coalesce(version, 'R'), ',' order by installed_rank) as v from safeshift_schema_history where success`,
    );
    return defined(rows[0], 'the history versions row').v;
  });
}

function summary(label: string, run: LoadedRun): void {
  process.stdout.write(
    `${label}: status ${run.report.run.status}, ${run.writes.acknowledgedIds.length} writes acknowledged (all present), ` +
      `${run.writes.refused} refused with 503, ${run.writes.errors} errors, quiesced window ${run.report.quiescedWindowMs ?? '-'} ms\n`,
  );
}

describe('writes under load', () => {
  it(
    '(a) an upgrade that succeeds while four writers write loses no acknowledged write',
    async () => {
      const shop = await newShop();
      const roleBefore = await shop.withClient((c) => roleState(c, shop.appRole, shop.database));
      expect(await historyVersions(shop)).toBe('1,1.1,2,R');

      const run = await runUnderLoad(shop, EXAMPLE_MIGRATIONS, {});
      summary('(a) upgrade', run);

      expect(run.report.run.status, run.report.run.error?.message).toBe('succeeded');
      expect(run.report.run.applied).toEqual(['V2.1__index_order_status.sql', 'V3__customer_order_totals.ts']);
      expect(await historyVersions(shop)).toBe('1,1.1,2,R,2.1,3');
      expectQuiescedAndResumed(shop, run);
      await expectNoWriteLost(shop, run, roleBefore);
      // The backfill ran inside the quiesced window: it saw every order acknowledged before the quiesce.
      const totalsRow = await shop.withClient(async (c) => (await c.query<{ n: number }>('select sum(orders)::int as n from customer_totals')).rows[0]);
      const totals = defined(totalsRow, 'the customer totals row').n;
      expect(totals).toBeGreaterThanOrEqual(ORDERS + defined(run.acknowledgedAtQuiesce, 'writes acknowledged at the quiesce'));
      expect(totals).toBeLessThanOrEqual(ORDERS + run.acknowledgedAtEnd);
    },
    UPGRADE_TIMEOUT_MS,
  );

  it(
    '(b) an upgrade that fails on the real data is rolled back, keeping every acknowledged write',
    async () => {
      const shop = await newShop();
      const dir = await failingMigrations();
      const roleBefore = await shop.withClient((c) => roleState(c, shop.appRole, shop.database));
      const before = schemaOf(await shop.withClient(productionState));

      const run = await runUnderLoad(shop, dir, { rehearsal: false });
      summary('(b) rolled-back upgrade', run);

      const { report } = run;
      expect(report.run.status, report.run.error?.message).toBe('rolled-back');
      expect(report.run.error).toMatchObject({ code: 'MIGRATION_FAILED', migration: 'V4__orders_amount_positive.sql' });
      expect(report.run.error?.message).toContain('orders_amount_positive');
      // V2.1 and V3 had reached production, so it was restored from the pre-upgrade snapshot.
      const states = report.timeline.map((t) => t.state);
      expect(states).toContain('MigrateProduction');
      expect(states).toContain('SwapRestoredIn');
      expect(states).not.toContain('StartRehearsalSnapshot');
      expect(report.run.snapshotId).toBeTruthy();

      expect(await historyVersions(shop)).toBe('1,1.1,2,R');
      expect(schemaOf(await shop.withClient(productionState)), 'production schema as before the run').toEqual(before);
      expectQuiescedAndResumed(shop, run);
      // Writes acknowledged before the quiesce are in the snapshot that was restored; those after the
      // resume went to the restored database: all of them are there.
      await expectNoWriteLost(shop, run, roleBefore);
    },
    UPGRADE_TIMEOUT_MS,
  );

  it(
    '(c) with the rehearsal on, the failing migration is refused on the clone and production is never quiesced',
    async () => {
      const shop = await newShop();
      const dir = await failingMigrations();
      const roleBefore = await shop.withClient((c) => roleState(c, shop.appRole, shop.database));
      const before = schemaOf(await shop.withClient(productionState));

      const run = await runUnderLoad(shop, dir, { rehearsal: true });
      summary('(c) refused at the rehearsal', run);

      const { report } = run;
      expect(report.run.status, report.run.error?.message).toBe('refused');
      expect(report.run.error).toMatchObject({ code: 'MIGRATION_FAILED', migration: 'V4__orders_amount_positive.sql' });
      expect(report.quiesced).toEqual([]);
      expect(report.quiescedWindowMs).toBeNull();
      expect(run.acknowledgedAtQuiesce).toBeUndefined();
      const states = report.timeline.map((t) => t.state);
      expect(states).toContain('MigrateRehearsalClone');
      expect(states).not.toContain('Quiesce');
      expect(states).not.toContain('MigrateProduction');

      expect(await historyVersions(shop)).toBe('1,1.1,2,R');
      expect(schemaOf(await shop.withClient(productionState))).toEqual(before);
      await expectNoWriteLost(shop, run, roleBefore);
      const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: shop.database, migrationsDir: dir });
      try {
        expect(await ports.ctx.ledger.getLock(shop.database)).toBeUndefined();
        const [rehearsal] = await ports.ctx.ledger.listRehearsals(shop.database);
        expect(rehearsal).toMatchObject({ runId: report.run.runId, status: 'failed', error: { code: 'MIGRATION_FAILED' } });
      } finally {
        await ports.close();
      }
    },
    UPGRADE_TIMEOUT_MS,
  );
});
