import path from 'node:path';
import type { Contender } from './apply/contender.ts';
import { limitContender } from './apply/limit.ts';
import { nodePgMigrateContender } from './apply/node-pg-migrate.ts';
import { postgratorContender } from './apply/postgrator.ts';
import { safeshiftContender } from './apply/safeshift.ts';
import { verifyApplied } from './apply/verify.ts';
import { defined } from './defined.ts';
import { writeMigrations, type MigrationLayout } from './fixtures.ts';
import { median } from './stats.ts';
import { formatTable, ms } from './table.ts';
import { timed } from './timing.ts';
import type { BenchContext, BenchReport, Benchmark, Goal } from './types.ts';

/** safeshift may cost this much more than the raw limit (checks, lock, history) and still meet its goal. */
const LIMIT_RATIO_GOAL = 1.3;
/** Migrations in the untimed warm-up run of each contender. */
const WARM_UP_COUNT = 5;

interface Outcome {
  readonly contender: Contender;
  /** Wall-clock ms of each round. */
  readonly times: number[];
  /** CPU ms this process spent in each round (the client side of the work). */
  readonly cpu: number[];
  readonly failure?: string;
}

/**
 * Applies 1,000 generated migrations (table, rows, index) to an empty database with the raw limit,
 * safeshift, node-pg-migrate and postgrator, each on its own fresh database on the same server,
 * in interleaved rounds, and reports each median as a ratio of the limit.
 */
export const apply1000: Benchmark = {
  name: 'apply-1000',
  keywords: ['apply', 'migrate'],
  description: 'apply 1,000 migrations to an empty database: safeshift vs the raw limit, node-pg-migrate and postgrator',
  async run(ctx) {
    const count = ctx.quick ? 20 : 1000;
    // Five rounds: the server's commits wait on the disk, and a shared machine's disk is noisy.
    const rounds = ctx.quick ? 1 : 5;
    const contenders = [limitContender(), safeshiftContender(), nodePgMigrateContender(), postgratorContender()];
    const dirs = await generate(ctx, count, 'apply');
    const warmDirs = await generate(ctx, WARM_UP_COUNT, 'warm-up');

    // One small untimed run each: every contender starts the timed rounds with its modules loaded
    // and its code warm (safeshift's parser is WebAssembly, node-pg-migrate loads lazily), so the
    // rounds compare steady work, not start-up.
    const outcomes = new Map<Contender, Outcome>(contenders.map((c) => [c, { contender: c, times: [], cpu: [] }]));
    for (const c of contenders) {
      try {
        await runOnce(ctx, c, defined(warmDirs.get(c.layout), `warm-up migrations for the ${c.layout} layout`), WARM_UP_COUNT, `warm_${slug(c.name)}`);
      } catch (error) {
        // Reported in the table like a failed round: the other contenders still get measured.
        outcomes.set(c, { contender: c, times: [], cpu: [], failure: `warm-up: ${firstLine(error)}` });
        ctx.progress(`apply-1000: warm-up: ${c.name} FAILED: ${(error as Error).message}`);
      }
    }
    ctx.progress(`apply-1000: warm-up done (${WARM_UP_COUNT} migrations each, untimed)`);

    for (let round = 0; round < rounds; round++) {
      // Rotating the order each round spreads any drift (checkpoints, dropped databases being
      // cleaned up, a warming cache) over every contender instead of always hitting the same one.
      const shift = round % contenders.length;
      const order = [...contenders.slice(shift), ...contenders.slice(0, shift)];
      for (const c of order) {
        const outcome = defined(outcomes.get(c), `outcome for ${c.name}`);
        if (outcome.failure) continue;
        try {
          const took = await runOnce(ctx, c, defined(dirs.get(c.layout), `migrations for the ${c.layout} layout`), count, `apply_${slug(c.name)}_${round}`);
          outcome.times.push(took.ms);
          outcome.cpu.push(took.cpuMs);
          ctx.progress(`apply-1000: round ${round + 1}/${rounds}: ${c.name}: ${ms(took.ms)} ms (client CPU ${ms(took.cpuMs)} ms)`);
        } catch (error) {
          outcomes.set(c, { ...outcome, failure: firstLine(error) });
          ctx.progress(`apply-1000: round ${round + 1}/${rounds}: ${c.name} FAILED: ${(error as Error).message}`);
        }
      }
    }
    return report(ctx, [...outcomes.values()], count, rounds);
  },
};

/** Writes the generated migrations once per layout. */
async function generate(ctx: BenchContext, count: number, label: string): Promise<Map<MigrationLayout, string>> {
  const layouts: MigrationLayout[] = ['safeshift', 'node-pg-migrate', 'postgrator'];
  const dirs = new Map<MigrationLayout, string>();
  for (const layout of layouts) {
    dirs.set(layout, await writeMigrations(path.join(ctx.workDir, `${label}-${count}`, layout), layout, count));
  }
  return dirs;
}

/**
 * One timed application on a fresh database: created and connected before the clock starts,
 * verified after it stops (a run that did not apply everything throws instead of counting).
 */
async function runOnce(ctx: BenchContext, c: Contender, dir: string, count: number, db: string): Promise<{ ms: number; cpuMs: number }> {
  const url = await ctx.createDatabase(`bench_${db}`);
  const client = await ctx.connect(url);
  try {
    await c.prepare?.(dir);
    await ctx.settle();
    const took = await timed(() => c.apply(client, dir));
    await verifyApplied(client, count);
    return took;
  } finally {
    await client.end();
    await ctx.dropDatabase(`bench_${db}`);
  }
}

async function report(ctx: BenchContext, outcomes: readonly Outcome[], count: number, rounds: number): Promise<BenchReport> {
  const limit = defined(outcomes[0], 'outcome for the limit');
  const limitMs = limit.failure ? Number.NaN : median(limit.times);
  const rows = outcomes.map((o) => {
    if (o.failure) return [o.contender.name, 'FAILED', '-', '-', '-', o.failure];
    const m = median(o.times);
    return [o.contender.name, ms(m), (m / count).toFixed(2), `${(m / limitMs).toFixed(2)}x`, ms(median(o.cpu)), o.times.map(ms).join(' / ')];
  });
  const lines = formatTable(['contender', 'median ms', 'per migration ms', 'vs limit', 'client CPU ms', 'rounds (ms)'], rows);
  lines.push(
    '',
    `${count.toLocaleString('en-US')} migrations, each: create table + insert 3 rows + create index; median of ${rounds} round(s), ` +
      `order rotated each round, CHECKPOINT before each; every run verified (${count} tables, ${count} indexes) before its time counted`,
  );
  lines.push(`server: ${await serverSettings(ctx)}`);
  for (const o of outcomes) lines.push(`  ${o.contender.name}: ${o.contender.how}`);
  return { title: `apply ${count.toLocaleString('en-US')} migrations to an empty database`, lines, goals: goals(outcomes, limitMs) };
}

function goals(outcomes: readonly Outcome[], limitMs: number): Goal[] {
  const [, safeshift, ...peers] = outcomes;
  const ours = safeshift && !safeshift.failure ? median(safeshift.times) : Number.NaN;
  const ratio = ours / limitMs;
  const peerFigures = peers.map((p) => ({ name: p.contender.name, ms: p.failure ? Number.NaN : median(p.times) }));
  // A peer that failed cannot be beaten on time; the goal is then not met rather than quietly met.
  const fasterThanPeers = peerFigures.every((p) => Number.isFinite(p.ms) && ours < p.ms);
  return [
    {
      description: `safeshift within ${LIMIT_RATIO_GOAL}x of the limit`,
      met: Number.isFinite(ratio) && ratio <= LIMIT_RATIO_GOAL,
      detail: Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : 'no figure',
    },
    {
      description: 'safeshift faster than both peers',
      met: Number.isFinite(ours) && fasterThanPeers,
      detail: peerFigures
        .map((p) => `${p.name} ${Number.isFinite(p.ms) ? `${ms(p.ms)} ms (safeshift takes ${(ours / p.ms).toFixed(2)}x its time)` : 'no figure'}`)
        .join(', '),
    },
  ];
}

/** The settings that decide what a commit costs, so a reader can tell how the figures were made. */
async function serverSettings(ctx: BenchContext): Promise<string> {
  const client = await ctx.connect(ctx.serverUrl);
  try {
    const { rows } = await client.query<{ version: string; fsync: string; synchronous_commit: string; shared_buffers: string }>(
      `select current_setting('server_version') as version, current_setting('fsync') as fsync,
              current_setting('synchronous_commit') as synchronous_commit, current_setting('shared_buffers') as shared_buffers`,
    );
    const s = rows[0];
    return s
      ? `PostgreSQL ${s.version}, fsync=${s.fsync}, synchronous_commit=${s.synchronous_commit}, ` +
          `shared_buffers=${s.shared_buffers} (server defaults, same for all)`
      : 'unknown';
  } finally {
    await client.end();
  }
}

function slug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_|_$/g, '');
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}
