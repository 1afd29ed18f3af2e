import type { SqlClient } from '../ports.ts';
import { compatibilityOf, type CompatibilityRecord } from './compat.ts';
import { discoverMigrations } from './discover.ts';
import type { Problem } from './errors.ts';
import { DEFAULT_HISTORY, HistoryTable, type HistoryLocation } from './history.ts';
import { planMigrations } from './plan.ts';

/** Where a migration stands. */
export type MigrationState = 'applied' | 'baseline' | 'failed' | 'pending' | 'missing' | 'changed' | 'out-of-order' | 'below-baseline';

/** One line of `safeshift info`. */
export interface InfoEntry {
  readonly version: string | null;
  readonly description: string;
  readonly script: string;
  readonly type: string;
  readonly phase: string;
  readonly state: MigrationState;
  readonly installedOn: string | null;
  readonly executionMs: number | null;
  readonly runId: string | null;
}

export interface InfoReport extends CompatibilityRecord {
  readonly migrations: readonly InfoEntry[];
  readonly pending: number;
  readonly problems: readonly Problem[];
}

export interface InfoOptions {
  readonly client: SqlClient;
  readonly dir: string;
  readonly history?: HistoryLocation;
}

/**
 * Lists every migration, applied and pending, with its state, and the compatibility record.
 * Reads only; it works on a database without history too.
 *
 * @example
 * ```ts
 * const report = await info({ client, dir: 'migrations' });
 * console.log(report.schemaVersion, report.compatibleFrom);
 * ```
 */
export async function info(options: InfoOptions): Promise<InfoReport> {
  const discovery = await discoverMigrations(options.dir);
  const rows = await new HistoryTable(options.client, options.history ?? DEFAULT_HISTORY).read();
  const plan = planMigrations(discovery.migrations, rows);
  const problems = [...discovery.problems, ...plan.problems];
  const flagged = new Map<string, MigrationState>();
  for (const p of problems) {
    if (!p.file) continue;
    if (p.code === 'CHECKSUM_MISMATCH') flagged.set(p.file, 'changed');
    if (p.code === 'MISSING_MIGRATION') flagged.set(p.file, 'missing');
    if (p.code === 'OUT_OF_ORDER') flagged.set(p.file, 'out-of-order');
  }
  const entries: InfoEntry[] = [];
  for (const row of rows) {
    const state: MigrationState = !row.success ? 'failed' : row.type === 'BASELINE' ? 'baseline' : (flagged.get(row.script) ?? 'applied');
    entries.push({
      version: row.version,
      description: row.description,
      script: row.script,
      type: row.type,
      phase: row.phase,
      state,
      installedOn: row.installedOn.toISOString(),
      executionMs: row.executionMs,
      runId: row.runId,
    });
  }
  const pendingFiles = [...plan.pending, ...plan.belowBaseline];
  const below = new Set(plan.belowBaseline);
  const outOfOrder = discovery.migrations.filter((f) => flagged.get(f.script) === 'out-of-order');
  for (const file of [...pendingFiles, ...outOfOrder]) {
    entries.push({
      version: file.version?.text ?? null,
      description: file.description,
      script: file.script,
      type: file.kind === 'repeatable' ? 'SQL_REPEATABLE' : file.language.toUpperCase(),
      phase: file.directives.phase,
      state: below.has(file) ? 'below-baseline' : (flagged.get(file.script) ?? 'pending'),
      installedOn: null,
      executionMs: null,
      runId: null,
    });
  }
  return { ...compatibilityOf(rows), migrations: entries, pending: plan.pending.length, problems };
}
