import { cp } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openLocalPorts, runWorkflow, type WorkflowReport } from '../src/adapters/local/local-workflows.ts';
import { migrate } from '../src/core/migrate.ts';
import { runStep } from '../src/steps/registry.ts';
import type { StepInvoker } from '../src/adapters/local/local-runner.ts';
import type { RunInput } from '../src/steps/state.ts';
import { testServerUrl } from './support/database.ts';
import { migrationsDir } from './support/migrations-dir.ts';
import { EXAMPLE_MIGRATIONS, leftovers, productionState, roleState, shopTemplate, type CaseDatabase, type ShopTemplate } from './support/shop.ts';

/**
 * Failures in the middle of a step rather than between steps: a Task that times out or fails while
 * its SQL still runs on the server, and SQL that simply takes long. The run must end exactly as
 * before or fully upgraded, never with half a decision made on a database still being changed.
 */
let shop: ShopTemplate;
beforeAll(async () => {
  shop = await shopTemplate();
}, 120_000);
afterAll(async () => {
  await shop.dispose();
});

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The example migrations (the shop is at V2) plus extra files. */
async function migrationsWith(files: Record<string, string>): Promise<{ dir: string; verifyDir: string }> {
  const folder = await migrationsDir({});
  cleanups.push(folder.cleanup);
  await cp(EXAMPLE_MIGRATIONS, `${folder.dir}/migrations`, { recursive: true });
  for (const [name, text] of Object.entries(files)) await folder.put(name, text);
  return { dir: `${folder.dir}/migrations`, verifyDir: `${folder.dir}/verify` };
}

/** A copy of the shop, brought to the example migrations' latest version when `current`. */
async function copyOfShop(current = false): Promise<CaseDatabase> {
  const db = await shop.copy('tf');
  cleanups.push(() => db.drop());
  if (current) await db.withClient((client) => migrate({ client, dir: EXAMPLE_MIGRATIONS }));
  return db;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function upgrade(
  db: CaseDatabase,
  dirs: { dir: string; verifyDir: string },
  input: Partial<RunInput>,
  options: { invoke?: StepInvoker; taskTimeoutSeconds?: number } = {},
): Promise<WorkflowReport> {
  const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: db.database, migrationsDir: dirs.dir, verifyDir: dirs.verifyDir });
  try {
    return await runWorkflow(ports, { kind: 'upgrade', database: db.database, quiesce: [`db-role:${shop.appRole}`], rehearsal: false, ...input }, options);
  } finally {
    await ports.close();
  }
}

/** A Task that fails `afterMs` into its step while the step itself goes on, as a timed-out or killed Task does. */
function failsWhileRunning(stateName: string, afterMs: number, running: Promise<unknown>[]): StepInvoker {
  let fired = false;
  return async (step, input, state, ctx) => {
    if (state !== stateName || fired) return runStep(step, input, ctx);
    fired = true;
    running.push(runStep(step, input, ctx).catch(() => undefined));
    await sleep(afterMs);
    throw new Error(`injected: ${state} failed while its step was still running`);
  };
}

async function expectExactlyAsBefore(db: CaseDatabase, before: Record<string, unknown>, roleBefore: Record<string, unknown>, report: WorkflowReport) {
  expect(await db.withClient(productionState), 'production exactly as before').toEqual(before);
  expect(await db.withClient((c) => roleState(c, shop.appRole, db.database)), 'the app role is back').toEqual(roleBefore);
  expect(
    report.quiesced.every((q) => q.status === 'resumed'),
    'every API resumed',
  ).toBe(true);
  expect(await db.withClient((c) => leftovers(c, db.database)), 'no temporary database').toEqual([]);
}

describe('a Task that fails while its SQL still runs', () => {
  it('a migration still running when its Task failed is ended before the rollback decides, so production stays exactly as before', async () => {
    // Only V4 is pending: the run has no history row of its own when the Task fails.
    const db = await copyOfShop(true);
    const dirs = await migrationsWith({ 'migrations/V4__slow_table.sql': 'select pg_sleep(3);\ncreate table slow_made (id int);\n' });
    const before = await db.withClient(productionState);
    const roleBefore = await db.withClient((c) => roleState(c, shop.appRole, db.database));
    const running: Promise<unknown>[] = [];
    // The Task fails 0.5 s into V4's 3 s.
    const report = await upgrade(db, dirs, {}, { invoke: failsWhileRunning('MigrateProduction', 500, running) });
    // The step the Task abandoned is given all the time it would have needed to commit.
    await Promise.all(running);
    await sleep(500);
    expect(report.run.status, report.run.error?.message).toBe('rolled-back');
    await expectExactlyAsBefore(db, before, roleBefore, report);
    const tables = await db.withClient(async (c) => (await c.query<{ t: string | null }>(`select to_regclass('public.slow_made') as t`)).rows[0]?.t);
    expect(tables, 'the abandoned migration never committed').toBeNull();
  });

  it('a Task whose time runs out mid-migration has its SQL cancelled by the server at its deadline, and is rolled back', async () => {
    const db = await copyOfShop();
    const dirs = await migrationsWith({ 'migrations/V4__slow_table.sql': 'select pg_sleep(4);\ncreate table slow_made (id int);\n' });
    const before = await db.withClient(productionState);
    const roleBefore = await db.withClient((c) => roleState(c, shop.appRole, db.database));
    const report = await upgrade(db, dirs, {}, { taskTimeoutSeconds: 2 });
    await sleep(3000);
    expect(report.run.status, report.run.error?.message).toBe('rolled-back');
    // The step bounds its statements by the Task's time (statement_timeout), so the server cancels them (57014).
    expect(report.run.error?.code).toBe('MIGRATION_FAILED');
    expect(report.run.error?.message).toMatch(/SQLSTATE 57014/);
    await expectExactlyAsBefore(db, before, roleBefore, report);
  });
});

describe('long SQL', () => {
  it('a migration that runs past 60 s completes: local Tasks have no 60 s default timeout', async () => {
    const db = await copyOfShop();
    const dirs = await migrationsWith({ 'migrations/V4__long.sql': 'select pg_sleep(62);\ncreate table long_made (id int);\n' });
    const report = await upgrade(db, dirs, {});
    expect(report.run.status, report.run.error?.message).toBe('succeeded');
    expect(report.timeline.some((t) => t.error === 'States.Timeout')).toBe(false);
    const made = await db.withClient(async (c) => (await c.query<{ t: string | null }>(`select to_regclass('public.long_made')::text as t`)).rows[0]?.t);
    expect(made).toBe('long_made');
  }, 150_000);

  it('a verify check that runs past its timeout fails the verify, and production is brought back', async () => {
    const db = await copyOfShop();
    const dirs = await migrationsWith({
      'verify/slow_check.sql': 'select pg_sleep(20) is null;\n',
      'migrations/V4__note.sql': 'alter table orders add column note text;\n',
    });
    const before = await db.withClient(productionState);
    const roleBefore = await db.withClient((c) => roleState(c, shop.appRole, db.database));
    const report = await upgrade(db, dirs, { verifyTimeoutSeconds: 1 });
    expect(report.run.status, report.run.error?.message).toBe('rolled-back');
    expect(report.run.error?.code).toBe('VERIFY_FAILED');
    // Said only when the server cancelled the check (SQLSTATE 57014), not when it ran to its end.
    expect(report.run.error?.message).toMatch(/slow_check\.sql did not finish within 1 s/);
    await expectExactlyAsBefore(db, before, roleBefore, report);
  });
});
