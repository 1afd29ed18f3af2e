import { LockedError, SafeshiftError } from '../core/errors.ts';
import type { Ledger, QuiesceRecord, RehearsalRecord, RunRecord, SnapshotRecord, TimelineEntry } from '../ports.ts';
import { interruptedNote, runLiveness } from '../steps/run-liveness.ts';
import type { LockView, QuiesceView, RehearsalView, RunProgress, RunView, SnapshotView, TimelineView } from './backend.ts';
import { redactSecrets } from './redact.ts';

/** How many recent runs are scanned to find the databases the ledger knows (the Ledger port has no list of them). */
const RUNS_SCANNED_FOR_DATABASES = 1000;

/**
 * The console's views over any {@link Ledger} (the local Postgres one or the DynamoDB one), so each
 * backend only adds what is runtime-specific: reading a database's history and starting a restore.
 * Every view it returns is redacted with the secrets it was given.
 *
 * @example
 * ```ts
 * const reader = new LedgerReader(ledger, [serverPassword]);
 * const runs = await reader.listRuns('shop');
 * await reader.checkRestorable('shop', 'ss-pre-shop-1a2b'); // throws SNAPSHOT_FOREIGN for another database's
 * ```
 */
export class LedgerReader {
  constructor(
    readonly ledger: Ledger,
    private readonly secrets: readonly string[] = [],
  ) {}

  /** The databases with a run or a snapshot recorded, sorted by name. */
  async databaseNames(): Promise<string[]> {
    const [runs, snapshots] = await Promise.all([this.ledger.listRuns(undefined, RUNS_SCANNED_FOR_DATABASES), this.ledger.listSnapshots()]);
    return [...new Set([...runs.map((r) => r.database), ...snapshots.map((s) => s.database)])].sort();
  }

  async listRuns(database: string, limit = 50, live?: (runId: string) => RunProgress | undefined): Promise<RunView[]> {
    const records = await this.ledger.listRuns(database, limit);
    return records.map((r) => this.runView(r, live?.(r.runId)));
  }

  async getRun(runId: string, live?: RunProgress): Promise<RunView | undefined> {
    const record = await this.ledger.getRun(runId);
    return record && this.runView(record, live);
  }

  /**
   * A run as the page shows it. While a run goes, the ledger has no timeline yet (it is written when
   * the run ends), so the states seen live stand in for it.
   */
  runView(record: RunRecord, live?: RunProgress, now = Date.now()): RunView {
    const ended = record.endedAt ? Date.parse(record.endedAt) : undefined;
    const entries: readonly TimelineEntry[] = record.timeline?.length ? record.timeline : (live?.states ?? []);
    const timeline: TimelineView[] = entries.map((t, i) => {
      const next = entries[i + 1]?.enteredAt;
      const exited = t.exitedAt ?? next;
      const end = exited ? Date.parse(exited) : (ended ?? now);
      return {
        state: t.state,
        enteredAt: t.enteredAt,
        ...(exited ? { exitedAt: exited } : {}),
        durationMs: Math.max(0, end - Date.parse(t.enteredAt)),
        ...(t.error ? { error: t.error } : {}),
      };
    });
    const quiesced = record.quiescedAt && record.resumedAt ? Date.parse(record.resumedAt) - Date.parse(record.quiescedAt) : undefined;
    const view: RunView = {
      runId: record.runId,
      database: record.database,
      kind: record.kind,
      status: record.status,
      startedAt: record.startedAt,
      ...(record.endedAt ? { endedAt: record.endedAt } : {}),
      ...(ended !== undefined ? { durationMs: Math.max(0, ended - Date.parse(record.startedAt)) } : {}),
      fromVersion: record.fromVersion ?? null,
      toVersion: record.toVersion ?? null,
      targetVersion: record.targetVersion ?? null,
      plannedVersion: record.plannedVersion === undefined ? (record.toVersion ?? null) : record.plannedVersion,
      ...(record.strategy ? { strategy: record.strategy } : {}),
      ...(record.snapshotId ? { snapshotId: record.snapshotId } : {}),
      ...(record.safetySnapshotId ? { safetySnapshotId: record.safetySnapshotId } : {}),
      applied: record.applied ?? [],
      ...(record.quiescedAt ? { quiescedAt: record.quiescedAt } : {}),
      ...(record.resumedAt ? { resumedAt: record.resumedAt } : {}),
      ...(quiesced !== undefined && quiesced >= 0 ? { quiescedWindowMs: quiesced } : {}),
      ...(record.error ? { error: record.error } : {}),
      ...(runLiveness(record, now) === 'interrupted' ? { interrupted: interruptedNote(record) } : {}),
      timeline,
    };
    return redactSecrets(view, this.secrets);
  }

  /** The snapshots a restore accepts: pre-upgrade and safety ones still recorded as available, newest first. */
  async listSnapshots(database: string): Promise<SnapshotView[]> {
    const records = await this.ledger.listSnapshots(database);
    return records.filter(isRestorable).map((s) => redactSecrets(snapshotView(s), this.secrets));
  }

  /**
   * Refuses a restore the ledger does not back: SNAPSHOT_NOT_FOUND when the snapshot is not recorded
   * (or is a rehearsal's, or no longer available), SNAPSHOT_FOREIGN when it was taken of another
   * database. The restore workflow checks the same again; this answers before any run is started.
   */
  async checkRestorable(database: string, snapshotId: string): Promise<SnapshotRecord> {
    const record = await this.ledger.getSnapshot(snapshotId);
    if (!record) {
      throw new SafeshiftError('SNAPSHOT_NOT_FOUND', `no snapshot ${snapshotId} is recorded; the console lists the snapshots that can be restored`);
    }
    if (record.database !== database) {
      throw new SafeshiftError(
        'SNAPSHOT_FOREIGN',
        `snapshot ${snapshotId} was taken of another database, not of ${database}; a database can only be restored from its own snapshots`,
      );
    }
    if (!isRestorable(record)) {
      throw new SafeshiftError(
        'SNAPSHOT_NOT_FOUND',
        `snapshot ${snapshotId} is ${record.kind === 'rehearsal' ? 'a rehearsal snapshot' : `recorded as ${record.status}`}, not one that can be restored`,
      );
    }
    return record;
  }

  /** The lock on a database as the page shows it, or undefined when none is held. */
  async lockView(database: string): Promise<LockView | undefined> {
    const lock = await this.ledger.getLock(database);
    if (!lock) return undefined;
    const run = await this.ledger.getRun(lock.owner);
    const interrupted = run && runLiveness(run) === 'interrupted' ? interruptedNote(run) : undefined;
    return {
      owner: lock.owner,
      acquiredAt: lock.acquiredAt,
      expiresAt: lock.expiresAt,
      stale: Date.parse(lock.expiresAt) <= Date.now(),
      ...(interrupted ? { interrupted } : {}),
    };
  }

  /**
   * Refuses with LOCKED while a run holds the database: an interrupted one names `safeshift recover`,
   * a stale one says how to break the lock on purpose, a live one says to wait.
   */
  async checkUnlocked(database: string): Promise<void> {
    const lock = await this.lockView(database);
    if (!lock) return;
    if (lock.interrupted) throw new LockedError(`database ${database} is locked: ${lock.interrupted}`, { owner: lock.owner, stale: true });
    throw new LockedError(
      lock.stale
        ? `database ${database} is locked by run ${lock.owner} since ${lock.acquiredAt}, ` +
            `and that lock has expired: it is stale, probably from a run that crashed. ` +
            `Check that run is not still going, then break the lock on purpose: safeshift unlock --database ${database}`
        : `database ${database} is locked by run ${lock.owner} (since ${lock.acquiredAt}); wait for it to finish`,
      { owner: lock.owner, stale: lock.stale },
    );
  }

  /** The record of quiesced APIs, with whether each one's run is still going. */
  async listQuiesced(database: string): Promise<QuiesceView[]> {
    const records = await this.ledger.listQuiesced({ database });
    const runs = new Map<string, RunRecord | undefined>();
    for (const runId of new Set(records.filter((r) => r.status !== 'resumed').map((r) => r.runId))) runs.set(runId, await this.ledger.getRun(runId));
    return records.map((r) => redactSecrets(quiesceView(r, runs.get(r.runId)), this.secrets));
  }

  /**
   * The quiescer specs the database's latest quiescing run used: what a restore from the console stops
   * unless told otherwise. Unredacted (they are passed to the quiescers), so never for rendering.
   */
  async lastQuiesceSpecs(database: string): Promise<string[]> {
    const records = await this.ledger.listQuiesced({ database });
    const latest = records.at(-1)?.runId;
    return records.filter((r) => r.runId === latest).map((r) => r.apiId);
  }

  async listRehearsals(database: string): Promise<RehearsalView[]> {
    const records = await this.ledger.listRehearsals(database);
    return records.map((r) => redactSecrets(rehearsalView(r), this.secrets));
  }
}

function isRestorable(s: SnapshotRecord): s is SnapshotRecord & { kind: 'pre-upgrade' | 'safety' } {
  return (s.kind === 'pre-upgrade' || s.kind === 'safety') && s.status === 'available';
}

function snapshotView(s: SnapshotRecord & { kind: 'pre-upgrade' | 'safety' }): SnapshotView {
  return {
    snapshotId: s.snapshotId,
    database: s.database,
    kind: s.kind,
    runId: s.runId,
    createdAt: s.createdAt,
    schemaVersion: s.schemaVersion,
    ...(s.durationMs !== undefined ? { durationMs: s.durationMs } : {}),
  };
}

/** A quiesce record, with whether its run (when it is still quiesced) goes on, or was interrupted. */
function quiesceView(r: QuiesceRecord, run: RunRecord | undefined): QuiesceView {
  const still = r.status !== 'resumed';
  const liveness = still && run ? runLiveness(run) : 'ended';
  return {
    runId: r.runId,
    database: r.database,
    apiId: r.apiId,
    prior: r.prior,
    status: r.status,
    ...(r.quiescedAt ? { quiescedAt: r.quiescedAt } : {}),
    ...(r.resumedAt ? { resumedAt: r.resumedAt } : {}),
    stillQuiesced: still,
    runActive: liveness === 'alive' || liveness === 'unknown',
    ...(liveness === 'interrupted' && run ? { runInterrupted: interruptedNote(run) } : {}),
  };
}

function rehearsalView(r: RehearsalRecord): RehearsalView {
  return {
    runId: r.runId,
    database: r.database,
    createdAt: r.createdAt,
    fromVersion: r.fromVersion,
    toVersion: r.toVersion,
    migrations: r.migrations.map((m) => ({ script: m.script, executionMs: m.executionMs, lockRetries: m.lockRetries })),
    predictedWindowMs: r.predictedWindowMs,
    status: r.status,
    ...(r.error ? { error: r.error } : {}),
  };
}
