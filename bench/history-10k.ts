import path from 'node:path';
import type pg from 'pg';
import { info } from '../src/core/info.ts';
import { validate } from '../src/core/validate.ts';
import { defined } from './defined.ts';
import { writeMigrations } from './fixtures.ts';
import { seedHistory } from './history/seed.ts';
import { median } from './stats.ts';
import { formatTable, ms } from './table.ts';
import { timed } from './timing.ts';
import type { BenchContext, BenchReport, Benchmark, Goal } from './types.ts';

/** How much worse than linear the growth may be before it is called out (noise, GC, cache effects). */
const LINEAR_SLACK = 1.5;

interface Sample {
  readonly n: number;
  readonly validateMs: number;
  readonly infoMs: number;
}

/**
 * `validate` and `info` against a history of N applied migrations (N = 1,000, 5,000, 10,000), to show
 * the read-only commands grow linearly with the history: each reads the folder, checksums every file,
 * reads every history row and matches them.
 */
export const history10k: Benchmark = {
  name: 'history-10k',
  keywords: ['history', 'validate', 'info'],
  description: 'validate and info against a history of 1,000 / 5,000 / 10,000 applied migrations',
  async run(ctx) {
    const sizes = ctx.quick ? [50, 100, 200] : [1000, 5000, 10_000];
    const rounds = ctx.quick ? 1 : 3;
    const samples: Sample[] = [];
    for (const n of sizes) samples.push(await measure(ctx, n, rounds));
    return report(samples, rounds);
  },
};

async function measure(ctx: BenchContext, n: number, rounds: number): Promise<Sample> {
  const dir = await writeMigrations(path.join(ctx.workDir, `history-${n}`), 'safeshift', n);
  const db = `bench_history_${n}`;
  const url = await ctx.createDatabase(db);
  const client = await ctx.connect(url);
  try {
    const seeded = await timed(() => seedHistory(client, dir));
    ctx.progress(`history-10k: N=${n}: history of ${seeded.value} rows seeded in ${ms(seeded.ms)} ms`);
    // One untimed call of each first, so the figures are not about module loading and JIT warm-up.
    await check(ctx, n, client, dir);
    await ctx.settle();
    const validateMs: number[] = [];
    const infoMs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      validateMs.push((await timed(() => validate({ client, dir }))).ms);
      infoMs.push((await timed(() => info({ client, dir }))).ms);
    }
    const sample = { n, validateMs: median(validateMs), infoMs: median(infoMs) };
    ctx.progress(`history-10k: N=${n}: validate ${ms(sample.validateMs)} ms, info ${ms(sample.infoMs)} ms`);
    return sample;
  } finally {
    await client.end();
    await ctx.dropDatabase(db);
  }
}

/** Confirms both commands see N applied migrations and nothing wrong, so the time is for real work. */
async function check(ctx: BenchContext, n: number, client: pg.Client, dir: string): Promise<void> {
  const v = await validate({ client, dir });
  if (!v.ok || v.applied !== n || v.pending !== 0) {
    throw new Error(`validate on N=${n} did not see a clean history: ok=${v.ok} applied=${v.applied} pending=${v.pending} ${v.problems[0]?.message ?? ''}`);
  }
  const i = await info({ client, dir });
  const applied = i.migrations.filter((m) => m.state === 'applied').length;
  if (applied !== n || i.problems.length > 0) {
    throw new Error(`info on N=${n} listed ${applied} applied migrations and ${i.problems.length} problems`);
  }
  ctx.progress(`history-10k: N=${n}: validate and info both see ${n} applied, 0 problems`);
}

function report(samples: readonly Sample[], rounds: number): BenchReport {
  const rows = samples.map((s) => [s.n.toLocaleString('en-US'), ms(s.validateMs), ms((s.validateMs / s.n) * 1000), ms(s.infoMs), ms((s.infoMs / s.n) * 1000)]);
  const lines = formatTable(['N applied', 'validate ms', 'validate ms/1k', 'info ms', 'info ms/1k'], rows);
  const first = defined(samples[0], 'sample of the smallest history');
  const last = defined(samples[samples.length - 1], 'sample of the largest history');
  const sizeRatio = last.n / first.n;
  const growth = (pick: (s: Sample) => number) => pick(last) / pick(first);
  const goals: Goal[] = [
    linearGoal(
      'validate',
      growth((s) => s.validateMs),
      sizeRatio,
      first.n,
      last.n,
    ),
    linearGoal(
      'info',
      growth((s) => s.infoMs),
      sizeRatio,
      first.n,
      last.n,
    ),
  ];
  lines.push('', `median of ${rounds} timed call(s) each, after one untimed call; the folder holds exactly the N applied files`);
  return { title: 'validate / info against a long history', lines, goals };
}

function linearGoal(command: string, growth: number, sizeRatio: number, from: number, to: number): Goal {
  return {
    description: `${command} grows linearly (time(${to.toLocaleString('en-US')}) / time(${from.toLocaleString('en-US')}) ≤ ${LINEAR_SLACK} × ${sizeRatio})`,
    met: growth <= sizeRatio * LINEAR_SLACK,
    detail: `${growth.toFixed(2)}x for ${sizeRatio}x the rows`,
  };
}
