import type { MigrationFile } from './discover.ts';
import type { Problem } from './errors.ts';
import type { HistoryRow } from './history.ts';
import { compareVersions, parseVersion, versionKey, type Version } from './version.ts';

/** An applied history row matched with its file on disk (when there is one). */
export interface AppliedMigration {
  readonly row: HistoryRow;
  readonly file?: MigrationFile;
}

/** What a run would do, and everything that stops it. */
export interface MigrationPlan {
  /** Successful history rows, in installed order. */
  readonly applied: readonly AppliedMigration[];
  /** What would run, in order: versioned migrations, then changed repeatables. */
  readonly pending: readonly MigrationFile[];
  /** Versioned files at or below the baseline: never run. */
  readonly belowBaseline: readonly MigrationFile[];
  /** The highest successfully applied version, if any. */
  readonly currentVersion?: Version;
  /** The version after the plan runs. */
  readonly targetVersion?: Version;
  readonly problems: readonly Problem[];
}

export interface PlanOptions {
  /** Stop at this version (inclusive). */
  readonly target?: Version;
  /** Allow pending versions below the highest applied one. */
  readonly outOfOrder?: boolean;
}

/**
 * Compares the migrations on disk with the history and decides what is pending, gathering every
 * problem (checksum drift, missing files, out-of-order versions, failed runs awaiting repair, a bad target).
 *
 * @example
 * ```ts
 * const plan = planMigrations(discovery.migrations, await history.read(), { target: parseVersion('3') });
 * if (plan.problems.length) throw new ValidationError(plan.problems);
 * ```
 */
export function planMigrations(files: readonly MigrationFile[], history: readonly HistoryRow[], options: PlanOptions = {}): MigrationPlan {
  const problems: Problem[] = [];
  const filesByVersion = new Map<string, MigrationFile>();
  const repeatables = new Map<string, MigrationFile>();
  for (const f of files) {
    if (f.version) filesByVersion.set(versionKey(f.version), f);
    else repeatables.set(f.description, f);
  }

  const applied: AppliedMigration[] = [];
  const appliedVersions = new Set<string>();
  const lastRepeatableChecksum = new Map<string, string | null>();
  let currentVersion: Version | undefined;
  let baseline: Version | undefined;

  for (const row of history) {
    if (!row.success) {
      const progress = row.statementsTotal ? ` after ${row.statementsApplied ?? 0} of ${row.statementsTotal} statements` : '';
      problems.push({
        code: 'REPAIR_NEEDED',
        file: row.script,
        ...(row.version ? { version: row.version } : {}),
        message:
          `${row.script} failed${progress} in run ${row.runId ?? '?'}; finish or undo its statements by hand, ` +
          `then run \`safeshift repair\` to clear the failed entry`,
      });
      continue;
    }
    if (row.version === null) {
      lastRepeatableChecksum.set(row.description, row.checksum);
      applied.push({ row, ...fileFor(repeatables.get(row.description)) });
      continue;
    }
    const version = parseVersion(row.version);
    if (!version) continue;
    const key = versionKey(version);
    appliedVersions.add(key);
    if (!currentVersion || compareVersions(version, currentVersion) > 0) currentVersion = version;
    if (row.type === 'BASELINE') {
      baseline = version;
      applied.push({ row });
      continue;
    }
    const file = filesByVersion.get(key);
    if (!file) {
      problems.push({
        code: 'MISSING_MIGRATION',
        file: row.script,
        version: row.version,
        message:
          `${row.script} (version ${row.version}) was applied but is no longer in the migrations folder; ` +
          `restore the file (migrations are forward-only: add a new one to change the schema)`,
      });
    } else if (row.checksum !== null && row.checksum !== file.checksum) {
      problems.push({
        code: 'CHECKSUM_MISMATCH',
        file: file.script,
        version: row.version,
        message:
          `${file.script} was edited after it was applied (checksum ${short(row.checksum)} applied, ${short(file.checksum)} on disk); ` +
          `put the applied text back and add a new migration, or run \`safeshift repair\` if the edit only changed comments or whitespace`,
      });
    }
    applied.push({ row, ...fileFor(file) });
  }

  const pending: MigrationFile[] = [];
  const belowBaseline: MigrationFile[] = [];
  if (options.target) {
    const key = versionKey(options.target);
    if (!filesByVersion.has(key) && !appliedVersions.has(key)) {
      problems.push({
        code: 'TARGET_NOT_FOUND',
        version: options.target.text,
        message: `target version ${options.target.text} is neither applied nor in the migrations folder`,
      });
    } else if (currentVersion && compareVersions(options.target, currentVersion) < 0) {
      problems.push({
        code: 'TARGET_BEHIND',
        version: options.target.text,
        message:
          `target version ${options.target.text} is older than the database's version ${currentVersion.text}; ` +
          `migrations are forward-only (restore a snapshot to go back)`,
      });
    }
  }

  for (const f of files) {
    if (!f.version) continue;
    const key = versionKey(f.version);
    if (appliedVersions.has(key)) continue;
    if (baseline && compareVersions(f.version, baseline) <= 0) {
      belowBaseline.push(f);
      continue;
    }
    if (options.target && compareVersions(f.version, options.target) > 0) continue;
    if (currentVersion && compareVersions(f.version, currentVersion) < 0 && !options.outOfOrder) {
      problems.push({
        code: 'OUT_OF_ORDER',
        file: f.script,
        version: f.version.text,
        message:
          `${f.script} (version ${f.version.text}) is pending but the database is already at ${currentVersion.text}; ` +
          `give it a higher version, or pass --out-of-order to apply it anyway`,
      });
      continue;
    }
    pending.push(f);
  }
  for (const f of files) {
    if (f.version) continue;
    if (lastRepeatableChecksum.get(f.description) !== f.checksum) pending.push(f);
  }

  const lastPending = [...pending].reverse().find((f) => f.version)?.version;
  const targetVersion = lastPending && (!currentVersion || compareVersions(lastPending, currentVersion) > 0) ? lastPending : currentVersion;
  return {
    applied,
    pending,
    belowBaseline,
    problems,
    ...(currentVersion ? { currentVersion } : {}),
    ...(targetVersion ? { targetVersion } : {}),
  };
}

function fileFor(file: MigrationFile | undefined): { file?: MigrationFile } {
  return file ? { file } : {};
}

function short(sum: string): string {
  return sum.slice(0, 12);
}
