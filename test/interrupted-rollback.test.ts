import { cp } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkflow } from '../src/adapters/local/local-workflows.ts';
import { upgradeWorkflow } from '../src/steps/workflows.ts';
import type { RunStatus } from '../src/ports.ts';
import type { RunInput } from '../src/steps/state.ts';
import { eachCase, makeLanes } from './support/case-pool.ts';
import { defined } from './support/defined.ts';
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

/** A shop of one lane's own (cases run side by side; a quiesce changes the app role, which is the server's). */
interface Lane {
  readonly shop: ShopTemplate;
  readonly before: Record<string, unknown>;
  readonly roleBefore: Record<string, unknown>;
}
let lanes: Lane[] = [];
const folders: { cleanup(): Promise<void> }[] = [];
const laneOf = (n: number): Lane => defined(lanes[n], `lane ${n}`);

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

/** A reference run on a lane's shop without interruption: where a run of `input` ends, and the Tasks it went through. */
async function reference(lane: Lane, dir: string, input: Omit<RunInput, 'runId' | 'database'>) {
  const db = await lane.shop.copy('rref');
  try {
    const report = await withPorts(db, (ports) =>
      runWorkflow(
        { ...ports, ctx: { ...ports.ctx, migrationsDir: dir } },
        { ...input, database: db.database, quiesce: [`db-role:${lane.shop.appRole}`] },
        { retryIntervalMs: 20 },
      ),
    );
    return { report, after: await db.withClient(productionState), tasks: taskStates(report, upgradeWorkflow()) };
  } finally {
    await db.drop();
  }
}

/** The reference run on every lane's shop, since each ends with its own timestamps. */
function references(dir: string, input: Omit<RunInput, 'runId' | 'database'>) {
  return Promise.all(lanes.map((lane) => reference(lane, dir, input)));
}

function killAndRecover(
  lane: Lane,
  dir: string,
  input: Omit<RunInput, 'runId' | 'database'>,
  at: InterruptAt,
  expected: RunStatus,
  after: Record<string, unknown>,
  label: string,
) {
  return interruptAndRecover({ ...lane, migrationsDir: dir, input, at, signal: 'SIGKILL', after, expected, label });
}

beforeAll(async () => {
  lanes = await makeLanes(
    async () => {
      const shop = await shopTemplate(200);
      const db = await shop.copy('rbase');
      const before = await db.withClient(productionState);
      const roleBefore = await db.withClient((c) => roleState(c, shop.appRole, db.database));
      await db.drop();
      return { shop, before, roleBefore };
    },
    (lane) => lane.shop.dispose(),
  );
}, 120_000);

afterAll(async () => {
  for (const f of folders) await f.cleanup();
  for (const lane of lanes) await lane.shop.dispose();
});

describe('a run whose process is killed', () => {
  it(
    'at every state a swap upgrade has of its own is finished by recover',
    async () => {
      const input = { kind: 'upgrade', strategy: 'swap', rehearsal: false } as const;
      const refs = await references(EXAMPLE_MIGRATIONS, input);
      const ref = defined(refs[0], 'the reference run');
      expect(refs.map((r) => r.report.run.status)).toEqual(refs.map(() => 'succeeded'));
      const own = ref.tasks.slice(ref.tasks.indexOf('StartNewClone'), ref.tasks.indexOf('VerifyProduction') + 1);
      expect(own).toContain('SwapNewIn');
      await eachCase(
        own,
        async (state, n) => {
          await killAndRecover(
            laneOf(n),
            EXAMPLE_MIGRATIONS,
            input,
            { state, moment: 'after' },
            'succeeded',
            defined(refs[n], `lane ${n}'s reference`).after,
            `swap, killed after ${state}`,
          );
        },
        lanes.length,
      );
    },
    MATRIX_TIMEOUT_MS,
  );

  it(
    'at every state of a rollback is rolled back by recover',
    async () => {
      const dir = await examplesWith('V9__boom.sql', 'select 1/0;');
      const input = { kind: 'upgrade', rehearsal: false } as const;
      const ref = await reference(laneOf(0), dir, input);
      expect(ref.report.run.status).toBe('rolled-back');
      const rollback = ref.tasks.slice(ref.tasks.indexOf('RollbackPlan'));
      expect(rollback).toContain('SwapRestoredIn');
      const cases: InterruptAt[] = [
        ...rollback.map((state): InterruptAt => ({ state, moment: 'after' })),
        // The second look at production, after the restored database was swapped in.
        { state: 'RollbackPlan', entry: 2, moment: 'after' },
      ];
      await eachCase(
        cases,
        async (at, n) => {
          const lane = laneOf(n);
          await killAndRecover(lane, dir, input, at, 'rolled-back', lane.before, `rollback, killed after ${at.state}${at.entry ? ` #${at.entry}` : ''}`);
        },
        lanes.length,
      );
    },
    MATRIX_TIMEOUT_MS,
  );

  it(
    'in the middle of a long migration, still running on the server, is finished by recover',
    async () => {
      const dir = await examplesWith('V9__slow.sql', 'select pg_sleep(2); create table slow_done (id int);');
      const input = { kind: 'upgrade', rehearsal: false } as const;
      const lane = laneOf(0);
      const ref = await reference(lane, dir, input);
      expect(ref.report.run.status).toBe('succeeded');
      const entries = ref.report.timeline.filter((t) => t.state === 'MigrateProduction').length;
      await killAndRecover(
        lane,
        dir,
        input,
        { state: 'MigrateProduction', entry: entries - 1, moment: 'during', afterMs: 500 },
        'succeeded',
        ref.after,
        'killed 0.5 s into a 2 s migration',
      );
    },
    MATRIX_TIMEOUT_MS,
  );

  it(
    'in the middle of the pre-upgrade snapshot and of the restore copy is finished by recover',
    async () => {
      const input = { kind: 'upgrade', rehearsal: false } as const;
      const refs = await references(EXAMPLE_MIGRATIONS, input);
      const dir = await examplesWith('V9__boom.sql', 'select 1/0;');
      const cases = [
        {
          dir: EXAMPLE_MIGRATIONS,
          at: { state: 'StartPreUpgradeSnapshot', moment: 'during', afterMs: 5 },
          expected: 'succeeded',
          label: 'killed 5 ms into the snapshot',
        },
        {
          dir: EXAMPLE_MIGRATIONS,
          at: { state: 'StartPreUpgradeSnapshot', moment: 'during', afterMs: 40 },
          expected: 'succeeded',
          label: 'killed 40 ms into the snapshot',
        },
        {
          dir,
          at: { state: 'StartRestoreSnapshot', moment: 'during', afterMs: 20 },
          expected: 'rolled-back',
          label: 'killed while the rollback copies the snapshot back',
        },
      ] as const;
      await eachCase(
        cases,
        async (c, n) => {
          const lane = laneOf(n);
          const after = c.expected === 'succeeded' ? defined(refs[n], `lane ${n}'s reference`).after : lane.before;
          await killAndRecover(lane, c.dir, input, c.at, c.expected, after, c.label);
        },
        lanes.length,
      );
    },
    MATRIX_TIMEOUT_MS,
  );
});
