import { randomUUID } from 'node:crypto';
import type { SqlClient } from '../ports.ts';
import { acquireMigrationLock } from './advisory-lock.ts';
import { discoverMigrations, type MigrationFile } from './discover.ts';
import { SafeshiftError, ValidationError, type Problem } from './errors.ts';
import { flywayChecksum } from './flyway-checksum.ts';
import { DEFAULT_HISTORY, HistoryTable, type HistoryLocation, type NewHistoryRow } from './history.ts';
import { escapeIdentifier } from './identifiers.ts';
import { inTransaction } from './transaction.ts';
import { compareVersions, parseVersion, versionKey, type Version } from './version.ts';

export interface BaselineOptions {
  readonly client: SqlClient;
  readonly history?: HistoryLocation;
  /** Mark the database as being at this version: files up to it are never run. */
  readonly version?: Version;
  /** Adopt an existing Flyway history instead (`flyway_schema_history` in `flywayTable`'s schema). */
  readonly fromFlyway?: { readonly dir: string; readonly schema?: string; readonly table?: string };
  readonly description?: string;
  readonly lockWaitMs?: number;
  readonly runId?: string;
}

export interface BaselineResult {
  readonly runId: string;
  /** The rows written to the history. */
  readonly recorded: readonly { version: string | null; script: string; type: string }[];
  readonly schemaVersion: string | null;
}

/**
 * Starts safeshift's history on a database that existed before it: either a single baseline row at
 * `version`, or the applied migrations of an existing Flyway history, each checked against its file.
 * Refuses (ALREADY_BASELINED) when the history already has rows, and changes nothing on any refusal.
 *
 * @example
 * ```ts
 * await baseline({ client, version: requireVersion('12', '--version') });
 * await baseline({ client, fromFlyway: { dir: 'db/migration' } });
 * ```
 */
export async function baseline(options: BaselineOptions): Promise<BaselineResult> {
  const source = sourceOf(options);
  const location = options.history ?? DEFAULT_HISTORY;
  const runId = options.runId ?? randomUUID();
  const release = await acquireMigrationLock(options.client, location, options.lockWaitMs === undefined ? {} : { waitMs: options.lockWaitMs });
  try {
    const history = new HistoryTable(options.client, location);
    const existing = await history.read();
    if (existing.length > 0) {
      throw new SafeshiftError(
        'ALREADY_BASELINED',
        `${history.qualifiedName} already holds ${existing.length} rows; baseline is only for a database safeshift has not migrated yet`,
      );
    }
    const rows =
      'version' in source
        ? [baselineRow(source.version, options.description ?? '<< baseline >>', runId)]
        : await rowsFromFlyway(options.client, source.fromFlyway, runId);
    await inTransaction(options.client, async () => {
      await history.ensure();
      for (const row of rows) await history.insert(row);
    });
    const versions = rows.flatMap((r) => {
      const version = r.version === null ? undefined : parseVersion(r.version);
      return version ? [version] : [];
    });
    versions.sort(compareVersions);
    return { runId, recorded: rows.map((r) => ({ version: r.version, script: r.script, type: r.type })), schemaVersion: versions.at(-1)?.text ?? null };
  } finally {
    await release().catch(() => undefined);
  }
}

/** What the baseline starts from: exactly one of a version and a Flyway history. */
function sourceOf(options: BaselineOptions): { readonly version: Version } | { readonly fromFlyway: NonNullable<BaselineOptions['fromFlyway']> } {
  if (options.version && !options.fromFlyway) return { version: options.version };
  if (options.fromFlyway && !options.version) return { fromFlyway: options.fromFlyway };
  throw new SafeshiftError('BAD_OPTION', 'baseline needs exactly one of --version N or --from-flyway');
}

function baselineRow(version: Version, description: string, runId: string): NewHistoryRow {
  return {
    version: version.text,
    description,
    type: 'BASELINE',
    script: description,
    checksum: null,
    executionMs: 0,
    success: true,
    runId,
    phase: 'expand',
    statementsApplied: null,
    statementsTotal: null,
  };
}

interface FlywayRow {
  version: string | null;
  description: string;
  type: string;
  script: string;
  checksum: number | null;
  success: boolean;
  execution_time: number | null;
}

async function rowsFromFlyway(client: SqlClient, from: NonNullable<BaselineOptions['fromFlyway']>, runId: string): Promise<NewHistoryRow[]> {
  const schema = from.schema ?? 'public';
  const table = from.table ?? 'flyway_schema_history';
  const { rows: found } = await client.query<{ found: boolean }>(
    'select exists (select 1 from pg_catalog.pg_tables where schemaname = $1 and tablename = $2) as found',
    [schema, table],
  );
  if (!found[0]?.found) {
    throw new SafeshiftError(
      'FLYWAY_HISTORY_NOT_FOUND',
      `no Flyway history table ${schema}.${table} in this database; pass --flyway-schema/--flyway-table if it lives elsewhere`,
    );
  }
  const { rows } = await client.query<FlywayRow>(
    `select version, description, type, script, checksum, success, execution_time
       from ${escapeIdentifier(schema)}.${escapeIdentifier(table)} order by installed_rank`,
  );
  const discovery = await discoverMigrations(from.dir);
  const byVersion = new Map(discovery.migrations.flatMap((f): [string, MigrationFile][] => (f.version ? [[versionKey(f.version), f]] : [])));
  const byDescription = new Map(discovery.migrations.filter((f) => !f.version).map((f) => [f.description, f]));
  const problems: Problem[] = [];
  const out: NewHistoryRow[] = [];
  // A repeatable re-run by Flyway has a row per run; only its last one says what is applied now.
  const lastRepeatable = new Map<string, FlywayRow>();
  for (const r of rows) if (r.version === null && r.success) lastRepeatable.set(r.description, r);
  for (const r of rows) {
    if (r.type === 'SCHEMA' || r.type === 'DELETE') continue;
    if (r.version === null && r.success && lastRepeatable.get(r.description) !== r) continue;
    if (!r.success) {
      problems.push({
        code: 'REPAIR_NEEDED',
        file: r.script,
        message: `Flyway recorded ${r.script} as failed; fix it with Flyway (flyway repair) before adopting the history`,
      });
      continue;
    }
    const version = r.version === null ? undefined : parseVersion(r.version);
    if (r.type === 'BASELINE' || r.type === 'JDBC_BASELINE' || r.type === 'SQL_BASELINE') {
      if (version) out.push(baselineRow(version, r.description, runId));
      continue;
    }
    const file = version ? byVersion.get(versionKey(version)) : byDescription.get(r.description);
    if (!file) {
      problems.push({
        code: 'MISSING_MIGRATION',
        file: r.script,
        ...(r.version ? { version: r.version } : {}),
        message: `Flyway applied ${r.script} but no such migration is in ${from.dir}; point --dir at the folder Flyway used`,
      });
      continue;
    }
    if (r.checksum !== null && flywayChecksum(file.text) !== r.checksum) {
      problems.push({
        code: 'CHECKSUM_MISMATCH',
        file: file.script,
        ...(r.version ? { version: r.version } : {}),
        message:
          `${file.script} differs from what Flyway applied (Flyway checksum ${r.checksum}, ` +
          `file ${flywayChecksum(file.text)}); check out the applied version of the file`,
      });
      continue;
    }
    out.push({
      version: version?.text ?? null,
      description: file.description,
      type: file.kind === 'repeatable' ? 'SQL_REPEATABLE' : 'SQL',
      script: file.script,
      checksum: file.checksum,
      executionMs: r.execution_time ?? 0,
      success: true,
      runId,
      phase: file.directives.phase,
      statementsApplied: null,
      statementsTotal: null,
    });
  }
  if (problems.length > 0) throw new ValidationError(problems, 'adopting the Flyway history');
  if (out.length === 0) throw new SafeshiftError('FLYWAY_HISTORY_NOT_FOUND', `${schema}.${table} holds no applied migrations to adopt`);
  return out;
}
