/**
 * The ports the steps and the engine are written against. Adapters (local or AWS) implement them;
 * nothing that imports this file knows which runtime it runs in.
 *
 * Every mutating method is idempotent, because Step Functions delivers a Task at least once: calling
 * it again with the same identifiers finds and reuses what the first call made, and deleting what is
 * already gone is success.
 */

/** The result of one query: the rows and how many rows the command touched. */
export interface QueryResult<R> {
  readonly rows: R[];
  readonly rowCount: number | null;
}

/**
 * The small slice of a PostgreSQL client the engine needs (a `pg.Client` satisfies it).
 *
 * @example
 * ```ts
 * const { rows } = await client.query<{ n: number }>('select $1::int as n', [1]);
 * ```
 */
export interface SqlClient {
  /**
   * Runs `text`. Without `values` it may hold several statements, sent as one simple-protocol query;
   * when one of them fails, the error thrown should carry {@link SqlErrorProgress}.
   */
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>>;
}

/**
 * What an error thrown by {@link SqlClient.query} carries besides the driver's own fields (SQLSTATE
 * `code`, `position`, …) when the client can tell: how many statements of the query the server
 * completed (one CommandComplete each) before the one that failed. The engine names the failing
 * statement of a migration from it when Postgres gives no position, without running anything again.
 * A client that cannot tell leaves it out, and the error then says the statement is not known.
 *
 * @example
 * ```ts
 * try { await client.query('select 1; select 1/0; select 2'); }
 * catch (e) { (e as SqlErrorProgress).completedStatements; } // 1: the second statement failed
 * ```
 */
export interface SqlErrorProgress {
  readonly completedStatements?: number;
}

/** A connection a step opened and must close. */
export interface SqlSession extends SqlClient {
  close(): Promise<void>;
}

/** A JSON value: what crosses a state machine boundary or is stored in the ledger. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

// ---------------------------------------------------------------------------------------------
// Fleet: snapshots, clones and swaps of databases.

/** What safeshift created a snapshot for. */
/**
 * `retired` and `failed` are not snapshots but databases a run replaced (the production a forward
 * swap replaced, the production a rollback replaced): kept until `keepUntil`, since they may hold
 * writes nothing else has. They cannot be restored from; `snapshots` lists them.
 */
export type SnapshotKind = 'pre-upgrade' | 'safety' | 'rehearsal' | 'retired' | 'failed';

/** Tags safeshift puts on everything it creates, so it only ever deletes its own. */
export interface SafeshiftTags {
  readonly runId: string;
  /** The database the resource belongs to (its production identifier). */
  readonly database: string;
  readonly kind: SnapshotKind | 'clone' | 'retired';
}

/** Where a fleet resource stands. `missing` means it does not exist (or no longer does). */
export type ResourceStatus = 'creating' | 'available' | 'failed' | 'missing';

/**
 * Snapshots, clones and swaps. Locally a snapshot is a template database and a swap two renames in
 * one transaction; on AWS they are RDS/Aurora snapshots, restores and identifier renames. Long
 * operations are started and then polled (`…Status`), so a state machine can wait between polls.
 */
export interface Fleet {
  /** Starts a snapshot of `database` called `snapshotId`. Reuses one that already exists with that id. */
  startSnapshot(database: string, snapshotId: string, tags: SafeshiftTags): Promise<void>;
  snapshotStatus(snapshotId: string): Promise<ResourceStatus>;
  /** Starts creating database `cloneId` from a snapshot. Reuses one that already exists with that id. */
  startClone(snapshotId: string, cloneId: string, tags: SafeshiftTags): Promise<void>;
  databaseStatus(databaseId: string): Promise<ResourceStatus>;
  /**
   * Puts `replacement` in the place of `production`: afterwards `production`'s identifier names what
   * was `replacement`, and the old production is kept as `retiredId`. Idempotent: when it already
   * happened (production is the replacement and the retired one exists) it does nothing.
   */
  swap(production: string, replacement: string, retiredId: string): Promise<void>;
  /** Deletes a database safeshift created (a clone or a retired production). Missing is success. */
  deleteDatabase(databaseId: string): Promise<void>;
  /** Deletes a snapshot safeshift created. Missing is success. */
  deleteSnapshot(snapshotId: string): Promise<void>;
  /**
   * Optional: undoes what an operation interrupted half-way left on `database` and its server (locally,
   * a crashed snapshot's blocked connections and half-made copy), and drops the databases among
   * `leftovers` that exist without safeshift's tags: names a run derives from its own id, which only
   * a create that died before tagging can have left. Returns what it did, in words; nothing is done
   * (and nothing returned) when nothing was left.
   */
  repair?(database: string, leftovers: readonly string[]): Promise<string[]>;
  /** Whether safeshift's tags are on a snapshot, and for which database: restores check it. */
  snapshotTags(snapshotId: string): Promise<SafeshiftTags | undefined>;
  /**
   * When the fleet can clone the live database directly (Aurora's copy-on-write clone), the id that
   * `startClone` accepts for that; a rehearsal then clones production instead of its snapshot.
   */
  liveCloneSource?(database: string): string;
  /**
   * Optional: starts a snapshot of `database` and, beside it, a clone `cloneId` of the same moment,
   * copying the database twice at once instead of copying the snapshot after it is made (`tags` are
   * the snapshot's; the clone is tagged `clone`). Retries reuse what exists, as the two calls do.
   * Fleets without it make the snapshot, then a clone of it.
   */
  startSnapshotAndClone?(database: string, snapshotId: string, cloneId: string, tags: SafeshiftTags): Promise<void>;
  /**
   * True when `startSnapshot`/`startClone` return only once the copy is made (the local fleet), so a
   * step that wants two copies to overlap must call both at once. On AWS a start only asks for the
   * work, so calling one after the other already overlaps it, and a refused first call starts nothing.
   */
  readonly copiesWhileStarting?: boolean;
}

/**
 * Tells, from the server's write-ahead log, whether anything but one run committed row changes to a
 * database since a mark. A run marks production before its snapshot and a replacement before it is
 * swapped in; before a database is replaced (a swap, a restore, a swap back), what others committed
 * to it since its mark is what the replacement would discard. A run's own writes carry the marks of {@link ownWrites}, so they are told
 * apart from everyone else's without trusting the quiescers.
 */
export interface WriteFence {
  /** The statements that mark a run's writes on production as its own. */
  ownWrites(runId: string): OwnWriteMarks;
  /** Records where the database's history stands now, and keeps the log from there until {@link release}. */
  mark(databaseId: string, runId: string): Promise<FenceMark>;
  /** The committed row changes to `databaseId` since its mark among `marks`, other than `runId`'s own. */
  check(databaseId: string, marks: readonly FenceMark[], runId: string): Promise<FenceReport>;
  /** Lets the server recycle the log the run's marks kept. Nothing kept is success. */
  release(runId: string): Promise<void>;
}

/** How a run marks its writes as its own, for a {@link WriteFence}. */
export interface OwnWriteMarks {
  /** Run inside each of the run's write transactions. */
  readonly inTransaction: string;
  /**
   * Run before and after a statement that cannot run in a transaction of the run's (CREATE INDEX
   * CONCURRENTLY, a procedure that commits): what commits between the two counts as the run's.
   */
  readonly before: string;
  readonly after: string;
}

/** Where a database's history stood when a run marked it. */
export interface FenceMark {
  /** The database's name when it was marked (a swap later renames it). */
  readonly database: string;
  /** What stays the same when it is renamed: the server's id for it. */
  readonly databaseOid: number;
  /** The log position of the mark. */
  readonly lsn: string;
  readonly at: string;
  /** What keeps the log from the mark on; null when nothing could (the check may then find it gone). */
  readonly slot: string | null;
}

/** What a {@link WriteFence.check} found. */
export interface FenceReport {
  /** True when the whole log since the mark was read, so `foreign` is everything there is. */
  readonly proven: boolean;
  /** Why the log could not be read in full, when `proven` is false. */
  readonly note?: string;
  /** Each transaction not of the run that committed row changes to the database since the mark. */
  readonly foreign: readonly ForeignWrite[];
}

/** One committed transaction that changed a database's rows and was not the run's. */
export interface ForeignWrite {
  readonly xid: string;
  /** When it committed, as the server logged it. */
  readonly committedAt: string;
  /** The tables (or their storage, when they are gone) it changed. */
  readonly relations: readonly string[];
  /** How many row changes it logged. */
  readonly changes: number;
}

/** How a step's session is opened. */
export interface ConnectOptions {
  /** The run the session works for: its sessions are tagged with it, so they can be found and ended later. */
  readonly runId?: string;
}

/** Opens SQL sessions to a database of the fleet (production or a clone) by its identifier. */
export interface Connector {
  connect(databaseId: string, options?: ConnectOptions): Promise<SqlSession>;
  /**
   * Ends every session a run opened that is still on the database's server and waits until they
   * are gone; returns how many there were. A Task that failed (timed out, its process or Lambda
   * killed) may have left its SQL running: nothing is decided about the database before this.
   */
  endRunSessions(databaseId: string, runId: string): Promise<number>;
  /**
   * Ends every session on a database except this process's own pool, so a local snapshot or swap
   * (which need the database to themselves) can proceed. On AWS a no-op.
   */
  disconnectAll(databaseId: string): Promise<void>;
  /**
   * Why a database on a shared server may not be upgraded or restored, or undefined when it may:
   * the server's own databases (`postgres`, templates) and safeshift's own (snapshots, clones).
   * Absent where each database is its own instance (RDS, Aurora).
   */
  targetProblem?(databaseId: string): Promise<string | undefined>;
}

// ---------------------------------------------------------------------------------------------
// Quiescers: stop and resume the APIs that write to the database.

/**
 * One API that writes to the database. `capture` records its state before anything changes, so
 * `resume` can put back exactly what was there (a Lambda's reserved concurrency including "none",
 * a role's login and connect rights, an endpoint's mode).
 *
 * @example
 * ```ts
 * const prior = await q.capture();
 * await ledger.recordQuiesce({ ..., prior });   // write-ahead
 * await q.quiesce();
 * ...
 * await q.resume(prior);
 * ```
 */
export interface Quiescer {
  /** Stable id, the spec it was made from: `db-role:app`, `http:http://127.0.0.1:8080/maintenance`, `lambda:orders-api`. */
  readonly id: string;
  /**
   * Checks, changing nothing, that this API can be quiesced and resumed: run at preflight, before
   * the lock, so a spec that cannot work is refused (BAD_OPTION or QUIESCE_FAILED) with nothing changed.
   */
  check(): Promise<void>;
  capture(): Promise<Json>;
  quiesce(): Promise<void>;
  resume(prior: Json): Promise<void>;
  /**
   * Whether the API is still held as `quiesce` left it (an API restarted mid-run may come back
   * writing), with the evidence. Asked before production is changed and before a rollback brings a
   * snapshot back, which would discard what it wrote.
   */
  stillQuiesced(): Promise<QuiesceHold>;
}

/** What {@link Quiescer.stillQuiesced} found. */
export interface QuiesceHold {
  readonly holds: boolean;
  /** What was seen, in words: `mode is "normal"`, `role shop_app can log in`, `reserved concurrency 0`. */
  readonly evidence: string;
}

/** Makes quiescers from their specs (`kind:target`). Throws BAD_OPTION for an unknown kind. */
export interface QuiescerFactory {
  create(spec: string, databaseId: string): Quiescer;
}

// ---------------------------------------------------------------------------------------------
// Ledger: the durable record of runs, snapshots, quiesced APIs, rehearsals and the lock.

export type RunKind = 'upgrade' | 'restore' | 'rehearsal';
/** `rolled-back`: failed, production back at its pre-run state; `needs-operator`: see the error. */
export type RunStatus = 'running' | 'succeeded' | 'refused' | 'rolled-back' | 'needs-operator';

/** One state a run went through. Times are ISO strings. */
export interface TimelineEntry {
  readonly state: string;
  readonly enteredAt: string;
  readonly exitedAt?: string;
  readonly error?: string;
}

/** What went wrong, as a person and a script need it. */
export interface RunError {
  readonly code: string;
  readonly message: string;
  readonly migration?: string;
  readonly state?: string;
}

/** Where a run that needs an operator left things, each read when it ended. */
export interface RunStanding {
  /** Production's schema version from its history; null when it has none or could not be read (see the note). */
  readonly productionVersion: string | null;
  readonly productionNote?: string;
  /** The APIs of the run still quiesced. */
  readonly stillQuiesced: readonly string[];
  readonly lock: 'kept' | 'released';
  /** What to do next, as commands. */
  readonly next: string;
}

export interface RunRecord {
  readonly runId: string;
  readonly database: string;
  readonly kind: RunKind;
  readonly status: RunStatus;
  readonly startedAt: string;
  readonly endedAt?: string;
  readonly fromVersion?: string | null;
  readonly toVersion?: string | null;
  readonly targetVersion?: string | null;
  /** Where the run meant to take the database (preflight's plan); `toVersion` is where it ended. */
  readonly plannedVersion?: string | null;
  readonly strategy?: 'in-place' | 'swap';
  /** An upgrade's pre-upgrade snapshot; for a restore, the snapshot it brings back. */
  readonly snapshotId?: string;
  /** A restore's safety snapshot of the state it replaced. */
  readonly safetySnapshotId?: string;
  readonly applied?: readonly string[];
  readonly quiescedAt?: string;
  readonly resumedAt?: string;
  /** The first failure: what sent the run down its failure path. */
  readonly error?: RunError;
  /** Every failure in order, when there was more than one (a rollback that failed after the cause). */
  readonly errors?: readonly RunError[];
  /** Where a run that needs an operator left things. */
  readonly standing?: RunStanding;
  readonly timeline?: readonly TimelineEntry[];
  readonly transitions?: number;
  /** The process running the run, for a run a local process runs (a Step Functions execution has none). */
  readonly owner?: RunOwner;
  /** When the owner last said it is alive; see `runLiveness`. */
  readonly heartbeatAt?: string;
  /** Where a local execution stood as its last Task began: what `safeshift recover` continues from. */
  readonly checkpoint?: RunCheckpoint;
  /** Someone asked the run to stop (Ctrl-C): it rolls back at the next safe point, and so does a recovery. */
  readonly stopRequested?: { readonly at: string; readonly reason: string };
  /** Each time `safeshift recover` took the run over, and what it found. */
  readonly recoveries?: readonly RecoveryNote[];
  /** The write fence's marks of the databases the run may replace (see {@link WriteFence}), by the server's id for each. */
  readonly fences?: Readonly<Record<string, FenceMark>>;
}

/** The process that runs a local run. */
export interface RunOwner {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
}

/**
 * A local execution's position, written before each Task's step begins: continuing from here runs
 * that Task again with the same input, as Step Functions delivers a Task at least once.
 */
export interface RunCheckpoint {
  readonly state: string;
  /** The state machine's state as the Task received it (before its Parameters). */
  readonly input: Json;
  /** How many times each Task has been started so far (retries included). */
  readonly attempts: Readonly<Record<string, number>>;
  readonly at: string;
  /** The migrations and verify folders the run was started with, so a recovery applies the same files. */
  readonly migrationsDir?: string;
  readonly verifyDir?: string;
}

/** What one `safeshift recover` did with an interrupted run. */
export interface RecoveryNote {
  readonly at: string;
  readonly by: RunOwner;
  /** The owner that was gone. */
  readonly previousOwner?: RunOwner;
  /** The checkpoint it continued from; none when the run died before its first checkpoint. */
  readonly fromState?: string;
  /** `continue` from the checkpoint, or `roll-back` (asked for, or a stop was requested). */
  readonly action: 'continue' | 'roll-back' | 'close';
  /** Sessions of the dead run found still on the server and ended. */
  readonly endedSessions: number;
  /** Repairs done before continuing (a reopened database, a dropped half-made copy). */
  readonly repairs: readonly string[];
  readonly why: string;
}

export interface SnapshotRecord {
  readonly snapshotId: string;
  readonly database: string;
  readonly kind: SnapshotKind;
  readonly runId: string;
  readonly createdAt: string;
  /** The schema version the snapshot holds. */
  readonly schemaVersion: string | null;
  readonly status: 'creating' | 'available' | 'deleted';
  /** How long the snapshot took to become available, once it is. */
  readonly durationMs?: number;
  /** For a kept database (`retired`, `failed`): when cleanup may delete it. */
  readonly keepUntil?: string;
}

/** The record of one quiesced API, written before it is quiesced. */
export interface QuiesceRecord {
  readonly runId: string;
  readonly database: string;
  readonly apiId: string;
  readonly prior: Json;
  readonly status: 'quiescing' | 'quiesced' | 'resumed';
  readonly quiescedAt?: string;
  readonly resumedAt?: string;
}

export interface RehearsalRecord {
  readonly runId: string;
  readonly database: string;
  readonly createdAt: string;
  readonly fromVersion: string | null;
  readonly toVersion: string | null;
  readonly migrations: readonly { readonly script: string; readonly executionMs: number; readonly lockRetries: number }[];
  /** Snapshot + migrations + verify + orchestration, as measured on the clone. */
  readonly predictedWindowMs: number;
  readonly status: 'succeeded' | 'failed';
  readonly error?: RunError;
}

/** Who holds a database's run lock. */
export interface LockRecord {
  readonly database: string;
  readonly owner: string;
  readonly acquiredAt: string;
  readonly expiresAt: string;
}

/**
 * The ledger. Locally a control database beside the application's (untouched by restores); on AWS a
 * DynamoDB table. Writes about a side effect happen before it (write-ahead).
 */
export interface Ledger {
  /**
   * The database the ledger lives in when it is one on production's server (locally
   * `safeshift_control`): never a target, since a restore would rewind the record of every run.
   */
  readonly databaseName?: string;
  /**
   * Takes the run lock of a database for `owner`, or throws LOCKED naming the holder and its age.
   * Re-entrant: the same owner taking it again succeeds (a retried step). An expired lock is NOT taken
   * over silently: it is reported as stale and must be broken on purpose.
   */
  acquireLock(database: string, owner: string, ttlMs: number): Promise<LockRecord>;
  /** Releases the lock if `owner` holds it. */
  releaseLock(database: string, owner: string): Promise<void>;
  /**
   * Optional: moves the lock's expiry to `ttlMs` from now if `owner` still holds it, and never takes
   * it when it does not (a heartbeat must not re-take a lock its run just released). True when renewed.
   */
  renewLock?(database: string, owner: string, ttlMs: number): Promise<boolean>;
  getLock(database: string): Promise<LockRecord | undefined>;
  /** Removes whatever lock a database has, returning it. For an operator, on purpose. */
  breakLock(database: string): Promise<LockRecord | undefined>;

  /** Creates the run, or returns the existing one with that id (a retried start). */
  startRun(run: RunRecord): Promise<RunRecord>;
  updateRun(runId: string, patch: Partial<Omit<RunRecord, 'runId' | 'database' | 'kind'>>): Promise<RunRecord>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  listRuns(database?: string, limit?: number): Promise<RunRecord[]>;

  putSnapshot(snapshot: SnapshotRecord): Promise<void>;
  getSnapshot(snapshotId: string): Promise<SnapshotRecord | undefined>;
  listSnapshots(database?: string): Promise<SnapshotRecord[]>;

  /** Writes (or re-writes, on retry) the record of an API about to be quiesced. */
  putQuiesce(record: QuiesceRecord): Promise<void>;
  listQuiesced(filter?: { readonly database?: string; readonly runId?: string; readonly active?: boolean }): Promise<QuiesceRecord[]>;

  putRehearsal(record: RehearsalRecord): Promise<void>;
  listRehearsals(database?: string): Promise<RehearsalRecord[]>;
}
