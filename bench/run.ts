import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { apply1000 } from './apply-1000.ts';
import { history10k } from './history-10k.ts';
import { lambdaBundles } from './lambda-bundles.ts';
import { orchestrationOverhead } from './orchestration-overhead.ts';
import { snapshotClone1gb } from './snapshot-clone-1gb.ts';
import { startBenchServer } from './server.ts';
import { transitions } from './transitions.ts';
import type { BenchReport, Benchmark } from './types.ts';

/** Every benchmark, in the order they run. A new one is a file exporting a `Benchmark`, added here. */
const BENCHMARKS: readonly Benchmark[] = [apply1000, history10k, snapshotClone1gb, orchestrationOverhead, transitions, lambdaBundles];

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/**
 * `npm run bench [-- <filter>…] [--quick]`: runs the benchmarks whose name or keywords contain a filter
 * (all when none is given) on one private embedded PostgreSQL, and prints each report on stdout.
 * `--quick` runs tiny sizes: a smoke test of the benchmark code, its figures mean nothing.
 */
async function main(argv: readonly string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const unknown = argv.filter((a) => a.startsWith('-') && a !== '--quick');
  if (unknown.length > 0 || argv.includes('--help')) {
    progress(`usage: npm run bench -- [filter…] [--quick]\nbenchmarks: ${BENCHMARKS.map((b) => `${b.name} (${b.keywords.join(', ')})`).join('; ')}`);
    return unknown.length > 0 ? 2 : 0;
  }
  const filters = argv.filter((a) => !a.startsWith('-')).map((f) => f.toLowerCase());
  const selected = BENCHMARKS.filter((b) => filters.length === 0 || filters.some((f) => [b.name, ...b.keywords].some((k) => k.includes(f))));
  if (selected.length === 0) {
    progress(`no benchmark matches ${filters.join(', ')}; there are: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
    return 2;
  }

  const workDir = await mkdtemp(path.join(os.tmpdir(), 'safeshift-bench-files-'));
  const server = await startBenchServer(progress);
  let failed = false;
  try {
    for (const bench of selected) {
      progress(`${bench.name}: ${bench.description}${quick ? ' (quick: smoke size)' : ''}`);
      try {
        print(
          await bench.run({
            serverUrl: server.url,
            quick,
            workDir,
            progress,
            createDatabase: server.createDatabase,
            dropDatabase: server.dropDatabase,
            connect: server.connect,
            settle: server.settle,
          }),
          quick,
        );
      } catch (error) {
        failed = true;
        progress(`${bench.name} FAILED: ${(error as Error).stack ?? String(error)}`);
      }
    }
  } finally {
    await server.stop();
    await rm(workDir, { recursive: true, force: true });
  }
  // Goals not met are findings, not failures; only a benchmark that could not run fails the command.
  return failed ? 1 : 0;
}

function print(report: BenchReport, quick: boolean): void {
  const out = [`\n== ${report.title}${quick ? ' (--quick: smoke size, figures not meaningful)' : ''} ==`, ...report.lines];
  if (report.goals.length > 0) {
    out.push('', 'goals:');
    for (const g of report.goals) out.push(`  [${g.met ? 'met' : 'NOT MET'}] ${g.description}: ${g.detail}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

process.exitCode = await main(process.argv.slice(2));
