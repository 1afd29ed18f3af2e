import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkflow } from '../src/adapters/local/local-workflows.ts';
import { restoreWorkflow } from '../src/steps/workflows.ts';
import type { RunStatus } from '../src/ports.ts';
import type { RunInput } from '../src/steps/state.ts';
import { taskStates, withPorts } from './support/fault-matrix.ts';
import { runSafeshift } from './support/cli.ts';
import { defined } from './support/defined.ts';
import { eachCase, makeLanes, type ShopLane } from './support/case-pool.ts';
import { expectRecovered, interruptAndRecover, interruptedRun, recover, type InterruptAt } from './support/interruption.ts';
import { EXAMPLE_MIGRATIONS, productionState, roleState, shopTemplate, type ShopTemplate } from './support/shop.ts';

/**
 * A restore killed at every Task, Ctrl-C (once: a safe stop; twice: left for recover), a rehearsal
 * killed half-way, and what the CLI says about an interrupted run before and after `recover`.
 */
const MATRIX_TIMEOUT_MS = 900_000;

let lanes: ShopLane[] = [];
/** Lane 0's, for the tests that run one case at a time. */
let shop: ShopTemplate;
let before: Record<string, unknown>;
let roleBefore: Record<string, unknown>;
let upgraded: Record<string, unknown>;

beforeAll(async () => {
  lanes = await makeLanes(
    async () => {
      const made = await shopTemplate(200);
      const db = await made.copy('xbase');
      const start = await db.withClient(productionState);
      const role = await db.withClient((c) => roleState(c, made.appRole, db.database));
      const report = await withPorts(db, (ports) =>
        runWorkflow(ports, { kind: 'upgrade', database: db.database, rehearsal: false, quiesce: [`db-role:${made.appRole}`] }, { retryIntervalMs: 20 }),
      );
      expect(report.run.status).toBe('succeeded');
      const upgraded = await db.withClient(productionState);
      await db.drop();
      return { shop: made, before: start, after: upgraded, roleBefore: role };
    },
    (lane) => lane.shop.dispose(),
  );
  ({ shop, before, roleBefore, after: upgraded } = defined(lanes[0], 'lane 0'));
}, 120_000);

afterAll(async () => {
  for (const lane of lanes) await lane.shop.dispose();
});

const quiesceOf = (of: ShopTemplate): [string] => [`db-role:${of.appRole}`];
const quiesce = (): [string] => quiesceOf(shop);

function interruptCase(
  input: Omit<RunInput, 'runId' | 'database' | 'quiesce'>,
  at: InterruptAt,
  signal: 'SIGKILL' | 'SIGINT',
  twice: boolean,
  expected: RunStatus,
  label: string,
  prepare?: (database: string) => Promise<Partial<RunInput>>,
  lane = 0,
) {
  const l = defined(lanes[lane], `lane ${lane}`);
  // A restore that succeeds brings back the snapshot taken before the upgrade `prepare` ran.
  const after = input.kind === 'restore' ? l.before : l.after;
  const start = input.kind === 'restore' ? l.after : l.before;
  return interruptAndRecover({
    shop: l.shop,
    migrationsDir: EXAMPLE_MIGRATIONS,
    input,
    at,
    signal,
    twice,
    before: start,
    after,
    roleBefore: l.roleBefore,
    expected,
    label,
    ...(prepare ? { prepare } : {}),
  });
}

/** Upgrades a case's database on a lane's shop, and returns its pre-upgrade snapshot for a restore to bring back. */
function upgradedWithSnapshot(of: ShopTemplate) {
  return async (database: string): Promise<{ snapshotId: string }> => {
    const report = await withPorts(database, (ports) =>
      runWorkflow(ports, { kind: 'upgrade', database, rehearsal: false, quiesce: quiesceOf(of) }, { retryIntervalMs: 20 }),
    );
    expect(report.run.status).toBe('succeeded');
    return { snapshotId: defined(report.run.snapshotId, 'the pre-upgrade snapshot id') };
  };
}

describe('a restore, a rehearsal and Ctrl-C', () => {
  it(
    'a restore killed at every Task is finished by recover',
    async () => {
      const ref = await shop.copy('xref');
      const { snapshotId } = await upgradedWithSnapshot(shop)(ref.database);
      const report = await withPorts(ref, (ports) =>
        runWorkflow(ports, { kind: 'restore', database: ref.database, snapshotId, quiesce: quiesce() }, { retryIntervalMs: 20 }),
      );
      expect(report.run.status).toBe('succeeded');
      const tasks = taskStates(report, restoreWorkflow());
      await ref.drop();
      expect(tasks).toContain('SwapRestoredInForward');
      await eachCase(
        tasks.slice(1),
        async (state, n) => {
          const of = defined(lanes[n], `lane ${n}`).shop;
          await interruptCase(
            { kind: 'restore' },
            { state, moment: 'after' },
            'SIGKILL',
            false,
            'succeeded',
            `restore killed after ${state}`,
            upgradedWithSnapshot(of),
            n,
          );
        },
        lanes.length,
      );
    },
    MATRIX_TIMEOUT_MS,
  );

  it(
    'a rehearsal killed half-way leaves nothing once recovered',
    async () => {
      const db = await shop.copy('xreh');
      try {
        const runId = randomUUID();
        const exit = await interruptedRun({
          migrationsDir: EXAMPLE_MIGRATIONS,
          signal: 'SIGKILL',
          at: { state: 'MigrateRehearsalClone', moment: 'after' },
          input: { kind: 'rehearsal', database: db.database, runId },
        });
        expect(exit.signal).toBe('SIGKILL');
        const recovered = await recover(db.database, EXAMPLE_MIGRATIONS);
        await expectRecovered({
          db,
          appRole: shop.appRole,
          migrationsDir: EXAMPLE_MIGRATIONS,
          runId,
          before,
          after: before,
          roleBefore,
          expected: 'succeeded',
          label: 'rehearsal',
          recovered,
        });
        expect(await db.withClient(productionState), 'a rehearsal never changes production').toEqual(before);
      } finally {
        await db.drop();
      }
    },
    MATRIX_TIMEOUT_MS,
  );

  it(
    'Ctrl-C before quiesce refuses the run; after quiesce rolls it back; twice leaves it for recover, which rolls it back',
    async () => {
      const once = await interruptCase(
        { kind: 'upgrade' },
        { state: 'StartRehearsalSnapshot', moment: 'after' },
        'SIGINT',
        false,
        'refused',
        'Ctrl-C during the rehearsal',
      );
      expect(once.exit.code, once.exit.stderr).toBe(0);
      expect(once.exit.stderr).toMatch(/stopping run .* at the next safe point/);
      expect(once.recovered.report, 'nothing left to recover').toBeUndefined();
      const quiesced = await interruptCase(
        { kind: 'upgrade', rehearsal: false },
        { state: 'Quiesce', moment: 'after' },
        'SIGINT',
        false,
        'rolled-back',
        'Ctrl-C after quiesce',
      );
      expect(quiesced.recovered.report).toBeUndefined();
      const twice = await interruptCase(
        { kind: 'upgrade', rehearsal: false },
        { state: 'MigrateProduction', moment: 'during', afterMs: 1 },
        'SIGINT',
        true,
        'rolled-back',
        'Ctrl-C twice mid-migration',
      );
      expect(twice.exit.code, twice.exit.stderr).toBe(130);
      expect(twice.exit.stderr).toMatch(/safeshift recover --run/);
      expect(twice.recovered.note?.action).toBe('roll-back');
    },
    MATRIX_TIMEOUT_MS,
  );

  it(
    'the CLI says a run is interrupted, refuses a new one until recover, and recover is the one command',
    async () => {
      const db = await shop.copy('xcli');
      try {
        const runId = randomUUID();
        const exit = await interruptedRun({
          migrationsDir: EXAMPLE_MIGRATIONS,
          signal: 'SIGKILL',
          at: { state: 'MigrateProduction', moment: 'after' },
          input: { kind: 'upgrade', database: db.database, runId, rehearsal: false, quiesce: quiesce() },
        });
        expect(exit.signal).toBe('SIGKILL');
        const env = { DATABASE_URL: db.url };
        const listed = await runSafeshift(['runs'], env);
        expect(listed.stdout).toMatch(/interrupted/);
        const again = await runSafeshift(['upgrade', '--dir', EXAMPLE_MIGRATIONS, '--quiesce', quiesce()[0], '--no-rehearsal'], env);
        expect(again.code, again.stdout + again.stderr).toBe(2);
        expect(again.stdout + again.stderr).toMatch(/RUN_INTERRUPTED|safeshift recover/);
        const stopped = await runSafeshift(['quiesced'], env);
        expect(stopped.code).toBe(3);
        expect(stopped.stdout).toMatch(/safeshift recover/);
        const recovered = await runSafeshift(['recover'], env);
        expect(recovered.code, recovered.stdout + recovered.stderr).toBe(0);
        expect(recovered.stdout).toMatch(/continued from there/);
        const second = await runSafeshift(['recover'], env);
        expect(second.code).toBe(0);
        expect(second.stdout).toMatch(/nothing to recover/);
        expect(await db.withClient(productionState)).toEqual(upgraded);
        expect(await db.withClient((c) => roleState(c, shop.appRole, db.database))).toEqual(roleBefore);
      } finally {
        await db.drop();
      }
    },
    MATRIX_TIMEOUT_MS,
  );
});
