import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkflow } from '../src/adapters/local/local-workflows.ts';
import { upgradeWorkflow } from '../src/steps/workflows.ts';
import { eachCase, makeLanes, type ShopLane } from './support/case-pool.ts';
import { defined } from './support/defined.ts';
import { taskStates, withPorts } from './support/fault-matrix.ts';
import { interruptAndRecover, type InterruptAt } from './support/interruption.ts';
import { EXAMPLE_MIGRATIONS, productionState, roleState, shopTemplate } from './support/shop.ts';

/**
 * The orchestrator killed (SIGKILL) at every Task of an in-place upgrade, rehearsal included, each
 * time right after the step did its work and before the machine could record it: `safeshift recover`
 * then finishes the upgrade from the checkpoint, and everything the promise names holds.
 */
const MATRIX_TIMEOUT_MS = 900_000;

type Lane = ShopLane;
let lanes: Lane[] = [];
let tasks: string[] = [];

beforeAll(async () => {
  lanes = await makeLanes(
    async () => {
      const shop = await shopTemplate(200);
      const db = await shop.copy('iref');
      const before = await db.withClient(productionState);
      const roleBefore = await db.withClient((c) => roleState(c, shop.appRole, db.database));
      const report = await withPorts(db, (ports) =>
        runWorkflow(ports, { kind: 'upgrade', database: db.database, quiesce: [`db-role:${shop.appRole}`] }, { retryIntervalMs: 20 }),
      );
      expect(report.run.status, report.run.error?.message).toBe('succeeded');
      const after = await db.withClient(productionState);
      tasks = taskStates(report, upgradeWorkflow());
      await db.drop();
      return { shop, before, after, roleBefore };
    },
    (lane) => lane.shop.dispose(),
  );
}, 120_000);

afterAll(async () => {
  for (const lane of lanes) await lane.shop.dispose();
});

function killAndRecover(lane: Lane, at: InterruptAt, label: string) {
  // Killed after preflight, before the next Task's checkpoint: the run had changed nothing, and is closed as refused.
  const expected = at.state === 'Preflight' ? 'refused' : 'succeeded';
  return interruptAndRecover({ ...lane, migrationsDir: EXAMPLE_MIGRATIONS, input: { kind: 'upgrade' }, at, signal: 'SIGKILL', expected, label });
}

describe('an upgrade whose process is killed', () => {
  it(
    'at every Task, after the step did its work, is finished by recover',
    async () => {
      expect(tasks.length).toBeGreaterThan(12);
      await eachCase(
        tasks,
        async (state, n) => {
          await killAndRecover(defined(lanes[n], `lane ${n}`), { state, moment: 'after' }, `killed after ${state}`);
        },
        lanes.length,
      );
    },
    MATRIX_TIMEOUT_MS,
  );
});
