import path from 'node:path';
import type { StepInvoker } from '../src/adapters/local/local-runner.ts';
import type { WorkflowReport } from '../src/adapters/local/local-workflows.ts';
import type { Fleet, ResourceStatus, TimelineEntry } from '../src/ports.ts';
import { escapeIdentifier } from '../src/core/identifiers.ts';
import { runStep } from '../src/steps/registry.ts';
import { defined } from './defined.ts';
import { writeMigrations } from './fixtures.ts';
import { median } from './stats.ts';
import { formatTable, ms } from './table.ts';
import type { BenchContext, BenchReport, Benchmark, Goal } from './types.ts';
import { dropLedger, runUpgrade, type Instrument } from './workflow/common.ts';
import { between } from './workflow/profile.ts';

/** The upgrade sizes, in migrations. */
const COUNTS = [1, 10, 100] as const;
/** The migrations of the small-vs-large comparison. */
const SIZE_COUNT = 10;
/** Simulated snapshot and clone durations for the AWS-style poll (seconds). */
const SIMULATED_S = [0, 60, 600, 3600] as const;
const MB = 1024 * 1024;
/** Filled once; each large run upgrades a copy of it. */
const LARGE_SOURCE = 'bench_tr_large_source';

interface Counted {
  readonly label: string;
  readonly migrations: number;
  readonly rehearsal: boolean;
  readonly report: WorkflowReport;
}

/**
 * State transitions (as Step Functions counts and bills them) per local upgrade: for 1, 10 and 100
 * trivial migrations, with and without the rehearsal, each on a fresh database; then the same
 * 10-migration upgrade on a small and on a large database, where the snapshot takes longer; then, with
 * a simulated clock, how the AWS poll loop (Wait between status checks) adds transitions as a snapshot takes longer.
 */
export const transitions: Benchmark = {
  name: 'transitions',
  keywords: ['workflow', 'state machine', 'step functions', 'snapshot'],
  description: 'state transitions per upgrade for 1/10/100 migrations, rehearsal on/off, small vs large database',
  async run(ctx) {
    // 1 GB, not 200 MB: on a shared disk a 200 MB copy was not reliably slower than an empty database's
    // (whose copy is mostly fsyncing its few hundred catalog files and two checkpoints).
    const largeBytes = ctx.quick ? 20 * MB : 1024 * MB;
    const dirs = new Map<number, string>();
    for (const n of [...COUNTS, SIZE_COUNT]) {
      if (!dirs.has(n)) dirs.set(n, await writeMigrations(path.join(ctx.workDir, `transitions-${n}`), 'safeshift', n));
    }
    try {
      const byCount: Counted[] = [];
      for (const n of COUNTS) {
        for (const rehearsal of [false, true]) {
          const report = await upgradeFresh(ctx, `bench_tr_${n}_${rehearsal ? 'r' : 'n'}`, defined(dirs.get(n), `migrations for N=${n}`), rehearsal);
          byCount.push({ label: `${n}`, migrations: n, rehearsal, report });
          ctx.progress(`transitions: ${n} migration(s), rehearsal ${rehearsal ? 'on' : 'off'}: ${report.transitions} transitions`);
        }
      }
      // Interleaved rounds: a snapshot's time rides on the disk's fsync latency, which is noisy; the counts must not move at all.
      // The large database is filled once and copied for each run (untimed), so every run starts from the same files.
      ctx.progress(`transitions: filling a ${Math.round(largeBytes / MB)} MB database to copy for the large runs…`);
      const largeUrl = await ctx.createDatabase(LARGE_SOURCE);
      await fill(ctx, largeUrl, largeBytes);
      const sizeDir = defined(dirs.get(SIZE_COUNT), `migrations for N=${SIZE_COUNT}`);
      const bySize: Counted[] = [];
      const sizeRounds = ctx.quick ? 1 : 3;
      for (let round = 0; round < sizeRounds; round++) {
        for (const [label, from] of [
          ['small (empty)', undefined],
          [`large (${Math.round(largeBytes / MB)} MB)`, LARGE_SOURCE],
        ] as const) {
          for (const rehearsal of [false, true]) {
            const report = await upgradeFresh(ctx, `bench_tr_size_${from ? 'l' : 's'}_${rehearsal ? 'r' : 'n'}`, sizeDir, rehearsal, from);
            bySize.push({ label, migrations: SIZE_COUNT, rehearsal, report });
            ctx.progress(
              `transitions: round ${round + 1}/${sizeRounds}: ${SIZE_COUNT} migrations on a ${label} database, rehearsal ${rehearsal ? 'on' : 'off'}: ` +
                `${report.transitions} transitions, snapshot/clone states ${ms(fleetMs(report.timeline))} ms`,
            );
          }
        }
      }
      const simulated: { seconds: number; report: WorkflowReport }[] = [];
      for (const seconds of SIMULATED_S) {
        const report = await upgradeFresh(ctx, `bench_tr_sim_${seconds}`, sizeDir, true, undefined, simulatedPoll(seconds));
        simulated.push({ seconds, report });
        ctx.progress(`transitions: simulated ${seconds} s snapshots and clones (AWS-style polling): ${report.transitions} transitions`);
      }
      return report(byCount, bySize, simulated, largeBytes);
    } finally {
      await ctx.dropDatabase(LARGE_SOURCE);
      await dropLedger(ctx);
    }
  },
};

/** One upgrade of a fresh database (empty, or a copy of `template`) where every generated migration is pending. */
async function upgradeFresh(
  ctx: BenchContext,
  database: string,
  dir: string,
  rehearsal: boolean,
  template?: string,
  instrument?: Instrument,
): Promise<WorkflowReport> {
  if (template) {
    const admin = await ctx.connect(ctx.serverUrl);
    try {
      await admin.query(`drop database if exists ${escapeIdentifier(database)} with (force)`);
      await admin.query(`create database ${escapeIdentifier(database)} template ${escapeIdentifier(template)} strategy file_copy`);
    } finally {
      await admin.end();
    }
  } else {
    await ctx.createDatabase(database);
  }
  try {
    await ctx.settle();
    // Nothing writes to these databases, so there is nothing to quiesce: said on purpose, as a user would.
    return await runUpgrade(ctx, { database, migrationsDir: dir, input: { quiesce: [], noQuiesce: true, rehearsal }, ...(instrument ? { instrument } : {}) });
  } finally {
    await ctx.dropDatabase(database);
  }
}

/** About `bytes` of rows in one table (~72 bytes a row with its header), so copying the database takes a while. */
async function fill(ctx: BenchContext, url: string, bytes: number): Promise<void> {
  const c = await ctx.connect(url);
  try {
    await c.query(`create table filler as select g as id, md5(g::text) as note from generate_series(1, $1::int) g`, [Math.round(bytes / 72)]);
    await c.query('vacuum (freeze, analyze) filler');
  } finally {
    await c.end();
  }
}

/**
 * The local fleet is synchronous: a snapshot is done when `startSnapshot` returns, so the first status
 * check says ready and the poll loop never waits. On AWS a snapshot or restore takes minutes and the
 * loop runs Check → Ready? → Wait (growing, from the step's `waitSeconds`) until it is available.
 * This instrument keeps the real ASL and steps but makes snapshots and clones report `creating` until
 * the Wait states the machine went through add up to `seconds` (a simulated clock: Wait states are 0 s
 * locally, so it costs no real time).
 */
function simulatedPoll(seconds: number): Instrument {
  return (opened) => {
    let waited = 0;
    const real = opened.ctx.fleet;
    const pending = (status: ResourceStatus): ResourceStatus => (status === 'available' && waited < seconds ? 'creating' : status);
    const fleet: Fleet = new Proxy(real, {
      get(obj, key, receiver) {
        if (key === 'snapshotStatus') return async (id: string) => pending(await obj.snapshotStatus(id));
        if (key === 'databaseStatus') return async (id: string) => pending(await obj.databaseStatus(id));
        const value = Reflect.get(obj, key, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(obj) : value;
      },
    });
    const ports = { ctx: { ...opened.ctx, fleet }, close: () => opened.close() };
    const invoke: StepInvoker = (step, input) => {
      if (step === 'startSnapshot' || step === 'startClone') waited = 0;
      // A check after the first follows a Wait of the previous check's waitSeconds.
      if ((step === 'checkSnapshot' || step === 'checkDatabase') && input.state.poll && input.state.poll.attempt >= 1) waited += input.state.poll.waitSeconds;
      return runStep(step, input, ports.ctx);
    };
    return { ports, invoke };
  };
}

/** Time in the fleet's poll loops (Start…/Check…/…Ready states of snapshots and clones). */
function fleetMs(timeline: readonly TimelineEntry[]): number {
  return timeline
    .filter((t) => /^(Start|Check).*(Snapshot|Clone)/.test(t.state) || /(Snapshot|Clone).*Ready$/.test(t.state))
    .reduce((sum, t) => sum + between(t.enteredAt, t.exitedAt), 0);
}

/** How many status checks each poll loop made, in the order the loops ran (`5 / 5 / 5`). */
function checks(timeline: readonly TimelineEntry[]): string {
  const n = new Map<string, number>();
  for (const t of timeline) if (t.state.startsWith('Check')) n.set(t.state, (n.get(t.state) ?? 0) + 1);
  return [...n.values()].join(' / ');
}

function report(
  byCount: readonly Counted[],
  bySize: readonly Counted[],
  simulated: readonly { seconds: number; report: WorkflowReport }[],
  largeBytes: number,
): BenchReport {
  const lines: string[] = ['transitions per upgrade by number of migrations (each on a fresh empty database, every migration pending):'];
  lines.push(
    ...indent(
      formatTable(
        ['migrations', 'rehearsal', 'transitions', 'per migration', 'states run'],
        byCount.map((c) => [
          String(c.migrations),
          c.rehearsal ? 'on' : 'off',
          String(c.report.transitions),
          (c.report.transitions / c.migrations).toFixed(2),
          String(new Set(c.report.timeline.map((t) => t.state)).size),
        ]),
      ),
    ),
  );
  const marginal = (rehearsal: boolean) => {
    const first = defined(
      byCount.find((c) => c.rehearsal === rehearsal && c.migrations === COUNTS[0]),
      'run with the fewest migrations',
    );
    const last = defined(
      byCount.find((c) => c.rehearsal === rehearsal && c.migrations === COUNTS[COUNTS.length - 1]),
      'run with the most migrations',
    );
    return (last.report.transitions - first.report.transitions) / (last.migrations - first.migrations);
  };
  lines.push(
    `  each added migration costs ${marginal(false).toFixed(2)} transitions (rehearsal off) and ${marginal(true).toFixed(2)} (on): ` +
      `one migration per migrate Task invocation (the Task and its loop Choice), on production and on the rehearsal clone`,
  );
  lines.push('', `the same ${SIZE_COUNT}-migration upgrade on a small and on a large database (local fleet; times: median of the rounds):`);
  const keyOf = (c: Counted) => `${c.label}\u0000${c.rehearsal}`;
  const groups = [...new Map(bySize.map((c) => [keyOf(c), { label: c.label, rehearsal: c.rehearsal }]))].map(([key, { label, rehearsal }]) => ({
    label,
    rehearsal,
    runs: bySize.filter((c) => keyOf(c) === key),
  }));
  lines.push(
    ...indent(
      formatTable(
        ['database', 'rehearsal', 'transitions (each round)', 'snapshot/clone states ms', 'whole run ms'],
        groups.map((g) => [
          g.label,
          g.rehearsal ? 'on' : 'off',
          g.runs.map((c) => c.report.transitions).join(' / '),
          ms(median(g.runs.map((c) => fleetMs(c.report.timeline)))),
          ms(median(g.runs.map((c) => runMs(c.report.timeline)))),
        ]),
      ),
    ),
  );
  const instant = defined(simulated[0], 'simulated run with instant snapshots');
  lines.push(
    '',
    `AWS-style polling, simulated clock: the same ${SIZE_COUNT}-migration upgrade with rehearsal (rehearsal snapshot, ` +
      `its clone, pre-upgrade snapshot), each taking the given time:`,
  );
  lines.push(
    ...indent(
      formatTable(
        ['each snapshot/clone takes', 'transitions', 'extra vs instant', 'status checks (rehearsal snapshot / its clone / pre-upgrade snapshot)'],
        simulated.map((s) => [
          s.seconds === 0 ? 'instant (local)' : `${s.seconds / 60} min`,
          String(s.report.transitions),
          String(s.report.transitions - instant.report.transitions),
          checks(s.report.timeline),
        ]),
      ),
    ),
  );
  lines.push(
    "  the real ASL and steps; only the fleet's status answers `creating` until the Wait " +
      'states passed add up to the duration (Wait is 0 s locally, so no real time passes)',
    '',
    `migrations: bench/fixtures.ts (create table, insert 3 rows, create index each); no APIs quiesced; large database: ` +
      `a copy of one filled with a ${Math.round(largeBytes / MB)} MB table (VACUUM FREEZE); transitions = states entered (runWorkflow's count)`,
  );
  const sizePairs = [false, true].map((rehearsal) => bySize.filter((c) => c.rehearsal === rehearsal).map((c) => c.report.transitions));
  const sizeEqual = sizePairs.every((p) => p.every((t) => t === p[0]));
  const slower = [false, true].map((rehearsal) => {
    const [small, large] = groups.filter((g) => g.rehearsal === rehearsal).map((g) => median(g.runs.map((c) => fleetMs(c.report.timeline))));
    // A missing group reads as NaN, as a median of no rounds does.
    return `${ms(small ?? Number.NaN)} vs ${ms(large ?? Number.NaN)} ms`;
  });
  const simExtra = defined(simulated[simulated.length - 1], 'simulated run with the slowest snapshots').report.transitions - instant.report.transitions;
  const goals: Goal[] = [
    {
      description: 'transitions independent of snapshot duration (local fleet: small vs large database)',
      met: sizeEqual,
      detail:
        `rehearsal off ${[...new Set(sizePairs[0])].join(' or ')}, on ${[...new Set(sizePairs[1])].join(' or ')} ` +
        `transitions (${sizeEqual ? 'the same in every run, small and large' : 'they differ between runs'}), ` +
        `while the snapshot/clone states took ${slower[0]} (off) and ${slower[1]} (on), small vs large (median)`,
    },
    {
      description: 'transitions independent of snapshot duration (AWS poll loop, simulated clock)',
      met: simExtra === 0,
      detail:
        `${simulated.map((s) => `${s.seconds === 0 ? 'instant' : `${s.seconds / 60} min`} ${s.report.transitions}`).join(', ')}: ` +
        `each poll is Check + Ready + Wait = 3 transitions, waits grow to a 60 s cap, so long snapshots add transitions linearly`,
    },
    {
      // Not a goal of the issue: one migration per Lambda invocation (so each fits in 15 minutes)
      // costs a fixed two transitions per migration (the migrate Task and its loop Choice), per promote.
      description: 'transitions grow by a fixed amount per migration (one migration per Lambda invocation)',
      met: marginal(false) <= 2.01 && marginal(true) <= 4.01,
      detail:
        `${marginal(false).toFixed(2)} (off) / ${marginal(true).toFixed(2)} (on) transitions per added migration; ` +
        `per upgrade: ${byCount.map((c) => `${c.migrations}${c.rehearsal ? 'r' : ''}=${c.report.transitions}`).join(', ')}`,
    },
  ];
  return { title: 'state transitions per upgrade', lines, goals };
}

function runMs(timeline: readonly TimelineEntry[]): number {
  const last = timeline[timeline.length - 1];
  return between(timeline[0]?.enteredAt, last?.exitedAt ?? last?.enteredAt);
}

function indent(lines: readonly string[]): string[] {
  return lines.map((l) => `  ${l}`);
}
