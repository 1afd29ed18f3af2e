import { randomUUID } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { openLocalPorts } from '../adapters/local/local-workflows.ts';
import { connectPg, withDatabase } from '../adapters/local/pg-connection.ts';
import { PostgresLedger } from '../adapters/local/postgres-ledger.ts';
import { compatibilityOf, type CompatibilityRecord } from '../core/compat.ts';
import { SafeshiftError } from '../core/errors.ts';
import { DEFAULT_HISTORY, HistoryTable, type HistoryLocation } from '../core/history.ts';
import { checkIdentifierOption } from '../core/identifiers.ts';
import { silentLogger, type Logger } from '../core/logger.ts';
import type { ConsoleBackend, DatabaseView, QuiesceView, RehearsalView, RunProgress, RunView, SnapshotView } from './backend.ts';
import { LedgerReader } from './ledger-reader.ts';
import { RunTracker } from './run-tracker.ts';
import { redactSecrets, redactText } from './redact.ts';

export interface LocalConsoleBackendOptions {
  /** A URL of the server with rights to create databases (the one `--database-url` or the embedded PostgreSQL gives). */
  readonly serverUrl: string;
  /**
   * The migrations folder; a restore runs the checks in its sibling `verify/` on the restored database.
   * @default 'migrations' (relative to the working directory)
   */
  readonly migrationsDir?: string;
  /** @default `<migrationsDir>/../verify` when it exists */
  readonly verifyDir?: string;
  readonly history?: HistoryLocation;
  /**
   * The APIs a restore stops and resumes (quiescer specs). @default the ones the database's latest
   * quiescing run recorded in the ledger, so a restore stops what its upgrade stopped.
   */
  readonly quiesce?: readonly string[];
  /** Show only these databases. @default every database the ledger knows */
  readonly databases?: readonly string[];
  /** Where restores started from the console log their progress. @default silent */
  readonly log?: Logger;
}

/** How long a database's versions are reused before its history is read again. */
const VERSION_CACHE_MS = 5_000;

/**
 * The {@link ConsoleBackend} over the local runtime: the Postgres ledger in the control database,
 * each database's history read directly, and restores run in this process by the same state machine
 * `safeshift restore` runs (in the background; the server answers at once with the run id).
 *
 * @example
 * ```ts
 * const backend = await LocalConsoleBackend.open({ serverUrl: 'postgres://postgres:pw@127.0.0.1:5432/postgres' });
 * const server = await startConsoleServer({ backend });
 * // ... later
 * await server.close();
 * await backend.close();
 * ```
 */
export class LocalConsoleBackend implements ConsoleBackend {
  readonly description: string;
  private readonly reader: LedgerReader;
  private readonly tracker = new RunTracker();
  private readonly versions = new Map<string, { at: number; record: CompatibilityRecord; note?: string }>();
  private readonly secrets: string[];

  private constructor(
    private readonly options: LocalConsoleBackendOptions,
    private readonly ledger: PostgresLedger,
    private readonly admin: pg.Pool,
  ) {
    const url = new URL(options.serverUrl);
    // The server's own password must never reach the page, even inside a driver's error message.
    this.secrets = [decodeURIComponent(url.password)].filter(Boolean);
    this.reader = new LedgerReader(ledger, this.secrets);
    this.description = `local PostgreSQL at ${url.hostname}:${url.port || '5432'} (ledger: ${ledger.database})`;
  }

  /** Opens the ledger (creating its control database when missing) and a small pool for catalogue reads. */
  static async open(options: LocalConsoleBackendOptions): Promise<LocalConsoleBackend> {
    const ledger = await PostgresLedger.open(options.serverUrl);
    const admin = new pg.Pool({ connectionString: options.serverUrl, max: 2, application_name: 'safeshift console' });
    admin.on('error', () => undefined);
    return new LocalConsoleBackend(options, ledger, admin);
  }

  async listDatabases(): Promise<DatabaseView[]> {
    const names = (await this.reader.databaseNames()).filter((n) => !this.options.databases || this.options.databases.includes(n));
    const existing = await this.existingDatabases(names);
    return Promise.all(
      names.map(async (name): Promise<DatabaseView> => {
        const [lock, runs, snapshots, quiesced, specs] = await Promise.all([
          this.reader.lockView(name),
          this.ledger.listRuns(name, 1),
          this.listSnapshots(name),
          this.ledger.listQuiesced({ database: name, active: true }),
          this.quiesceSpecs(name),
        ]);
        const versions = await this.versionsOf(name, existing.has(name), !!lock || this.tracker.isBusy(name));
        const last = runs[0];
        return redactSecrets(
          {
            name,
            schemaVersion: versions.record.schemaVersion,
            compatibleFrom: versions.record.compatibleFrom,
            raisedBy: versions.record.raisedBy,
            ...(versions.note ? { versionNote: versions.note } : {}),
            ...(lock ? { lock } : {}),
            ...(last ? { lastRun: { runId: last.runId, kind: last.kind, status: last.status, startedAt: last.startedAt } } : {}),
            stillQuiesced: quiesced.length,
            restorableSnapshots: snapshots.length,
            restoreQuiesces: specs,
          },
          this.secrets,
        );
      }),
    );
  }

  async listRuns(database: string, limit?: number): Promise<RunView[]> {
    const views = await this.reader.listRuns(database, limit, (id) => this.tracker.progress(id));
    // A restore started a moment ago may not have written its run yet: show it from what is known.
    const pending = this.tracker.pending(database).filter((p) => !views.some((v) => v.runId === p.runId));
    return [...pending.map((p) => this.fromProgress(p)), ...views];
  }

  async getRun(runId: string): Promise<RunView | undefined> {
    const live = this.tracker.progress(runId);
    return (await this.reader.getRun(runId, live)) ?? (live && this.fromProgress(live));
  }

  /** The restorable snapshots whose template database is still on the server. */
  async listSnapshots(database: string): Promise<SnapshotView[]> {
    const snapshots = await this.reader.listSnapshots(database);
    const existing = await this.existingDatabases(snapshots.map((s) => s.snapshotId));
    return snapshots.filter((s) => existing.has(s.snapshotId));
  }

  listQuiesced(database: string): Promise<QuiesceView[]> {
    return this.reader.listQuiesced(database);
  }

  listRehearsals(database: string): Promise<RehearsalView[]> {
    return this.reader.listRehearsals(database);
  }

  async startRestore(database: string, snapshotId: string): Promise<{ readonly runId: string }> {
    checkIdentifierOption(database, 'database');
    checkIdentifierOption(snapshotId, 'snapshot');
    if (this.options.databases && !this.options.databases.includes(database)) {
      throw new SafeshiftError('DATABASE_NOT_FOUND', `this console does not serve database ${database}`);
    }
    const runId = randomUUID();
    // Reserved before the first await, so two presses at once cannot both start a restore.
    this.tracker.reserve(runId, database, 'restore');
    try {
      await this.reader.checkRestorable(database, snapshotId);
      if (!(await this.existingDatabases([snapshotId])).has(snapshotId)) {
        throw new SafeshiftError('SNAPSHOT_NOT_FOUND', `snapshot ${snapshotId} is recorded but no longer on the server; it cannot be restored`);
      }
      await this.reader.checkUnlocked(database);
      const quiesce = this.options.quiesce ?? (await this.reader.lastQuiesceSpecs(database));
      const ports = await openLocalPorts({
        serverUrl: this.options.serverUrl,
        database,
        migrationsDir: path.resolve(this.options.migrationsDir ?? 'migrations'),
        ...(this.options.verifyDir ? { verifyDir: this.options.verifyDir } : {}),
        history: this.options.history ?? DEFAULT_HISTORY,
        log: this.options.log ?? silentLogger,
      });
      this.tracker.run(
        runId,
        ports,
        { kind: 'restore', database, snapshotId, quiesce, rehearsal: false },
        {
          secrets: this.secrets,
          // The restore changed the database's history: the next look must read it, not the cache.
          onDone: () => this.versions.delete(database),
        },
      );
      return { runId };
    } catch (error) {
      this.tracker.release(runId);
      throw error;
    }
  }

  followRun(runId: string, listener: (progress: RunProgress) => void): () => void {
    return this.tracker.follow(runId, listener, () => this.ledger.getRun(runId));
  }

  hasRunningRestores(): boolean {
    return this.tracker.anyRunning();
  }

  async close(): Promise<void> {
    await this.tracker.close();
    await Promise.allSettled([this.ledger.close(), this.admin.end()]);
  }

  private fromProgress(p: RunProgress): RunView {
    return this.reader.runView(
      {
        runId: p.runId,
        database: p.database,
        kind: p.kind,
        status: p.status,
        startedAt: p.states[0]?.enteredAt ?? new Date().toISOString(),
        ...(p.error ? { error: p.error } : {}),
      },
      p,
    );
  }

  private async quiesceSpecs(database: string): Promise<string[]> {
    const specs = this.options.quiesce ?? (await this.reader.lastQuiesceSpecs(database));
    return specs.map((s) => redactText(s, this.secrets));
  }

  /** Which of these names are databases on the server (a snapshot is a template database). */
  private async existingDatabases(names: readonly string[]): Promise<Set<string>> {
    if (names.length === 0) return new Set();
    const { rows } = await this.admin.query<{ datname: string }>('select datname from pg_database where datname = any($1::text[])', [names]);
    return new Set(rows.map((r) => r.datname));
  }

  /**
   * The compatibility record from the database's history. Not read while a run holds the database:
   * a session of ours could hold up its snapshot or swap, which need the database to themselves.
   */
  private async versionsOf(name: string, exists: boolean, busy: boolean): Promise<{ record: CompatibilityRecord; note?: string }> {
    const cached = this.versions.get(name);
    const none: CompatibilityRecord = { schemaVersion: null, compatibleFrom: null, raisedBy: null };
    if (!exists) return { record: none, note: 'the database does not exist on the server' };
    if (busy)
      return {
        record: cached?.record ?? none,
        note: cached ? 'a run holds the database; shown as last read' : 'a run holds the database; versions are read once it ends',
      };
    if (cached && Date.now() - cached.at < VERSION_CACHE_MS) return cached;
    try {
      const client = await connectPg(withDatabase(this.options.serverUrl, name), { applicationName: 'safeshift console', connectTimeoutMs: 5_000 });
      try {
        const record = compatibilityOf(await new HistoryTable(client, this.options.history ?? DEFAULT_HISTORY).read());
        const entry = { at: Date.now(), record, ...(record.schemaVersion === null ? { note: 'no safeshift history in this database' } : {}) };
        this.versions.set(name, entry);
        return entry;
      } finally {
        await client.end().catch(() => undefined);
      }
    } catch (error) {
      return { record: cached?.record ?? none, note: `could not read its history: ${redactText((error as Error).message, this.secrets)}` };
    }
  }
}
