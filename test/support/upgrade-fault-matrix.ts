import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upgradeWorkflow } from '../../src/steps/workflows.ts';
import { eachCase, makeLanes, type ShopLane } from './case-pool.ts';
import { expectedOutcome, expectSafeOutcome, FAULT_MODES, laterEntries, runOn, taskStates, type Fault } from './fault-matrix.ts';
import type { WorkflowReport } from '../../src/adapters/local/local-workflows.ts';
import { defined } from './defined.ts';
import { productionState, roleState, shopTemplate } from './shop.ts';

/**
 * Fault injection at every Task of the upgrade machine, three ways, for both promote strategies.
 * After each: production exactly as before or fully upgraded, APIs resumed, terminal record, nothing
 * left over, lock released.
 */
/** A whole matrix row runs one upgrade per Task: minutes, not seconds. */
const MATRIX_TIMEOUT_MS = 600_000;

type Lane = ShopLane;

export function upgradeFaultMatrix(strategy: 'in-place' | 'swap'): void {
  describe(`upgrade (${strategy}) with a fault at every Task`, () => {
    /** One shop per lane, each with where its reference run started and ended (their timestamps differ). */
    let lanes: Lane[] = [];
    let tasks: string[];
    let forwardTasks: string[];
    let loops: { state: string; entry: number }[];
    let injected = 0;

    beforeAll(async () => {
      let report: WorkflowReport | undefined;
      lanes = await makeLanes(
        async () => {
          const shop = await shopTemplate(300);
          const db = await shop.copy('ref');
          const before = await db.withClient(productionState);
          const roleBefore = await db.withClient((c) => roleState(c, shop.appRole, db.database));
          const ref = await runOn(shop, db, { kind: 'upgrade', strategy });
          expect(ref.report.run.status, ref.report.run.error?.message).toBe('succeeded');
          const after = await db.withClient(productionState);
          expect(after).not.toEqual(before);
          await db.drop();
          report ??= ref.report;
          return { shop, before, after, roleBefore };
        },
        (lane) => lane.shop.dispose(),
      );
      const all = taskStates(defined(report, 'a reference run'), upgradeWorkflow());
      forwardTasks = all;
      // The states before the pre-upgrade snapshot (preflight, rehearsal, quiesce) do the same in both
      // strategies; the in-place matrix covers them, the swap matrix what differs from the snapshot on
      // (which makes the new clone beside it). Together they cover every Task of the machine.
      tasks = strategy === 'swap' ? all.slice(all.indexOf('StartPreUpgradeSnapshot')) : all;
      loops = laterEntries(defined(report, 'a reference run'), upgradeWorkflow()).filter((l) => tasks.includes(l.state));
    });

    const laneOf = (n: number): Lane => defined(lanes[n], `lane ${n}`);

    afterAll(async () => {
      process.stdout.write(`upgrade (${strategy}): ${injected} faults injected\n`);
      for (const lane of lanes) await lane.shop.dispose();
    });

    it.each(FAULT_MODES)(
      'survives a step that %s, at every Task',
      async (mode) => {
        expect(tasks.length).toBeGreaterThan(strategy === 'swap' ? 6 : 10);
        await eachCase(
          tasks,
          async (state, n) => {
            const { shop, before, after, roleBefore } = laneOf(n);
            const db = await shop.copy('flt');
            try {
              const { report, fired } = await runOn(shop, db, { kind: 'upgrade', strategy }, [{ state, mode }]);
              expect(fired, `fault at ${state} fired`).toEqual([{ state, mode }]);
              injected += fired.length;
              const expected = expectedOutcome(upgradeWorkflow(), { state, mode });
              await expectSafeOutcome({ shop, db, report, before, after, roleBefore, expected, label: `${strategy} ${state} ${mode}` });
            } finally {
              await db.drop();
            }
          },
          lanes.length,
        );
      },
      MATRIX_TIMEOUT_MS,
    );

    it.each(FAULT_MODES)(
      'survives a step that %s at a later entry of a looping state (the second migration)',
      async (mode) => {
        expect(loops.length, 'the run loops over more than one migration').toBeGreaterThan(0);
        await eachCase(
          loops,
          async ({ state, entry }, n) => {
            const { shop, before, after, roleBefore } = laneOf(n);
            const db = await shop.copy('flp');
            try {
              const fault: Fault = { state, mode, entry };
              const { report, fired } = await runOn(shop, db, { kind: 'upgrade', strategy }, [fault]);
              expect(fired, `fault at ${state} #${entry} fired`).toEqual([fault]);
              injected += fired.length;
              await expectSafeOutcome({
                shop,
                db,
                report,
                before,
                after,
                roleBefore,
                expected: expectedOutcome(upgradeWorkflow(), fault),
                label: `${strategy} ${state} #${entry} ${mode}`,
              });
            } finally {
              await db.drop();
            }
          },
          lanes.length,
        );
      },
      MATRIX_TIMEOUT_MS,
    );

    it.each(FAULT_MODES)(
      'survives a step that %s during the rollback',
      async (mode) => {
        // A crash right after production changed sends the run down the rollback path; then a second fault there.
        const primary: Fault = { state: strategy === 'swap' ? 'SwapNewIn' : 'MigrateProduction', mode: 'crashes-after-side-effect' };
        const first = laneOf(0);
        const probe = await first.shop.copy('rbp');
        const { report: probeReport } = await runOn(first.shop, probe, { kind: 'upgrade', strategy }, [primary]);
        expect(probeReport.run.status, probeReport.run.error?.message).toBe('rolled-back');
        expect(await probe.withClient(productionState)).toEqual(first.before);
        const rollbackTasks = taskStates(probeReport, upgradeWorkflow()).filter((s) => !forwardTasks.includes(s) || s === 'RollbackPlan');
        await probe.drop();
        expect(rollbackTasks.length).toBeGreaterThan(2);
        await eachCase(
          rollbackTasks,
          async (state, n) => {
            const { shop, before, after, roleBefore } = laneOf(n);
            const db = await shop.copy('rbf');
            try {
              const { report, fired } = await runOn(shop, db, { kind: 'upgrade', strategy }, [primary, { state, mode }]);
              expect(fired.length, `faults at ${primary.state} and ${state} fired`).toBe(2);
              injected += fired.length;
              await expectSafeOutcome({ shop, db, report, before, after, roleBefore, expected: 'rolled-back', label: `${strategy} rollback ${state} ${mode}` });
            } finally {
              await db.drop();
            }
          },
          lanes.length,
        );
      },
      MATRIX_TIMEOUT_MS,
    );
  });
}
