import { cp } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPg } from '../src/adapters/local/pg-connection.ts';
import type { StepInvoker } from '../src/adapters/local/local-runner.ts';
import { openLocalPorts, runWorkflow, type WorkflowReport } from '../src/adapters/local/local-workflows.ts';
import { migrate } from '../src/core/migrate.ts';
import type { RunStatus } from '../src/ports.ts';
import { upgradeWorkflow } from '../src/steps/workflows.ts';
import { eachCase, makeLanes, type ShopLane } from './support/case-pool.ts';
import { testServerUrl } from './support/database.ts';
import { defined } from './support/defined.ts';
import { expectSafeOutcome, FAULT_RETRY_INTERVAL_MS, taskStates } from './support/fault-matrix.ts';
import { migrationsDir } from './support/migrations-dir.ts';
import { expectedStatus, pairOf, sampled } from './support/port-fault-cases.ts';
import { dropRunDatabases, expectHonestRecord, expectNeedsOperator, operatorPutsBack } from './support/port-fault-checks.ts';
import { MIGRATION_QUERY, MUTATING_CALLS, PortFaults, type PortCall, type PortFault, type PortFaultMode } from './support/port-faults.ts';
import { EXAMPLE_MIGRATIONS, productionState, roleState, shopTemplate, type CaseDatabase } from './support/shop.ts';

/**
 * Faults inside a step, at its calls to the ports (issue 9). The Task matrices (faults-upgrade-*)
 * fail a whole step before or after it runs; here one call of a step fails while the calls before
 * it in the same step succeeded: between the write-ahead ledger record and the fleet's side effect,
 * after a swap whose answer was lost, while a migration's SQL still runs on the server. Every case
 * runs a real upgrade on its own copy of the shop and must end in one exact status, with production
 * exactly as before or fully upgraded, every API back as recorded (or named as still stopped by a run
 * that needs an operator), a terminal record that says what really happened, nothing left over, and
 * the lock released (or kept, with the reason, by a run that needs an operator).
 *
 * Which calls are faulted. Clean runs record the calls their steps make, each with the Task state
 * whose step made it. Of the calls that change something (MUTATING_CALLS), each distinct
 * (method, state) is faulted at its first and its last call in the run, `before` and `after`, not at
 * every call. That is enough because the outcome of a failed call is decided by two things only: the
 * Task it fails in (its Retry and Catch, the same for every call the state makes), and what its step
 * did before it, which grows from the first call to the last: the first call of a method in a state
 * fails with nothing of it done yet (the first migration, the write-ahead record before the
 * quiesce), the last with the rest done (the last migration, the `quiesced` record after it). The
 * calls between are the same code at the same place of a loop. The swap run adds only the pairs the
 * in-place run does not make (the snapshot made with its clone, the new clone, its migrations, the
 * swap, the kept retired production): the rest is the same step in the same Task, covered once. The
 * rollback paths are faulted the same way, from runs that a lost answer sent down them.
 *
 * Which runs. A call in a state that an upgrade without a rehearsal also enters is faulted in such an
 * upgrade (numbered by a clean run without one): nothing a step does after the rehearsal reads what
 * the rehearsal left, and a run without it copies the database once instead of three times, which
 * is what keeps this file within a few minutes. The rehearsal's own states are faulted in an upgrade
 * with its rehearsal (numbered by a clean run with one).
 *
 * Beside the port faults, two cases fail inside a statement rather than at a call, with nothing
 * injected: a CREATE INDEX CONCURRENTLY that hits its lock timeout, or its Task's deadline, half-way.
 * It has made its (invalid) index by then, as a statement that took effect and then failed to answer
 * has done its work: the same engine paths as the no-transaction `after` cases below.
 */

const MODES: readonly PortFaultMode[] = ['before', 'after'];
/** A group of cases runs one upgrade per case, a few at a time. */
const GROUP_TIMEOUT_MS = 300_000;

type Strategy = 'in-place' | 'swap';
/** How an upgrade of a case runs: its strategy, and with its rehearsal or without. */
interface Shape {
  readonly strategy: Strategy;
  readonly rehearsal: boolean;
}
const IN_PLACE: Shape = { strategy: 'in-place', rehearsal: false };
const REHEARSED: Shape = { strategy: 'in-place', rehearsal: true };
const SWAP: Shape = { strategy: 'swap', rehearsal: false };
const SHAPES = [IN_PLACE, REHEARSED, SWAP] as const;

/** One case: a fault at one recorded call, and the one status it must give. */
interface Case {
  readonly shape: Shape;
  readonly at: PortCall;
  readonly mode: PortFaultMode;
  /** A fault of the same run before this one (the lost answer that sends it down its rollback path). */
  readonly primary?: PortFault;
  /** The port keeps failing from this call on, through every retry. */
  readonly keepsFailing?: boolean;
  /** The run applies the migrations folder whose one pending migration takes 2 s, to a copy at the examples' head. */
  readonly slow?: boolean;
  readonly expected: RunStatus;
}

const label = (c: Case) =>
  `${c.shape.strategy}${c.shape.rehearsal ? ' rehearsed' : ''}${c.primary ? ` after ${c.primary.method} #${c.primary.call} ${c.primary.mode},` : ''} ` +
  `${c.at.method} #${c.at.call}${c.at.applies ? ` ${c.at.applies}` : ''} (${c.at.state}) ${c.mode}${c.keepsFailing ? ' keeps failing' : ''}`;

/**
 * A statement of a no-transaction migration that took effect and then failed to answer: the one call
 * whose effect nothing the run does can take back but a restore. Its cases have an `it` of their own.
 */
const isLostStatement = (c: Case) => c.mode === 'after' && c.at.applies === 'statement';

/** One lane's shop, and where the 2 s migration takes it from the examples' head (made when first needed). */
interface Lane extends ShopLane {
  slowAfter?: Promise<Record<string, unknown>>;
}

let lanes: Lane[] = [];
/** The calls of each shape's clean run, and the Task states it went through. */
const clean = new Map<Shape, { calls: readonly PortCall[]; tasks: readonly string[] }>();
/** The example migrations, the same verify checks, and V4, which sleeps 2 s before its DDL. */
let slow: { dir: string; cleanup: () => Promise<void> } | undefined;
let faulted = 0;

const laneOf = (n: number): Lane => defined(lanes[n], `lane ${n}`);
const cleanRun = (shape: Shape) => defined(clean.get(shape), `the clean ${shape.strategy} run${shape.rehearsal ? ' with its rehearsal' : ''}`);
/** The shape a call of the in-place upgrade is faulted in: without the rehearsal, unless only a rehearsal makes it. */
const inPlaceShape = (call: PortCall): Shape => (cleanRun(IN_PLACE).tasks.includes(call.state) ? IN_PLACE : REHEARSED);

/** Runs an upgrade on a case's copy with the port faults given. */
async function upgrade(lane: ShopLane, db: CaseDatabase, shape: Shape, faults: readonly PortFault[], migrations = EXAMPLE_MIGRATIONS) {
  const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: db.database, migrationsDir: migrations });
  const calls = new PortFaults(faults);
  try {
    const report = await runWorkflow(
      ports,
      { kind: 'upgrade', ...shape, database: db.database, quiesce: [`db-role:${lane.shop.appRole}`] },
      { invoke: calls.invoke, retryIntervalMs: FAULT_RETRY_INTERVAL_MS },
    );
    return { report, calls };
  } finally {
    await ports.close();
  }
}

beforeAll(async () => {
  lanes = await makeLanes(
    async (n) => {
      const shop = await shopTemplate(300);
      const probe = await shop.copy('ref');
      const before = await probe.withClient(productionState);
      const roleBefore = await probe.withClient((c) => roleState(c, shop.appRole, probe.database));
      await probe.drop();
      const lane: Lane = { shop, before, after: {}, roleBefore };
      // Every lane needs where an upgrade ends (each shop's timestamps differ); one lane records the calls.
      let after: Record<string, unknown> | undefined;
      for (const shape of n === 0 ? SHAPES : [IN_PLACE]) {
        const db = await shop.copy('ref');
        const { report, calls } = await upgrade(lane, db, shape, []);
        expect(report.run.status, report.run.error?.message).toBe('succeeded');
        const state = await db.withClient(productionState);
        if (after) expect(state, `the ${shape.strategy} run ends where the first did`).toEqual(after);
        after = state;
        clean.set(shape, { calls: calls.calls, tasks: taskStates(report, upgradeWorkflow()) });
        await db.drop();
        await dropRunDatabases(db, report.run.runId);
      }
      expect(after).not.toEqual(before);
      return { ...lane, after: defined(after, 'the upgraded state') };
    },
    (lane) => lane.shop.dispose(),
  );
  const folder = await migrationsDir({ 'migrations/V4__slow_table.sql': 'select pg_sleep(2);\ncreate table slow_made (id int);\n' });
  await cp(EXAMPLE_MIGRATIONS, `${folder.dir}/migrations`, { recursive: true });
  await cp(`${EXAMPLE_MIGRATIONS}/../verify`, `${folder.dir}/verify`, { recursive: true });
  slow = { dir: `${folder.dir}/migrations`, cleanup: folder.cleanup };
}, GROUP_TIMEOUT_MS);

afterAll(async () => {
  process.stdout.write(`port calls: ${faulted} faulted runs\n`);
  for (const lane of lanes) await lane.shop.dispose();
  await slow?.cleanup();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const tableExists = (db: CaseDatabase, table: string) =>
  db.withClient(async (c) => (await c.query<{ t: string | null }>('select to_regclass($1)::text as t', [table])).rows[0]?.t ?? null);

/** Where the 2 s migration takes a lane's shop from the examples' head, as `migrate` leaves it. */
function slowAfter(lane: Lane): Promise<Record<string, unknown>> {
  lane.slowAfter ??= (async () => {
    const db = await lane.shop.copy('slw');
    try {
      await db.withClient((client) => migrate({ client, dir: defined(slow, 'the slow folder').dir }));
      return await db.withClient(productionState);
    } finally {
      await db.drop();
    }
  })();
  return lane.slowAfter;
}

/** Runs one case on a lane and checks everything its status promises. */
async function runCase(c: Case, n: number): Promise<void> {
  const lane = laneOf(n);
  const db = await lane.shop.copy('pf');
  let report: WorkflowReport | undefined;
  try {
    let expectations: ShopLane = lane;
    if (c.slow) {
      await db.withClient((client) => migrate({ client, dir: EXAMPLE_MIGRATIONS }));
      expectations = { ...lane, before: await db.withClient(productionState), after: await slowAfter(lane) };
    }
    const fault: PortFault = { method: c.at.method, call: c.at.call, mode: c.mode, ...(c.keepsFailing ? { times: Infinity } : {}) };
    const run = await upgrade(
      lane,
      db,
      c.shape,
      [...(c.primary ? [c.primary] : []), fault],
      c.slow ? defined(slow, 'the slow folder').dir : EXAMPLE_MIGRATIONS,
    );
    report = run.report;
    faulted++;
    const what = label(c);
    // A query the fault abandoned has ended (or been ended) before anything is read; the run must have ended it, not let it finish.
    const abandoned = await run.calls.settled();
    expect(abandoned, `${what}: the run ended the SQL its failed Task left running`).toEqual(c.mode === 'still-running' ? ['ended'] : []);
    const hits = run.calls.fired.filter((f) => f === fault);
    if (c.primary) expect(run.calls.fired, `${what}: the primary fault fired`).toContain(c.primary);
    if (c.keepsFailing) expect(hits.length, `${what}: the port kept failing`).toBeGreaterThan(1);
    else expect(hits.length, `${what}: fired once`).toBe(1);
    // The call faulted is the one recorded: the same method, number and state as in the clean (or probe) run.
    expect(
      run.calls.calls.find((x) => x.method === c.at.method && x.call === c.at.call),
      `${what}: the call is the one recorded`,
    ).toEqual(c.at);
    if (c.expected === 'needs-operator') await expectNeedsOperator(expectations, db, report, what);
    else await expectSafeOutcome({ ...expectations, db, report, expected: c.expected, label: what });
    await expectHonestRecord(db, report, what);
    if (c.slow) expect(await tableExists(db, 'public.slow_made'), `${what}: the abandoned migration never committed`).toBeNull();
  } finally {
    if (report?.run.status === 'needs-operator') await operatorPutsBack(db, report);
    await db.drop();
    if (report) await dropRunDatabases(db, report.run.runId);
  }
}

/**
 * An in-place upgrade (no rehearsal) of a lane-0 copy while a session the run does not quiesce (the
 * superuser's) holds a write on `orders` for `holdMs` from the moment MigrateProduction begins:
 * connected then, since the pre-upgrade snapshot ends every session on production. The write leaves
 * every row as it was. `check` sees the run before the copy goes; returns the report and the invalid
 * indexes production was left with.
 */
async function upgradeWhileWriting(
  options: { readonly holdMs: number; readonly taskTimeoutSeconds?: number },
  check: (run: { lane: ShopLane; db: CaseDatabase; report: WorkflowReport }) => Promise<void>,
): Promise<{ report: WorkflowReport; invalid: { index: string }[] }> {
  const lane = laneOf(0);
  const db = await lane.shop.copy('cic');
  let writer: Awaited<ReturnType<typeof connectPg>> | undefined;
  let holding: Promise<unknown> | undefined;
  const calls = new PortFaults();
  const invoke: StepInvoker = async (step, input, state, ctx) => {
    if (state === 'MigrateProduction' && !writer) {
      const session = await connectPg(db.url);
      writer = session;
      await session.query('begin');
      await session.query('update orders set amount_cents = amount_cents where id = (select min(id) from orders)');
      holding = sleep(options.holdMs).then(() => session.query('commit'));
    }
    return calls.invoke(step, input, state, ctx);
  };
  const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: db.database, migrationsDir: EXAMPLE_MIGRATIONS });
  let report: WorkflowReport | undefined;
  try {
    report = await runWorkflow(
      ports,
      { kind: 'upgrade', ...IN_PLACE, database: db.database, quiesce: [`db-role:${lane.shop.appRole}`] },
      {
        invoke,
        retryIntervalMs: FAULT_RETRY_INTERVAL_MS,
        ...(options.taskTimeoutSeconds !== undefined ? { taskTimeoutSeconds: options.taskTimeoutSeconds } : {}),
      },
    );
    // A run that brings production back ends the writer's session; its commit was never acknowledged, so nothing it wrote can be lost.
    await holding?.catch(() => undefined);
    faulted++;
    await check({ lane, db, report });
    const invalid = await db.withClient(
      async (c) =>
        (
          await c.query<{ index: string }>(
            `select indexrelid::regclass::text as index from pg_index i join pg_class t on t.oid = i.indrelid
              where t.relnamespace = 'public'::regnamespace and not i.indisvalid`,
          )
        ).rows,
    );
    return { report, invalid };
  } finally {
    await holding?.catch(() => undefined);
    await writer?.end().catch(() => undefined);
    await ports.close();
    await db.drop();
    if (report) await dropRunDatabases(db, report.run.runId);
  }
}

/** The forward cases, every mode: the in-place upgrade's calls, then the swap's that the in-place one does not make. */
function forwardCases(): Case[] {
  const inPlace = [...sampled(cleanRun(IN_PLACE).calls), ...sampled(cleanRun(REHEARSED).calls, new Set(cleanRun(IN_PLACE).calls.map(pairOf)))];
  const covered = new Set([...cleanRun(IN_PLACE).calls, ...cleanRun(REHEARSED).calls].map(pairOf));
  const swap = sampled(cleanRun(SWAP).calls, covered);
  return MODES.flatMap((mode) => [
    ...inPlace.map((at): Case => ({ shape: inPlaceShape(at), at, mode, expected: expectedStatus(at.state, 'succeeded') })),
    ...swap.map((at): Case => ({ shape: SWAP, at, mode, expected: expectedStatus(at.state, 'succeeded') })),
  ]);
}

/**
 * The first call of `method` made in `state` by a clean run of `shape` (its number differs between
 * runs with and without a rehearsal).
 */
function firstCall(shape: Shape, method: string, state: string): PortCall {
  return defined(
    cleanRun(shape).calls.find((c) => c.method === method && c.state === state),
    `${method} in ${state}`,
  );
}

/**
 * A lost answer that sends each strategy down its rollback path: in place, the last migration
 * committed and its answer lost (its history rows say production changed: restore the snapshot); by
 * swap, the swap done and its answer lost (the old production is kept: swap it back).
 */
function primaries(): { shape: Shape; primary: PortFault }[] {
  const lastMigration = defined(
    cleanRun(IN_PLACE)
      .calls.filter((c) => c.method === MIGRATION_QUERY)
      .at(-1),
    'the last migration',
  );
  const swap = firstCall(SWAP, 'Fleet.swap', 'SwapNewIn');
  return [
    { shape: IN_PLACE, primary: { method: lastMigration.method, call: lastMigration.call, mode: 'after' } },
    { shape: SWAP, primary: { method: swap.method, call: swap.call, mode: 'after' } },
  ];
}

/** Each primary's run, made once: the calls of its rollback path, numbered as the cases that fault them count. */
const probes = new Map<Shape, Promise<readonly PortCall[]>>();
function probeOf(shape: Shape, primary: PortFault): Promise<readonly PortCall[]> {
  let probe = probes.get(shape);
  if (!probe) {
    probe = (async () => {
      const first = laneOf(0);
      const db = await first.shop.copy('rbp');
      const { report, calls } = await upgrade(first, db, shape, [primary]);
      await db.drop();
      await dropRunDatabases(db, report.run.runId);
      expect(report.run.status, report.run.error?.message).toBe('rolled-back');
      const forward = new Set(SHAPES.flatMap((s) => cleanRun(s).tasks));
      return calls.calls.filter((c) => !forward.has(c.state));
    })();
    probes.set(shape, probe);
  }
  return probe;
}

describe('a fault at one port call inside a step', () => {
  it('the clean runs make every mutating call this file faults', () => {
    const made = new Set([...cleanRun(REHEARSED).calls, ...cleanRun(SWAP).calls].map((c) => c.method));
    expect(MUTATING_CALLS.filter((m) => !made.has(m))).toEqual([]);
    // Both kinds of migration query are among them: a transaction's commit and a no-transaction statement.
    expect(new Set(cleanRun(IN_PLACE).calls.map((c) => c.applies))).toEqual(new Set([undefined, 'commit', 'statement']));
  });

  it.each(MODES)(
    'each mutating call of an upgrade failing %s it is made',
    async (mode) => {
      const cases = forwardCases().filter((c) => c.mode === mode && !isLostStatement(c));
      expect(cases.length).toBeGreaterThan(20);
      await eachCase(cases, runCase, lanes.length);
    },
    GROUP_TIMEOUT_MS,
  );

  it(
    'a no-transaction migration statement that took effect and then failed to answer: production is brought back all the same',
    async () => {
      // CREATE INDEX CONCURRENTLY that fails late leaves its (invalid) index behind; so does a statement whose answer is lost.
      const cases = forwardCases().filter(isLostStatement);
      expect(cases.map((c) => c.at.state)).toEqual(expect.arrayContaining(['MigrateRehearsalClone', 'MigrateProduction', 'MigrateNewClone']));
      await eachCase(cases, runCase, lanes.length);
    },
    GROUP_TIMEOUT_MS,
  );

  it(
    'a no-transaction statement that hits its lock timeout half-way is not retried over what it left: no invalid index behind an applied migration',
    async () => {
      // CREATE INDEX CONCURRENTLY makes its index first (marked invalid), then waits for the table's
      // writers. One the run does not quiesce (another role's open transaction, held 3.5 s) outlasts
      // V2.1's 2 s lock timeout; the engine retries the statement, and IF NOT EXISTS finds the invalid
      // index and skips. Nothing failed for good (the writer is gone before a second lock timeout
      // could pass), so the rule says succeeded; what that promises is production fully upgraded,
      // which an index that is never used is not.
      const { report, invalid } = await upgradeWhileWriting({ holdMs: 3500 }, async ({ lane, db, report }) => {
        await expectSafeOutcome({ ...lane, db, report, expected: 'succeeded', label: 'lock timeout in V2.1' });
      });
      expect(report.run.applied, 'the record says V2.1 is applied').toContain('V2.1__index_order_status.sql');
      expect(invalid, 'no invalid index in production').toEqual([]);
    },
    GROUP_TIMEOUT_MS,
  );

  it(
    "a no-transaction statement cancelled half-way by its Task's deadline: the run that says it rolled back leaves production exactly as before",
    async () => {
      // The same statement without an injected fault: with 6 s per Task the step bounds its SQL to
      // about 1 s (its deadline less a margin), so the server cancels the index build while it waits
      // for the writer (held 3.5 s), after it made the index. The migrate Task fails for good, so the
      // rule says rolled-back, which promises production exactly as before: the engine took the
      // failed first statement for one that did nothing, forgot the attempt, and the rollback saw no
      // change of the run to undo.
      const { report, invalid } = await upgradeWhileWriting({ holdMs: 3500, taskTimeoutSeconds: 6 }, async ({ lane, db, report }) => {
        // The cancellation is what failed it (statement_timeout, SQLSTATE 57014), nothing injected.
        expect(report.run.error?.message, 'cancelled by its deadline').toMatch(/SQLSTATE 57014/);
        await expectSafeOutcome({ ...lane, db, report, expected: 'rolled-back', label: 'deadline in V2.1' });
      });
      expect(report.run.error?.migration).toBe('V2.1__index_order_status.sql');
      expect(invalid, 'no index of the rolled-back migration left in production').toEqual([]);
    },
    GROUP_TIMEOUT_MS,
  );

  it(
    'a migration whose Task failed while the server still runs its SQL: the rehearsal is refused, production rolled back, nothing committed',
    async () => {
      // The 2 s migration is the only one pending, so it is the first migration query of each run.
      const cases = (
        [
          [REHEARSED, 'MigrateRehearsalClone'],
          [IN_PLACE, 'MigrateProduction'],
          [SWAP, 'MigrateNewClone'],
        ] as const
      ).map(([shape, state]): Case => ({
        shape,
        at: { method: MIGRATION_QUERY, call: 1, state, applies: 'commit' },
        mode: 'still-running',
        slow: true,
        expected: expectedStatus(state, 'succeeded'),
      }));
      await eachCase(cases, runCase, lanes.length);
    },
    GROUP_TIMEOUT_MS,
  );

  it(
    'each mutating call of the rollback paths failing before and after it is made, once',
    async () => {
      const covered = new Set<string>();
      const cases: Case[] = [];
      for (const { shape, primary } of primaries()) {
        const rollback = await probeOf(shape, primary);
        for (const at of sampled(rollback, covered)) {
          for (const mode of MODES) cases.push({ shape, at, mode, primary, expected: expectedStatus(at.state, 'rolled-back') });
        }
        for (const c of rollback) covered.add(pairOf(c));
      }
      expect(cases.map((c) => c.at.state)).toEqual(expect.arrayContaining(['StartRestoreSnapshot', 'SwapRestoredIn', 'SwapBack', 'ResumeAfterRollback']));
      await eachCase(cases, runCase, lanes.length);
    },
    GROUP_TIMEOUT_MS,
  );

  it(
    'a rollback whose swap keeps failing through every retry needs an operator, and says where things stand',
    async () => {
      const cases: Case[] = [];
      for (const { shape, primary } of primaries()) {
        // The swap that brings production back: the restored database's (in place), or the old production's (swap).
        const at = defined(
          (await probeOf(shape, primary)).find((c) => c.method === 'Fleet.swap'),
          `the rollback's swap (${shape.strategy})`,
        );
        cases.push({ shape, primary, at, mode: 'before', keepsFailing: true, expected: expectedStatus(at.state, 'rolled-back', true) });
      }
      expect(cases.map((c) => c.at.state)).toEqual(['SwapRestoredIn', 'SwapBack']);
      await eachCase(cases, runCase, lanes.length);
    },
    GROUP_TIMEOUT_MS,
  );
});
