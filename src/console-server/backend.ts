import type { LockRecord, QuiesceRecord, RehearsalRecord, RunError, RunKind, RunStatus, SnapshotKind } from '../ports.ts';

/**
 * What the console shows and does, whatever runs the workflows: the local runtime (Postgres ledger,
 * in-process state machines) or a deployed stack (DynamoDB ledger, Step Functions). The server and
 * the page only ever talk to this interface.
 *
 * Every view is safe to render: implementations redact credentials (URL passwords, secret-looking
 * fields of a prior state) before returning it, and the server redacts once more on the way out.
 *
 * @example
 * ```ts
 * const backend = await LocalConsoleBackend.open({ serverUrl });
 * const [db] = await backend.listDatabases();
 * const [snapshot] = await backend.listSnapshots(db.name);
 * const { runId } = await backend.startRestore(db.name, snapshot.snapshotId);
 * const stop = backend.followRun(runId, (p) => console.log(p.states.at(-1)?.state, p.done));
 * ```
 */
export interface ConsoleBackend {
  /** Where the data comes from, for the page's header (no credentials), e.g. `local: 127.0.0.1:5432`. */
  readonly description: string;
  /** Every database the ledger has a run or a snapshot of, with its compatibility record. */
  listDatabases(): Promise<DatabaseView[]>;
  /** The database's runs, newest first. */
  listRuns(database: string, limit?: number): Promise<RunView[]>;
  getRun(runId: string): Promise<RunView | undefined>;
  /** The snapshots a restore of this database accepts (pre-upgrade and safety, still available), newest first. */
  listSnapshots(database: string): Promise<SnapshotView[]>;
  /** The record of quiesced APIs of this database, oldest first. */
  listQuiesced(database: string): Promise<QuiesceView[]>;
  /** The rehearsal reports of this database, newest first. */
  listRehearsals(database: string): Promise<RehearsalView[]>;
  /**
   * Starts the restore workflow of `database` to `snapshotId` and returns at once with its run id.
   * Refuses (SafeshiftError) before starting anything: SNAPSHOT_NOT_FOUND for a snapshot not recorded
   * or no longer restorable, SNAPSHOT_FOREIGN for another database's, LOCKED while a run holds the database.
   */
  startRestore(database: string, snapshotId: string): Promise<{ readonly runId: string }>;
  /**
   * Calls `listener` with the run's progress now and at every change until it is done (the last call
   * has `done: true`). Returns a function that stops listening.
   */
  followRun(runId: string, listener: (progress: RunProgress) => void): () => void;
  /** Whether restores run by this process are still going (closing waits for them). */
  hasRunningRestores(): boolean;
  /** Waits for restores this process runs, then releases its connections. */
  close(): Promise<void>;
}

/** The lock on a database, and whether the run holding it can still finish. */
export interface LockView extends Omit<LockRecord, 'database'> {
  /** It has expired: nobody renewed it in time. */
  readonly stale: boolean;
  /**
   * Set when its run was interrupted (its process is gone): what happened and the one command that
   * finishes it (`safeshift recover`). Absent while the run goes, and for runs whose liveness the
   * ledger cannot tell (Step Functions executions).
   */
  readonly interrupted?: string;
}

/** One database as the console lists it. */
export interface DatabaseView {
  readonly name: string;
  /** The highest applied migration version, or null (no history, or it could not be read). */
  readonly schemaVersion: string | null;
  /** The oldest application schema version that can still run on it. */
  readonly compatibleFrom: string | null;
  /** The contract migration that raised `compatibleFrom`, when one did. */
  readonly raisedBy: string | null;
  /** Why the versions could not be read now (the database is gone, or a run holds it), when so. */
  readonly versionNote?: string;
  /** The run holding the database's lock, when one does. */
  readonly lock?: LockView;
  readonly lastRun?: { readonly runId: string; readonly kind: RunKind; readonly status: RunStatus; readonly startedAt: string };
  /** How many APIs are recorded as quiesced and not yet resumed. Anything above 0 is loud on the page. */
  readonly stillQuiesced: number;
  readonly restorableSnapshots: number;
  /** The APIs a restore started from the console stops and resumes (redacted specs). */
  readonly restoreQuiesces: readonly string[];
}

/** One state of a run's timeline, with how long the run spent in it. */
export interface TimelineView {
  readonly state: string;
  readonly enteredAt: string;
  readonly exitedAt?: string;
  /** Until it was left, or (still in it) until now. */
  readonly durationMs: number;
  readonly error?: string;
}

/** One run (upgrade, restore or rehearsal). */
export interface RunView {
  readonly runId: string;
  readonly database: string;
  readonly kind: RunKind;
  readonly status: RunStatus;
  readonly startedAt: string;
  readonly endedAt?: string;
  readonly durationMs?: number;
  readonly fromVersion: string | null;
  readonly toVersion: string | null;
  readonly targetVersion: string | null;
  /** Where the run meant to take the database; `toVersion` is where it ended. */
  readonly plannedVersion: string | null;
  /**
   * Set when the run is recorded as running but its process is gone: what happened and the one
   * command that finishes it (`safeshift recover`). Its status stays `running` until then.
   */
  readonly interrupted?: string;
  readonly strategy?: 'in-place' | 'swap';
  /** An upgrade's pre-upgrade snapshot; for a restore, the snapshot it brings back. */
  readonly snapshotId?: string;
  /** A restore's safety snapshot: the data it replaced, set aside so the restore can be undone. */
  readonly safetySnapshotId?: string;
  readonly applied: readonly string[];
  readonly quiescedAt?: string;
  readonly resumedAt?: string;
  /** From quiesce to resume, when both happened. */
  readonly quiescedWindowMs?: number;
  readonly error?: RunError;
  readonly timeline: readonly TimelineView[];
}

/** A snapshot a restore accepts. */
export interface SnapshotView {
  readonly snapshotId: string;
  readonly database: string;
  readonly kind: Exclude<SnapshotKind, 'rehearsal'>;
  readonly runId: string;
  readonly createdAt: string;
  /** The schema version the snapshot holds. */
  readonly schemaVersion: string | null;
  readonly durationMs?: number;
}

/**
 * One entry of the record of quiesced APIs: the ledger's record, redacted (the quiescer spec's URL
 * password, secret-looking fields of the prior state that resume puts back), and what it means now.
 */
export interface QuiesceView extends QuiesceRecord {
  /** Not resumed. */
  readonly stillQuiesced: boolean;
  /** Its run is still going (so being quiesced may be expected); false means it was left quiesced. */
  readonly runActive: boolean;
  /** Set when its run was interrupted: what happened and the command that resumes it (`safeshift recover`). */
  readonly runInterrupted?: string;
}

/** A rehearsal report: how long each migration took on a clone, and the window it predicts; the ledger's record, as it is. */
export type RehearsalView = RehearsalRecord;

/** A run's progress while it goes: the states entered so far, and how it ended once it has. */
export interface RunProgress {
  readonly runId: string;
  readonly database: string;
  readonly kind: RunKind;
  readonly states: readonly { readonly state: string; readonly enteredAt: string }[];
  readonly done: boolean;
  /** `running` until done. */
  readonly status: RunStatus;
  readonly error?: RunError;
}
