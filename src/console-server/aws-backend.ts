import { GetExecutionHistoryCommand, SFNClient, StartExecutionCommand, type HistoryEvent } from '@aws-sdk/client-sfn';
import { randomUUID } from 'node:crypto';
import { DynamoDbLedger } from '../adapters/aws/dynamodb-ledger.ts';
import { SafeshiftError } from '../core/errors.ts';
import type { Ledger, RunRecord } from '../ports.ts';
import type { ConsoleBackend, DatabaseView, QuiesceView, RehearsalView, RunProgress, RunView, SnapshotView } from './backend.ts';
import { LedgerReader } from './ledger-reader.ts';
import { redactSecrets } from './redact.ts';

export interface AwsConsoleBackendOptions {
  /** The ledger's DynamoDB table. */
  readonly ledgerTable: string;
  /** The ARN of the deployed restore state machine (state-machines/restore.asl.json). */
  readonly restoreStateMachineArn: string;
  /** The APIs a restore stops (quiescer specs). @default those the database's latest quiescing run recorded */
  readonly quiesce?: readonly string[];
  /** Show only these databases. @default every database the ledger knows */
  readonly databases?: readonly string[];
  /** @default a new SFNClient with the operator's credentials (the default provider chain) */
  readonly sfn?: SFNClient;
  /** @default a DynamoDbLedger on `ledgerTable` with the operator's credentials */
  readonly ledger?: Ledger;
  /** How often a followed run is polled. @default 2000 */
  readonly pollMs?: number;
}

const ENDED = new Set(['ExecutionSucceeded', 'ExecutionFailed', 'ExecutionAborted', 'ExecutionTimedOut']);

/**
 * The {@link ConsoleBackend} over a deployed stack, with the operator's own AWS credentials: the
 * DynamoDB ledger for everything shown, and the restore state machine (Step Functions) for Restore,
 * followed through the execution's history.
 *
 * What it cannot show: a database's `compatible_from`. That is derived from the migration history
 * inside the database, which an operator's machine usually cannot reach (it is in a VPC); the schema
 * version shown is the one the database's latest run recorded.
 *
 * @example
 * ```ts
 * const backend = new AwsConsoleBackend({ ledgerTable: 'safeshift-ledger', restoreStateMachineArn: arn });
 * const server = await startConsoleServer({ backend });
 * ```
 */
export class AwsConsoleBackend implements ConsoleBackend {
  readonly description: string;
  private readonly reader: LedgerReader;
  private readonly ledger: Ledger;
  private readonly sfn: SFNClient;
  private readonly pollers = new Set<() => void>();
  /** Restores started here, shown as running until their first step records them in the ledger. */
  private readonly started = new Map<string, RunRecord>();

  constructor(private readonly options: AwsConsoleBackendOptions) {
    this.ledger = options.ledger ?? new DynamoDbLedger({ tableName: options.ledgerTable });
    this.sfn = options.sfn ?? new SFNClient({});
    this.reader = new LedgerReader(this.ledger);
    const machine = options.restoreStateMachineArn.split(':').at(-1) ?? options.restoreStateMachineArn;
    this.description = `AWS: ledger table ${options.ledgerTable}, restore state machine ${machine}`;
  }

  async listDatabases(): Promise<DatabaseView[]> {
    const names = (await this.reader.databaseNames()).filter((n) => !this.options.databases || this.options.databases.includes(n));
    return Promise.all(
      names.map(async (name): Promise<DatabaseView> => {
        const [lock, runs, snapshots, quiesced, specs] = await Promise.all([
          this.reader.lockView(name),
          this.ledger.listRuns(name, 20),
          this.reader.listSnapshots(name),
          this.ledger.listQuiesced({ database: name, active: true }),
          this.quiesceSpecs(name),
        ]);
        const last = runs[0];
        return redactSecrets({
          name,
          schemaVersion: recordedVersion(runs),
          compatibleFrom: null,
          raisedBy: null,
          versionNote: "as recorded by the latest run; compatible_from needs the database's history, which this console does not read on AWS",
          ...(lock ? { lock } : {}),
          ...(last ? { lastRun: { runId: last.runId, kind: last.kind, status: last.status, startedAt: last.startedAt } } : {}),
          stillQuiesced: quiesced.length,
          restorableSnapshots: snapshots.length,
          restoreQuiesces: specs,
        });
      }),
    );
  }

  listRuns(database: string, limit?: number): Promise<RunView[]> {
    return this.reader.listRuns(database, limit);
  }

  async getRun(runId: string): Promise<RunView | undefined> {
    const view = await this.reader.getRun(runId);
    const started = this.started.get(runId);
    return view ?? (started && this.reader.runView(started));
  }

  listSnapshots(database: string): Promise<SnapshotView[]> {
    return this.reader.listSnapshots(database);
  }

  listQuiesced(database: string): Promise<QuiesceView[]> {
    return this.reader.listQuiesced(database);
  }

  listRehearsals(database: string): Promise<RehearsalView[]> {
    return this.reader.listRehearsals(database);
  }

  async startRestore(database: string, snapshotId: string): Promise<{ readonly runId: string }> {
    if (this.options.databases && !this.options.databases.includes(database)) {
      throw new SafeshiftError('DATABASE_NOT_FOUND', `this console does not serve database ${database}`);
    }
    await this.reader.checkRestorable(database, snapshotId);
    await this.reader.checkUnlocked(database);
    const runId = randomUUID();
    const quiesce = this.options.quiesce ?? (await this.reader.lastQuiesceSpecs(database));
    // The execution is named after the run, so the console can find it again from the run id alone.
    await this.sfn.send(
      new StartExecutionCommand({
        stateMachineArn: this.options.restoreStateMachineArn,
        name: runId,
        input: JSON.stringify({ run: { runId, kind: 'restore', database, snapshotId, quiesce, rehearsal: false } }),
      }),
    );
    this.started.set(runId, { runId, database, kind: 'restore', status: 'running', startedAt: new Date().toISOString(), snapshotId });
    return { runId };
  }

  /** Polls the execution's history (states entered) and the ledger (how the run ended). */
  followRun(runId: string, listener: (progress: RunProgress) => void): () => void {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const poll = async (): Promise<void> => {
      const [recorded, history] = await Promise.all([this.ledger.getRun(runId).catch(() => undefined), this.history(runId)]);
      const record = recorded ?? this.started.get(runId);
      if (stopped) return;
      const ended = history?.some((e) => ENDED.has(e.type ?? '')) ?? false;
      const done = record ? record.status !== 'running' && (ended || !history) : false;
      if (record) listener(redactSecrets(progressOf(runId, record, history, done)));
      if (done) return;
      timer = setTimeout(() => void poll(), this.options.pollMs ?? 2_000);
    };
    void poll();
    const stop = (): void => {
      stopped = true;
      clearTimeout(timer);
      this.pollers.delete(stop);
    };
    this.pollers.add(stop);
    return stop;
  }

  /** Restores run in Step Functions, not in this process: there is never one to wait for. */
  hasRunningRestores(): boolean {
    return false;
  }

  /** Closing only stops following runs; the restores go on in Step Functions. */
  close(): Promise<void> {
    for (const stop of [...this.pollers]) stop();
    // A client handed in belongs to the caller.
    if (!this.options.sfn) this.sfn.destroy();
    return Promise.resolve();
  }

  private async quiesceSpecs(database: string): Promise<string[]> {
    return [...(this.options.quiesce ?? (await this.reader.lastQuiesceSpecs(database)))];
  }

  /** The execution's events, or undefined when there is no execution of that name (a run started elsewhere). */
  private async history(runId: string): Promise<HistoryEvent[] | undefined> {
    const executionArn = this.options.restoreStateMachineArn.replace(':stateMachine:', ':execution:') + `:${runId}`;
    const events: HistoryEvent[] = [];
    let nextToken: string | undefined;
    try {
      do {
        const page = await this.sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000, ...(nextToken ? { nextToken } : {}) }));
        events.push(...(page.events ?? []));
        nextToken = page.nextToken;
      } while (nextToken);
    } catch {
      return undefined;
    }
    return events;
  }
}

/** The schema version a database is at, as far as its runs recorded: the latest that says so. */
function recordedVersion(runs: readonly RunRecord[]): string | null {
  for (const run of runs) {
    if (run.status === 'succeeded' && run.toVersion !== undefined) return run.toVersion;
    if ((run.status === 'rolled-back' || run.status === 'refused') && run.fromVersion !== undefined) return run.fromVersion;
  }
  return null;
}

function progressOf(runId: string, record: RunRecord, history: readonly HistoryEvent[] | undefined, done: boolean): RunProgress {
  const states = history
    ? history.flatMap((e) => {
        const name = e.stateEnteredEventDetails?.name;
        return e.type?.endsWith('StateEntered') && name ? [{ state: name, enteredAt: (e.timestamp ?? new Date()).toISOString() }] : [];
      })
    : (record.timeline ?? []).map((t) => ({ state: t.state, enteredAt: t.enteredAt }));
  return {
    runId,
    database: record.database,
    kind: record.kind,
    states,
    done,
    status: done ? record.status : 'running',
    ...(record.error ? { error: record.error } : {}),
  };
}
