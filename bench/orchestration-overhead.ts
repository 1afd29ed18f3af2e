import { randomBytes } from 'node:crypto';
import type { WorkflowReport } from '../src/adapters/local/local-workflows.ts';
import { withDatabase } from '../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../src/core/identifiers.ts';
import type { TimelineEntry } from '../src/ports.ts';
import { seedShop } from '../examples/seed/seed-shop.ts';
import { defined } from './defined.ts';
import { median } from './stats.ts';
import { formatTable, ms } from './table.ts';
import type { BenchContext, BenchReport, Benchmark, Goal } from './types.ts';
import { dropLedger, EXAMPLE_MIGRATIONS, profiled, runUpgrade } from './workflow/common.ts';
import { between, entry, stateMs, WorkflowProfiler, type StateProfile, type Tally } from './workflow/profile.ts';

/** The orchestration may add this much to the quiesced window (median, local) and meet its goal. */
const OVERHEAD_GOAL_MS = 300;
const TEMPLATE = 'bench_oo_shop_template';
const APP_ROLE = 'bench_oo_app';
/** The quiesced window opens when this state is entered and closes when that one is left. */
const WINDOW_FROM = 'Quiesce';
const WINDOW_TO = 'Resume';
/** The pre-upgrade snapshot: from starting it to seeing it ready. */
const SNAPSHOT_FROM = 'StartPreUpgradeSnapshot';
const SNAPSHOT_TO = 'PreUpgradeSnapshotReady';
const MIGRATION_STATE = 'MigrateProduction';
/** Port categories shown as columns, in this order. */
const PORTS = ['ledger', 'fleet', 'sessions', 'connector', 'quiescer'] as const;

/** One upgrade: its report, where its time went, and the two raw yardsticks measured beside it. */
interface Sample {
  readonly report: WorkflowReport;
  readonly states: Map<string, StateProfile>;
  readonly windowMs: number;
  readonly snapshotMs: number;
  readonly migrationMs: number;
  readonly overheadMs: number;
  /** The migrations' own time as the history records it (execution_ms of this run's rows). */
  readonly migrationSqlMs: number;
  /** A bare `CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY` of the same database, just after the run. */
  readonly rawCopyMs: number;
  /** Time between one state's exit and the next one's entry inside the window (the runtime's own). */
  readonly gapsMs: number;
}

/**
 * The real local upgrade (no rehearsal, in place, one db-role API quiesced) of the seeded example
 * shop, several times on fresh copies; reports how long the APIs stay quiesced and how much of that
 * is neither the pre-upgrade snapshot nor the migrations, and where that overhead goes.
 */
export const orchestrationOverhead: Benchmark = {
  name: 'orchestration-overhead',
  keywords: ['upgrade', 'workflow', 'quiesce', 'overhead', 'window'],
  description: 'quiesced window of a real local upgrade, split into snapshot, migration and orchestration overhead',
  async run(ctx) {
    const orders = ctx.quick ? 2_000 : 20_000;
    const rounds = ctx.quick ? 2 : 7;
    const password = randomBytes(12).toString('hex');
    ctx.progress(`orchestration-overhead: seeding the example shop (${orders.toLocaleString('en-US')} orders, at version 2)…`);
    await seedShop({
      serverUrl: ctx.serverUrl,
      database: TEMPLATE,
      appRole: APP_ROLE,
      appPassword: password,
      migrationsDir: EXAMPLE_MIGRATIONS,
      customers: 1000,
      orders,
    });
    const profiler = new WorkflowProfiler();
    profiler.install();
    try {
      // The first run in a process loads the state machine runtime, the SQL parser (WebAssembly) and
      // the TypeScript migration: reported apart, as what a one-off `safeshift upgrade` pays.
      const cold = await once(ctx, profiler, 'cold');
      ctx.progress(`orchestration-overhead: first run (cold): window ${ms(cold.windowMs)} ms, overhead ${ms(cold.overheadMs)} ms`);
      const samples: Sample[] = [];
      for (let r = 0; r < rounds; r++) {
        const s = await once(ctx, profiler, String(r));
        samples.push(s);
        ctx.progress(
          `orchestration-overhead: round ${r + 1}/${rounds}: window ${ms(s.windowMs)} ms = snapshot ` +
            `${ms(s.snapshotMs)} + migration ${ms(s.migrationMs)} + overhead ${ms(s.overheadMs)}`,
        );
      }
      return report(samples, cold, orders);
    } finally {
      profiler.uninstall();
      await cleanup(ctx);
    }
  },
};

/** One upgrade on a fresh copy of the seeded shop, profiled, then the copy dropped. */
async function once(ctx: BenchContext, profiler: WorkflowProfiler, label: string): Promise<Sample> {
  const database = `bench_oo_shop_${label}`;
  const admin = await ctx.connect(ctx.serverUrl);
  try {
    await admin.query(`drop database if exists ${escapeIdentifier(database)} with (force)`);
    await admin.query(`create database ${escapeIdentifier(database)} template ${escapeIdentifier(TEMPLATE)}`);
    // A database's ACL is not copied from its template: the app gets CONNECT as the seed gave it.
    await admin.query(`grant connect on database ${escapeIdentifier(database)} to ${escapeIdentifier(APP_ROLE)}`);
    await ctx.settle();
    profiler.reset();
    const report = await runUpgrade(ctx, {
      database,
      migrationsDir: EXAMPLE_MIGRATIONS,
      input: { quiesce: [`db-role:${APP_ROLE}`], rehearsal: false },
      instrument: profiled(profiler),
    });
    const states = new Map(profiler.states);
    const migrationSqlMs = await historyMs(ctx, database, report.run.runId);
    const rawCopyMs = await rawCopy(ctx, admin, database);
    return { report, states, migrationSqlMs, rawCopyMs, ...split(report.timeline) };
  } finally {
    await admin.query(`drop database if exists ${escapeIdentifier(database)} with (force)`).catch(() => undefined);
    await admin.end();
  }
}

/** The window and its parts, from the run's timeline. */
function split(timeline: readonly TimelineEntry[]): Pick<Sample, 'windowMs' | 'snapshotMs' | 'migrationMs' | 'overheadMs' | 'gapsMs'> {
  const windowMs = between(entry(timeline, WINDOW_FROM)?.enteredAt, entry(timeline, WINDOW_TO)?.exitedAt);
  const snapshotMs = between(entry(timeline, SNAPSHOT_FROM)?.enteredAt, entry(timeline, SNAPSHOT_TO)?.exitedAt);
  const migrationMs = stateMs(timeline, MIGRATION_STATE);
  const inside = windowStates(timeline);
  let gapsMs = 0;
  let previous: TimelineEntry | undefined;
  for (const state of inside) {
    if (previous) gapsMs += between(previous.exitedAt, state.enteredAt);
    previous = state;
  }
  return { windowMs, snapshotMs, migrationMs, overheadMs: windowMs - snapshotMs - migrationMs, gapsMs };
}

/** The timeline entries from entering Quiesce to leaving Resume. */
function windowStates(timeline: readonly TimelineEntry[]): TimelineEntry[] {
  const from = timeline.findIndex((t) => t.state === WINDOW_FROM);
  const to = timeline.findIndex((t) => t.state === WINDOW_TO);
  return from < 0 || to < 0 ? [] : timeline.slice(from, to + 1);
}

async function historyMs(ctx: BenchContext, database: string, runId: string): Promise<number> {
  const c = await ctx.connect(withDatabase(ctx.serverUrl, database));
  try {
    const { rows } = await c.query<{ ms: string | null }>('select sum(execution_ms)::text as ms from safeshift_schema_history where run_id = $1 and success', [
      runId,
    ]);
    return Number(rows[0]?.ms ?? Number.NaN);
  } finally {
    await c.end();
  }
}

/** What the snapshot costs the server alone: one bare file copy of the same (now upgraded) database. */
async function rawCopy(ctx: BenchContext, admin: Awaited<ReturnType<BenchContext['connect']>>, database: string): Promise<number> {
  const copy = `${database}_rawcopy`;
  await admin.query(`drop database if exists ${escapeIdentifier(copy)}`);
  await ctx.settle();
  const began = performance.now();
  await admin.query(`create database ${escapeIdentifier(copy)} template ${escapeIdentifier(database)} strategy file_copy`);
  const took = performance.now() - began;
  await admin.query(`drop database ${escapeIdentifier(copy)}`);
  return took;
}

async function cleanup(ctx: BenchContext): Promise<void> {
  const c = await ctx.connect(ctx.serverUrl);
  try {
    await c.query(`drop database if exists ${escapeIdentifier(TEMPLATE)} with (force)`);
    // A role that still holds rights somewhere (a copy left by a crash) cannot be dropped: said, not fatal.
    await c
      .query(`drop role if exists ${escapeIdentifier(APP_ROLE)}`)
      .catch((error: unknown) => ctx.progress(`orchestration-overhead: could not drop role ${APP_ROLE}: ${(error as Error).message}`));
  } finally {
    await c.end();
  }
  await dropLedger(ctx);
}

function report(samples: readonly Sample[], cold: Sample, orders: number): BenchReport {
  const med = (pick: (s: Sample) => number) => median(samples.map(pick));
  const row = (label: string, s: Sample) => [
    label,
    ms(s.windowMs),
    ms(s.snapshotMs),
    ms(s.migrationMs),
    ms(s.overheadMs),
    ms(s.report.quiescedWindowMs ?? Number.NaN),
    String(s.report.transitions),
  ];
  const rows = samples.map((s, i) => row(String(i + 1), s));
  rows.push([
    'median',
    ms(med((s) => s.windowMs)),
    ms(med((s) => s.snapshotMs)),
    ms(med((s) => s.migrationMs)),
    ms(med((s) => s.overheadMs)),
    ms(med((s) => s.report.quiescedWindowMs ?? Number.NaN)),
    '-',
  ]);
  rows.push(row('cold (1st)', cold));
  const lines = formatTable(['round', 'window ms', 'snapshot ms', 'migration ms', 'overhead ms', 'ledger window ms', 'transitions'], rows);
  lines.push(
    '',
    `window: entering ${WINDOW_FROM} to leaving ${WINDOW_TO} (timeline); snapshot: ${SNAPSHOT_FROM} entered to ${SNAPSHOT_TO} left; ` +
      `migration: the ${MIGRATION_STATE} state; overhead = window - snapshot - migration`,
    'ledger window: run.quiescedWindowMs, from the first API recorded quiesced to the last recorded resumed (inside the state window)',
    `each round: a fresh copy (CREATE DATABASE … TEMPLATE) of the example shop seeded at version 2 (1,000 customers, ` +
      `${orders.toLocaleString('en-US')} orders), CHECKPOINT, then`,
    `runWorkflow(kind upgrade, strategy in-place, rehearsal off, quiesce db-role:${APP_ROLE}) applying V2.1 (index concurrently), ` +
      `V3 (TypeScript backfill) and R (view), verify on; no app sessions were open`,
    'rounds run in one process after a first, cold run (reported apart: it also loads the state machine runtime, ' +
      'the WebAssembly SQL parser and the TypeScript migration)',
    '',
    'where the window goes (median per state over the rounds, ms; calls in parentheses):',
    ...breakdown(samples),
    '',
    `  the migrations' own SQL (history execution_ms, median): ${ms(med((s) => s.migrationSqlMs))} ` +
      `ms of the ${ms(med((s) => s.migrationMs))} ms ${MIGRATION_STATE} state`,
    `  a bare CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY of the same database (median): ` +
      `${ms(med((s) => s.rawCopyMs))} ms of the ${ms(med((s) => s.snapshotMs))} ms snapshot states`,
    `  between states inside the window (the state machine runtime alone, median sum): ${ms(med((s) => s.gapsMs))} ms`,
    connectionLine(samples),
    `  counting the snapshot's and the migration step's own bookkeeping as overhead too: ` +
      `window - bare copy - the migrations' SQL = ${ms(med((s) => s.windowMs - s.rawCopyMs - s.migrationSqlMs))} ms (median)`,
    '  columns: "step" is time inside the step function, "runtime" the rest of the state (aws-local-stepfunctions); pg connects/queries count every',
    '  pg.Client connect and query meanwhile, by anyone, and overlap the port columns; ' +
      '"step code" is step time outside the ports (JavaScript, file reads, parsing)',
  );
  const overhead = med((s) => s.overheadMs);
  const goals: Goal[] = [
    {
      description: `orchestration overhead under ${OVERHEAD_GOAL_MS} ms locally (median)`,
      met: overhead < OVERHEAD_GOAL_MS,
      detail:
        `${ms(overhead)} ms of a ${ms(med((s) => s.windowMs))} ms window (snapshot ${ms(med((s) => s.snapshotMs))}, ` +
        `migration ${ms(med((s) => s.migrationMs))}); cold first run ${ms(cold.overheadMs)} ms`,
    },
  ];
  return { title: 'orchestration overhead of a local upgrade: the quiesced window, split', lines, goals };
}

/** One row per state inside the window: its time, and where that time went; then the window's totals. */
function breakdown(samples: readonly Sample[]): string[] {
  const order = windowStates(defined(samples[0], 'first round').report.timeline).map((t) => t.state);
  interface Figures {
    total: number;
    step: number;
    connects: Tally;
    queries: Tally;
    ports: Map<string, Tally>;
    profiled: boolean;
  }
  const figures = (s: Sample, state: string): Figures => {
    const p = s.states.get(state);
    return {
      total: stateMs(s.report.timeline, state),
      step: p?.step.ms ?? 0,
      connects: p?.connects ?? NONE,
      queries: p?.queries ?? NONE,
      ports: p?.ports ?? new Map<string, Tally>(),
      profiled: !!p,
    };
  };
  // The window's totals: each round's states summed, then the median over rounds.
  const summed = (s: Sample): Figures => {
    const all = order.map((state) => figures(s, state));
    const add = (pick: (f: Figures) => Tally): Tally => ({ ms: all.reduce((n, f) => n + pick(f).ms, 0), calls: all.reduce((n, f) => n + pick(f).calls, 0) });
    return {
      total: all.reduce((n, f) => n + f.total, 0),
      step: all.reduce((n, f) => n + f.step, 0),
      connects: add((f) => f.connects),
      queries: add((f) => f.queries),
      ports: new Map(PORTS.map((name) => [name, add((f) => f.ports.get(name) ?? NONE)])),
      profiled: true,
    };
  };
  const row = (label: string, per: readonly Figures[]): string[] => {
    const m = (pick: (f: Figures) => number) => median(per.map(pick));
    const cell = (pick: (f: Figures) => Tally | undefined) => {
      const calls = m((f) => pick(f)?.calls ?? 0);
      return calls > 0 ? `${ms(m((f) => pick(f)?.ms ?? 0))} (${calls})` : '-';
    };
    const profiled = per.some((f) => f.profiled);
    const portsMs = (f: Figures) => PORTS.reduce((n, name) => n + (f.ports.get(name)?.ms ?? 0), 0);
    return [
      label,
      ms(m((f) => f.total)),
      profiled ? ms(m((f) => f.step)) : '-',
      // Timeline times have 1 ms resolution, the step's are finer: a few tenths below zero are rounding.
      ms(
        Math.max(
          0,
          m((f) => f.total - f.step),
        ),
      ),
      cell((f) => f.connects),
      cell((f) => f.queries),
      ...PORTS.map((name) => cell((f) => f.ports.get(name))),
      profiled
        ? ms(
            Math.max(
              0,
              m((f) => f.step - portsMs(f)),
            ),
          )
        : '-',
    ];
  };
  const rows = order.map((state) =>
    row(
      state,
      samples.map((s) => figures(s, state)),
    ),
  );
  rows.push(row('window (sum)', samples.map(summed)));
  return formatTable(['state', 'total', 'step', 'runtime', 'pg connects', 'pg queries', ...PORTS, 'step code'], rows).map((l) => `  ${l}`);
}

const NONE: Tally = { ms: 0, calls: 0 };

/** How many connections the window opened and what they cost, in the overhead states and in all. */
function connectionLine(samples: readonly Sample[]): string {
  const inner = new Set([MIGRATION_STATE]);
  const per = samples.map((s) => {
    const inside = windowStates(s.report.timeline).map((t) => t.state);
    const from = inside.indexOf(SNAPSHOT_FROM);
    const to = inside.indexOf(SNAPSHOT_TO);
    for (const state of inside.slice(from, to + 1)) inner.add(state);
    const tally = (states: readonly string[]) => ({
      n: states.reduce((n, st) => n + (s.states.get(st)?.connects.calls ?? 0), 0),
      ms: states.reduce((n, st) => n + (s.states.get(st)?.connects.ms ?? 0), 0),
    });
    return { all: tally(inside), overhead: tally(inside.filter((st) => !inner.has(st))) };
  });
  const n = median(per.map((p) => p.all.n));
  const total = median(per.map((p) => p.all.ms));
  return (
    `  connections opened inside the window (median): ${n}, ${ms(total)} ms (${ms(total / n)} ms each: TCP + scram-sha-256); ` +
    `${median(per.map((p) => p.overhead.n))} of them, ${ms(median(per.map((p) => p.overhead.ms)))} ms, ` +
    `in the overhead states (the rest inside the snapshot and migration states)`
  );
}
