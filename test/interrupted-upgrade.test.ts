import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkflow } from '../src/adapters/local/local-workflows.ts';
import { upgradeWorkflow } from '../src/steps/workflows.ts';
import { taskStates, withPorts } from './support/fault-matrix.ts';
import { interruptAndRecover, type InterruptAt } from './support/interruption.ts';
import { EXAMPLE_MIGRATIONS, productionState, roleState, shopTemplate, type ShopTemplate } from './support/shop.ts';

/**
 * The orchestrator killed (SIGKILL) at every Task of an in-place upgrade, rehearsal included, each
 * time right after the step did its work and before the machine could record it: `safeshift recover`
 * then finishes the upgrade from the checkpoint, and everything the promise names holds.
 */
const MATRIX_TIMEOUT_MS = 900_000;

let shop: ShopTemplate;
let before: Record<string, unknown>;
let after: Record<string, unknown>;
let roleBefore: Record<string, unknown>;
let tasks: string[];

beforeAll(async () => {
  shop = await shopTemplate(200);
  const db = await shop.copy('iref');
  before = await db.withClient(productionState);
  roleBefore = await db.withClient((c) => roleState(c, shop.appRole, db.database));
  const report = await withPorts(db, (ports) => runWorkflow(ports, { kind: 'upgrade', database: db.database, quiesce: [`db-role:${shop.appRole}`] }, { retryIntervalMs: 20 }));
  expect(report.run.status, report.run.error?.message).toBe('succeeded');
  after = await db.withClient(productionState);
  tasks = taskStates(report, upgradeWorkflow());
  await db.drop();
}, 120_000);

afterAll(async () => { await shop?.dispose(); });

function killAndRecover(at: InterruptAt, label: string) {
  // Killed after preflight, before the next Task's checkpoint: the run had changed nothing, and is closed as refused.
  const expected = at.state === 'Preflight' ? 'refused' : 'succeeded';
  return interruptAndRecover({ shop, migrationsDir: EXAMPLE_MIGRATIONS, input: { kind: 'upgrade' }, at, signal: 'SIGKILL', before, after, roleBefore, expected, label });
}

describe('an upgrade whose process is killed', () => {
  it('at every Task, after the step did its work, is finished by recover', async () => {
    expect(tasks.length).toBeGreaterThan(12);
    for (const state of tasks) await killAndRecover({ state, moment: 'after' }, `killed after ${state}`);
  }, MATRIX_TIMEOUT_MS);
});
