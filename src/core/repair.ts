import type { SqlClient } from '../ports.ts';
import { acquireMigrationLock } from './advisory-lock.ts';
import { discoverMigrations, type MigrationFile } from './discover.ts';
import { DEFAULT_HISTORY, HistoryTable, type HistoryLocation } from './history.ts';
import { inTransaction } from './transaction.ts';
import { parseVersion, versionKey } from './version.ts';

export interface RepairOptions {
  readonly client: SqlClient;
  readonly dir: string;
  readonly history?: HistoryLocation;
  /** Report what would change and change nothing. @default false */
  readonly dryRun?: boolean;
  readonly lockWaitMs?: number;
}

export interface RepairResult {
  readonly dryRun: boolean;
  /** Failed entries removed: the operator has finished or undone their statements by hand. */
  readonly removedFailed: readonly { script: string; statementsApplied: number | null; statementsTotal: number | null }[];
  /** Applied entries whose checksum or description now follows the file on disk. */
  readonly realigned: readonly { script: string; from: string | null; to: string }[];
  /** Applied entries with no file: repair leaves them, the file must come back. */
  readonly stillMissing: readonly string[];
}

/**
 * After an operator has fixed the database by hand: removes failed history entries, and realigns the
 * recorded checksum and description of applied migrations with their files (for edits that do not
 * change what the migration did, such as comments). It never runs migration SQL.
 *
 * @example
 * ```ts
 * const result = await repair({ client, dir: 'migrations', dryRun: true });
 * ```
 */
export async function repair(options: RepairOptions): Promise<RepairResult> {
  const location = options.history ?? DEFAULT_HISTORY;
  const release = await acquireMigrationLock(options.client, location, options.lockWaitMs === undefined ? {} : { waitMs: options.lockWaitMs });
  try {
    const history = new HistoryTable(options.client, location);
    const rows = await history.read();
    const { migrations } = await discoverMigrations(options.dir);
    const byVersion = new Map(migrations.flatMap((f): [string, MigrationFile][] => (f.version ? [[versionKey(f.version), f]] : [])));
    const byDescription = new Map(migrations.filter((f) => !f.version).map((f) => [f.description, f]));
    const failed = rows.filter((r) => !r.success);
    const realigned: { rank: number; script: string; from: string | null; to: string; description: string }[] = [];
    const stillMissing: string[] = [];
    const lastRepeatableRank = new Map<string, number>();
    for (const r of rows) if (r.success && r.version === null) lastRepeatableRank.set(r.description, r.installedRank);
    for (const r of rows) {
      if (!r.success || r.type === 'BASELINE') continue;
      if (r.version === null && lastRepeatableRank.get(r.description) !== r.installedRank) continue;
      const version = r.version === null ? undefined : parseVersion(r.version);
      const file = version ? byVersion.get(versionKey(version)) : byDescription.get(r.description);
      if (!file) {
        if (version) stillMissing.push(r.script);
        continue;
      }
      if (r.checksum !== file.checksum || r.description !== file.description) {
        realigned.push({ rank: r.installedRank, script: r.script, from: r.checksum, to: file.checksum, description: file.description });
      }
    }
    if (!options.dryRun && (failed.length > 0 || realigned.length > 0)) {
      await inTransaction(options.client, async () => {
        await history.deleteFailed();
        for (const r of realigned) await history.realign(r.rank, r.to, r.description);
      });
    }
    return {
      dryRun: !!options.dryRun,
      removedFailed: failed.map((r) => ({ script: r.script, statementsApplied: r.statementsApplied, statementsTotal: r.statementsTotal })),
      realigned: realigned.map(({ script, from, to }) => ({ script, from, to })),
      stillMissing,
    };
  } finally {
    await release().catch(() => undefined);
  }
}
