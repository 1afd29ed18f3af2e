import { randomUUID } from 'node:crypto';
import type { OwnWriteMarks, SqlClient } from '../ports.ts';
import { acquireMigrationLock } from './advisory-lock.ts';
import { applyMigration, type AppliedResult } from './apply.ts';
import { SafeshiftError, ValidationError } from './errors.ts';
import { DEFAULT_HISTORY, HistoryTable, type HistoryLocation } from './history.ts';
import type { LintFinding } from './lint/index.ts';
import { silentLogger, type Logger } from './logger.ts';
import { preflight } from './preflight.ts';
import type { Version } from './version.ts';

export interface MigrateOptions {
  /** A dedicated connection: the run holds a session-level advisory lock on it. */
  readonly client: SqlClient;
  /** The migrations folder. */
  readonly dir: string;
  /** @default DEFAULT_HISTORY (public.safeshift_schema_history) */
  readonly history?: HistoryLocation;
  /** Apply up to and including this version. @default all pending */
  readonly target?: Version;
  /** Apply pending versions below the highest applied one. @default false */
  readonly outOfOrder?: boolean;
  /** Print the plan and change nothing. @default false */
  readonly dryRun?: boolean;
  /** How long to wait for another run's lock, in ms. @default 60000 */
  readonly lockWaitMs?: number;
  /** lock_timeout for each migration without its own directive, in ms. @default 5000 */
  readonly lockTimeoutMs?: number;
  /** Retries of a migration that hit lock_timeout (SQLSTATE 55P03). @default 3 */
  readonly lockRetries?: number;
  /** First retry delay in ms; doubles each time. @default 250 */
  readonly lockRetryDelayMs?: number;
  /**
   * Apply at most this many pending migrations, then stop (`remaining` says how many are left). A
   * workflow applies one per Lambda invocation so each fits Lambda's 15 minutes. @default all
   */
  readonly maxMigrations?: number;
  /**
   * Migrations this run applied in earlier calls (a workflow applies one per call), so progress
   * counts the run: `[2/2] V3…`, not `[1/1] V3…`. @default 0
   */
  readonly appliedEarlier?: number;
  /** Recorded in the history; a workflow passes its own. @default a new UUID */
  readonly runId?: string;
  /** How the run marks its writes as its own, for the write fence (apply.ts ApplySettings). @default none */
  readonly ownWrites?: OwnWriteMarks;
  readonly log?: Logger;
}

/** A migration in a plan, as reported to a person or a script. */
export interface PlannedMigration {
  readonly script: string;
  readonly version: string | null;
  readonly description: string;
  readonly phase: string;
  readonly transaction: boolean;
}

export interface MigrateResult {
  readonly runId: string;
  readonly dryRun: boolean;
  readonly fromVersion: string | null;
  readonly toVersion: string | null;
  /** What this run applied (empty on a dry run). */
  readonly applied: readonly AppliedResult[];
  /** What the plan held. */
  readonly planned: readonly PlannedMigration[];
  /** Lint warnings (and acknowledged findings) worth a look. */
  readonly warnings: readonly LintFinding[];
  /** Pending migrations this run left for a later one (with `maxMigrations`). */
  readonly remaining: number;
}

/**
 * Applies the pending migrations: takes the advisory lock, runs preflight (refusing with every problem
 * listed before changing anything), then applies each migration in its own transaction together with
 * its history row.
 *
 * @example
 * ```ts
 * const client = await connectPg(url);
 * const result = await migrate({ client, dir: 'migrations', target: requireVersion('3', '--target') });
 * console.log(result.applied.map((m) => m.script));
 * ```
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const log = options.log ?? silentLogger;
  const location = options.history ?? DEFAULT_HISTORY;
  const runId = options.runId ?? randomUUID();
  const lockTimeoutMs = options.lockTimeoutMs ?? 5000;
  const release = await acquireMigrationLock(options.client, location, {
    ...(options.lockWaitMs !== undefined ? { waitMs: options.lockWaitMs } : {}),
    onWait: (holder) => log.info(`waiting for another run to finish (${holder})`),
  });
  try {
    const pf = await preflight({
      client: options.client,
      dir: options.dir,
      history: location,
      lockTimeoutMs,
      ...(options.target ? { target: options.target } : {}),
      ...(options.outOfOrder ? { outOfOrder: true } : {}),
    });
    if (pf.problems.length > 0) throw new ValidationError(pf.problems, 'preflight');
    const planned = pf.plan.pending.map((f) => ({
      script: f.script,
      version: f.version?.text ?? null,
      description: f.description,
      phase: f.directives.phase,
      transaction: f.directives.transaction,
    }));
    const warnings = pf.lint?.findings.filter((f) => f.severity === 'warning' || f.allowed) ?? [];
    const fromVersion = pf.plan.currentVersion?.text ?? null;
    const base = { runId, fromVersion, planned, warnings };
    if (options.dryRun || pf.plan.pending.length === 0) {
      return {
        ...base,
        dryRun: !!options.dryRun,
        toVersion: options.dryRun ? (pf.plan.targetVersion?.text ?? null) : fromVersion,
        applied: [],
        remaining: pf.plan.pending.length,
      };
    }
    const batch = options.maxMigrations === undefined ? pf.plan.pending : pf.plan.pending.slice(0, Math.max(1, options.maxMigrations));

    const history = new HistoryTable(options.client, location);
    await history.ensure();
    const applied: AppliedResult[] = [];
    const settings = {
      client: options.client,
      history,
      runId,
      log,
      lockTimeoutMs,
      lockRetries: options.lockRetries ?? 3,
      lockRetryDelayMs: options.lockRetryDelayMs ?? 250,
      ...(options.ownWrites ? { ownWrites: options.ownWrites } : {}),
    };
    const earlier = options.appliedEarlier ?? 0;
    for (const [i, file] of batch.entries()) {
      log.info(`[${earlier + i + 1}/${earlier + pf.plan.pending.length}] ${file.script}`);
      try {
        applied.push(await applyMigration(file, pf.parsed.get(file.script), settings));
      } catch (error) {
        throw withAppliedBefore(error, applied, fromVersion);
      }
    }
    const last = [...applied].reverse().find((a) => a.version !== null);
    return { ...base, dryRun: false, toVersion: last?.version ?? fromVersion, applied, remaining: pf.plan.pending.length - applied.length };
  } finally {
    await release().catch(() => undefined);
  }
}

/** Adds what this run applied before the failure, so the person knows where the database stands. */
function withAppliedBefore(error: unknown, applied: readonly AppliedResult[], fromVersion: string | null): unknown {
  if (!(error instanceof SafeshiftError)) return error;
  const at = [...applied].reverse().find((a) => a.version !== null)?.version ?? fromVersion;
  error.details.appliedBefore = applied.map((a) => a.script);
  error.details.databaseVersion = at;
  if (applied.length > 0) {
    error.message +=
      `\nApplied by this run before the failure (they stay): ` + `${applied.map((a) => a.script).join(', ')}. The database is at version ${at ?? 'none'}.`;
  }
  return error;
}
