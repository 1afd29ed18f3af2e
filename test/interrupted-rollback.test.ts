import { cp } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkflow } from '../src/adapters/local/local-workflows.ts';
import { upgradeWorkflow } from '../src/steps/workflows.ts';
import type { RunStatus } from '../src/ports.ts';
import type { RunInput } from '../src/steps/state.ts';
import { taskStates, withPorts } from './support/fault-matrix.ts';
import { interruptAndRecover, type InterruptAt } from './support/interruption.ts';
import { migrationsDir } from './support/migrations-dir.ts';
import { EXAMPLE_MIGRATIONS, productionState, roleState, shopTemplate, type ShopTemplate } from './support/shop.ts';

/**
 * The orchestrator killed on the paths the in-place matrix does not take: the swap strategy's own
 * states, every state of a rollback (after a migration failed), and in the middle of the long steps
 * (a migration still running on the server, a snapshot being copied). `recover` finishes each.
 */
const MATRIX_TIMEOUT_MS = 900_000;

let shop: ShopTemplate;
let before: Record<string, unknown>;
let roleBefore: Record<string, unknown>;
const folders: { cleanup(): Promise<void> }[] = [];

/** The example migrations plus one more file, in a folder of their own. */
async function examplesWith(name: string, sql: string): Promise<string> {
  const folder = await migrationsDir({});
  folders.push(folder);
  await cp(EXAMPLE_MIGRATIONS, folder.dir, { recursive: true });
  await folder.put(name, sql);
  // The example's V3 is an ES module in TypeScript, as in the repository (whose package.json says so).
  await folder.put('package.json', '{ "type": "module" }\n');
  return folder.dir;
}

/** A reference run without interruption: where a run of `input` ends, and the Tasks it went through. */
async function reference(dir: string, input: Omit<RunInput, 'runId' | 'database'>) {
  const db = await shop.copy('rref');
  try {
    const report = await withPorts(db, (ports) => runWorkflow({ ...ports, ctx: { ...ports.ctx, migrationsDir: dir } }, { ...input, database: db.database, quiesce: [`db-role:${shop.appRole}`] }, { retryIntervalMs: 20 }));
    return { report, after: await db.withClient(productionState), tasks: taskStates(report, upgradeWorkflow()) };
  } finally {
    await db.drop();
  }
}

function killAndRecover(dir: string, input: Omit<RunInput, 'runId' | 'database'>, at: InterruptAt, expected: RunStatus, after: Record<string, unknown>, label: string) {
  return interruptAndRecover({ shop, migrationsDir: dir, input, at, signal: 'SIGKILL', before, after, roleBefore, expected, label });
}

beforeAll(async () => {
  shop = await shopTemplate(200);
  const db = await shop.copy('rbase');
  before = await db.withClient(productionState);
  roleBefore = await db.withClient((c) => roleState(c, shop.appRole, db.database));
  await db.drop();
}, 120_000);

afterAll(async () => {
  for (const f of folders) await f.cleanup();
  await shop?.dispose();
});

describe('a run whose process is killed', () => {
  it('at every state a swap upgrade has of its own is finished by recover', async () => {
    const input = { kind: 'upgrade', strategy: 'swap', rehearsal: false } as const;
    const ref = await reference(EXAMPLE_MIGRATIONS, input);
    expect(ref.report.run.status).toBe('succeeded');
    const own = ref.tasks.slice(ref.tasks.indexOf('StartNewClone'), ref.tasks.indexOf('VerifyProduction') + 1);
    expect(own).toContain('SwapNewIn');
    for (const state of own) await killAndRecover(EXAMPLE_MIGRATIONS, input, { state, moment: 'after' }, 'succeeded', ref.after, `swap, killed after ${state}`);
  }, MATRIX_TIMEOUT_MS);

  it('at every state of a rollback is rolled back by recover', async () => {
    const dir = await examplesWith('V9__boom.sql', 'select 1/0;');
    const input = { kind: 'upgrade', rehearsal: false } as const;
    const ref = await reference(dir, input);
    expect(ref.report.run.status).toBe('rolled-back');
    const rollback = ref.tasks.slice(ref.tasks.indexOf('RollbackPlan'));
    expect(rollback).toContain('SwapRestoredIn');
    for (const state of rollback) await killAndRecover(dir, input, { state, moment: 'after' }, 'rolled-back', before, `rollback, killed after ${state}`);
    // The second look at production, after the restored database was swapped in.
    await killAndRecover(dir, input, { state: 'RollbackPlan', entry: 2, moment: 'after' }, 'rolled-back', before, 'rollback, killed after the second RollbackPlan');
  }, MATRIX_TIMEOUT_MS);

  it('in the middle of a long migration, still running on the server, is finished by recover', async () => {
    const dir = await examplesWith('V9__slow.sql', 'select pg_sleep(2); create table slow_done (id int);');
    const input = { kind: 'upgrade', rehearsal: false } as const;
    const ref = await reference(dir, input);
    expect(ref.report.run.status).toBe('succeeded');
    const entries = ref.report.timeline.filter((t) => t.state === 'MigrateProduction').length;
    await killAndRecover(dir, input, { state: 'MigrateProduction', entry: entries - 1, moment: 'during', afterMs: 500 }, 'succeeded', ref.after, 'killed 0.5 s into a 2 s migration');
  }, MATRIX_TIMEOUT_MS);

  it('in the middle of the pre-upgrade snapshot and of the restore copy is finished by recover', async () => {
    const ref = await reference(EXAMPLE_MIGRATIONS, { kind: 'upgrade', rehearsal: false });
    for (const afterMs of [5, 40]) {
      await killAndRecover(EXAMPLE_MIGRATIONS, { kind: 'upgrade', rehearsal: false }, { state: 'StartPreUpgradeSnapshot', moment: 'during', afterMs }, 'succeeded', ref.after, `killed ${afterMs} ms into the snapshot`);
    }
    const dir = await examplesWith('V9__boom.sql', 'select 1/0;');
    await killAndRecover(dir, { kind: 'upgrade', rehearsal: false }, { state: 'StartRestoreSnapshot', moment: 'during', afterMs: 20 }, 'rolled-back', before, 'killed while the rollback copies the snapshot back');
  }, MATRIX_TIMEOUT_MS);
});
