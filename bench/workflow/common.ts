import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StepInvoker } from '../../src/adapters/local/local-runner.ts';
import { openLocalPorts, runWorkflow, type LocalPorts, type WorkflowReport } from '../../src/adapters/local/local-workflows.ts';
import { escapeIdentifier } from '../../src/core/identifiers.ts';
import type { RunInput } from '../../src/steps/state.ts';
import type { BenchContext } from '../types.ts';
import type { WorkflowProfiler } from './profile.ts';

/** The example app's migrations (the shop is seeded at version 2, so V2.1, V3 and R are pending). */
export const EXAMPLE_MIGRATIONS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/migrations');
/** Where the local ledger lives on the server (PostgresLedger's default): created by the first run, dropped by the benchmark. */
export const LEDGER_DATABASE = 'safeshift_control';

/** What a benchmark may put between the runner and the local ports: wrapped ports, its own step invoker. */
export type Instrument = (ports: LocalPorts) => { readonly ports: LocalPorts; readonly invoke?: StepInvoker };

/** Times every step and port call of the run (see {@link WorkflowProfiler}). */
export function profiled(profiler: WorkflowProfiler): Instrument {
  return (opened) => {
    const ports = profiler.wrap(opened);
    return { ports, invoke: profiler.invoker() };
  };
}

/**
 * Runs an upgrade locally on `database` with freshly opened local ports (closed afterwards), from
 * the same ASL AWS runs. Throws when it did not succeed: a failed run's figures would describe the
 * rollback path, not the upgrade. The pre-upgrade snapshot, which safeshift keeps on purpose for
 * Restore, is deleted: the benchmark leaves nothing behind.
 */
export async function runUpgrade(
  ctx: BenchContext,
  opts: {
    readonly database: string;
    readonly migrationsDir: string;
    readonly input: Omit<RunInput, 'runId' | 'database' | 'kind'>;
    readonly instrument?: Instrument;
  },
): Promise<WorkflowReport> {
  const opened = await openLocalPorts({ serverUrl: ctx.serverUrl, database: opts.database, migrationsDir: opts.migrationsDir });
  try {
    const { ports, invoke } = opts.instrument?.(opened) ?? { ports: opened };
    const report = await runWorkflow(ports, { kind: 'upgrade', database: opts.database, ...opts.input }, invoke ? { invoke } : {});
    if (report.run.status !== 'succeeded') {
      throw new Error(`the upgrade of ${opts.database} ended ${report.run.status}: ${report.run.error?.code ?? ''} ${report.run.error?.message ?? ''}`);
    }
    if (report.run.snapshotId) await opened.ctx.fleet.deleteSnapshot(report.run.snapshotId);
    return report;
  } finally {
    await opened.close();
  }
}

/** Drops the ledger's control database the runs created on the bench's private server. */
export async function dropLedger(ctx: BenchContext): Promise<void> {
  const c = await ctx.connect(ctx.serverUrl);
  try {
    await c.query(`drop database if exists ${escapeIdentifier(LEDGER_DATABASE)} with (force)`);
  } finally {
    await c.end();
  }
}
