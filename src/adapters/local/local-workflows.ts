import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_HISTORY, type HistoryLocation } from '../../core/history.ts';
import { silentLogger, type Logger } from '../../core/logger.ts';
import type { Json, QuiesceRecord, RunRecord, TimelineEntry } from '../../ports.ts';
import type { AslDefinition } from '../../steps/asl-builder.ts';
import type { StepContext } from '../../steps/context.ts';
import type { RunInput } from '../../steps/state.ts';
import { LOCAL_LOCK_TTL_MS, thisProcess } from '../../steps/run-liveness.ts';
import { rehearsalWorkflow, restoreWorkflow, upgradeWorkflow } from '../../steps/workflows.ts';
import { LocalConnector } from './local-connector.ts';
import { LocalQuiescerFactory } from './local-quiescers.ts';
import { runLocally, type StepInvoker, type TaskCheckpoint } from './local-runner.ts';
import { startHeartbeat, watchStopSignals } from './run-keeper.ts';
import { reusingSessions } from './pg-connection.ts';
import { PostgresLedger } from './postgres-ledger.ts';
import { TemplateFleet } from './template-fleet.ts';
import { LocalWriteFence } from './write-fence.ts';

/** Where a local run happens. */
export interface LocalTarget {
  /** A URL of the server with rights to create databases, pointing at its maintenance database. */
  readonly serverUrl: string;
  /** The production database's name on that server. */
  readonly database: string;
  readonly migrationsDir: string;
  /** @default `<migrationsDir>/../verify` when it exists */
  readonly verifyDir?: string;
  readonly history?: HistoryLocation;
  readonly log?: Logger;
}

/** The local ports, opened together and closed together. */
export interface LocalPorts {
  readonly ctx: StepContext;
  /** The server URL they were opened with: a run on them reuses its maintenance sessions to it ({@link MAINTENANCE_SESSIONS}). */
  readonly serverUrl?: string;
  close(): Promise<void>;
}

/**
 * The sessions a run opens on the server's maintenance database for a moment and then ends: the
 * fleet's, the db-role quiescers' and the connector's (ending sessions, checking a target). A run
 * opens a few dozen; within one it takes them again from the ones it ended ({@link reusingSessions}),
 * sparing the server a backend start and a login each time. Not the run's own sessions (named after
 * it): the rollback and `safeshift recover` end whatever of those is still there, and count it.
 */
const MAINTENANCE_SESSIONS = ['safeshift fleet', 'safeshift quiescer', 'safeshift'];

/**
 * Opens the local adapters for a target: the template-database fleet, connections, the ledger in
 * its control database, and the db-role/http quiescers.
 */
export async function openLocalPorts(target: LocalTarget): Promise<LocalPorts> {
  const ledger = await PostgresLedger.open(target.serverUrl);
  const fleet = new TemplateFleet(target.serverUrl, { log: (line) => target.log?.info(line) });
  const connector = new LocalConnector(target.serverUrl);
  const defaultVerify = path.resolve(target.migrationsDir, '..', 'verify');
  const verifyDir = target.verifyDir ?? (existsSync(defaultVerify) ? defaultVerify : undefined);
  const ctx: StepContext = {
    fleet,
    connector,
    ledger,
    quiescers: new LocalQuiescerFactory(target.serverUrl),
    writeFence: new LocalWriteFence(target.serverUrl),
    migrationsDir: target.migrationsDir,
    history: target.history ?? DEFAULT_HISTORY,
    log: target.log ?? silentLogger,
    ...(verifyDir ? { verifyDir } : {}),
  };
  return {
    ctx,
    serverUrl: target.serverUrl,
    close: async () => {
      await Promise.allSettled([fleet.close(), ledger.close()]);
    },
  };
}

/** The outcome of a local workflow run, as the CLI and the console report it. */
export interface WorkflowReport {
  readonly run: RunRecord;
  readonly quiesced: readonly QuiesceRecord[];
  readonly timeline: readonly TimelineEntry[];
  readonly transitions: number;
  /** From the first API quiesced to the last resumed, when any was. */
  readonly quiescedWindowMs: number | null;
}

export interface WorkflowOptions {
  /** Progress: each state as it is entered. */
  readonly onState?: (state: string) => void;
  /** How each Task calls its step (fault-injection tests wrap the default). */
  readonly invoke?: StepInvoker;
  /** Each Task's local timeout in seconds. @default LOCAL_TASK_TIMEOUT_SECONDS (a day) */
  readonly taskTimeoutSeconds?: number;
  /** Every retry's wait in milliseconds, instead of the ASL's back-off (for fault-injection tests). @default the ASL's back-off */
  readonly retryIntervalMs?: number;
  /**
   * Ctrl-C and SIGTERM: the first asks the run to stop at the next safe point (refused before
   * anything changed, rolled back after quiesce); the second exits at once, leaving the checkpoint
   * to `safeshift recover`. For the CLI; a library caller keeps its own signal handling. @default false
   */
  readonly stopOnSignals?: boolean;
  /** Asks the run to stop at the next safe point when aborted, as a first Ctrl-C does. */
  readonly stopSignal?: AbortSignal;
}

const DEFINITIONS: Record<RunInput['kind'], () => AslDefinition> = {
  upgrade: upgradeWorkflow,
  restore: restoreWorkflow,
  rehearsal: rehearsalWorkflow,
};

/**
 * Runs an upgrade, restore or rehearsal locally, from the same ASL that AWS runs, and records the
 * timeline and transition count in the ledger. The run is checkpointed before every Task and its
 * owner (this process) keeps a heartbeat, so a run whose process dies shows as interrupted and
 * `safeshift recover` continues it ({@link continueWorkflow}).
 *
 * @example
 * ```ts
 * const ports = await openLocalPorts({ serverUrl, database: 'shop', migrationsDir: 'examples/migrations' });
 * const report = await runWorkflow(ports, { kind: 'upgrade', database: 'shop', quiesce: ['db-role:shop_app'] });
 * ```
 */
export async function runWorkflow(
  ports: LocalPorts,
  input: Omit<RunInput, 'runId'> & { runId?: string },
  options: WorkflowOptions = {},
): Promise<WorkflowReport> {
  const run: RunInput = { rehearsal: true, strategy: 'in-place', quiesce: [], ...input, runId: input.runId ?? randomUUID() };
  return execute(ports, run, { input: { run } }, options);
}

/** Where {@link continueWorkflow} picks a run up. */
export interface Continuation {
  /** The Task to start at, and the state it gets: a checkpoint's. */
  readonly startAt: string;
  readonly input: Json;
  readonly attempts?: Readonly<Record<string, number>>;
  /** What the run went through before, kept at the head of its timeline. */
  readonly timeline?: readonly TimelineEntry[];
  /** Stop at once (roll back, or refuse before anything changed) instead of going on. */
  readonly stopReason?: string;
}

/**
 * Continues a recorded run of its workflow from a Task, as its own execution would have: how
 * `safeshift recover` finishes a run whose process died. The caller has made sure nothing of the
 * old process is still working (its sessions ended) and holds the run's lock.
 */
export async function continueWorkflow(ports: LocalPorts, record: RunRecord, from: Continuation, options: WorkflowOptions = {}): Promise<WorkflowReport> {
  const input = from.input as { run?: RunInput } | null;
  const run = input?.run ?? { runId: record.runId, kind: record.kind, database: record.database };
  return execute(ports, run, { ...from, input: { ...(input ?? {}), run } }, options);
}

interface Start {
  readonly input: Readonly<Record<string, unknown>>;
  readonly startAt?: string;
  readonly attempts?: Readonly<Record<string, number>>;
  readonly timeline?: readonly TimelineEntry[];
  readonly stopReason?: string;
}

async function execute(ports: LocalPorts, run: RunInput, start: Start, options: WorkflowOptions): Promise<WorkflowReport> {
  const { serverUrl } = ports;
  if (serverUrl === undefined) return executeRun(ports, run, start, options);
  return reusingSessions(serverUrl, MAINTENANCE_SESSIONS, () => executeRun(ports, run, start, options));
}

async function executeRun(ports: LocalPorts, run: RunInput, start: Start, options: WorkflowOptions): Promise<WorkflowReport> {
  const { ledger } = ports.ctx;
  const owner = thisProcess();
  const ctx = { ...ports.ctx, owner, lockTtlMs: ports.ctx.lockTtlMs ?? LOCAL_LOCK_TTL_MS };
  let stopReason = start.stopReason;
  let current: string | undefined;
  const requestStop = (reason: string) => {
    if (stopReason !== undefined) return;
    stopReason = reason;
    ports.ctx.log.warn(
      `${reason}: stopping run ${run.runId} at the next safe point. The step under way finishes; then the run is refused if nothing was changed yet, ` +
        'or production is brought back to its state before the run and every API resumed. Press Ctrl-C again to leave it as it is for `safeshift recover`.',
    );
    ledger.updateRun(run.runId, { stopRequested: { at: new Date().toISOString(), reason } }).catch(() => undefined);
  };
  const abort = () => requestStop('stop requested');
  options.stopSignal?.addEventListener('abort', abort, { once: true });
  if (options.stopSignal?.aborted) abort();
  const signals = options.stopOnSignals
    ? watchStopSignals({
        onFirst: requestStop,
        onSecond: (signal) =>
          ports.ctx.log.warn(
            `${signal} again: leaving run ${run.runId} as it is${current ? ` at ${current}` : ''}; \`safeshift ` +
              `recover --run ${run.runId}\` continues it, or rolls it back, and resumes every API`,
          ),
      })
    : undefined;
  const heartbeat = startHeartbeat(ledger, run.database, run.runId, ctx.lockTtlMs);
  const checkpoint = async (cp: TaskCheckpoint) => {
    current = cp.state;
    await ledger
      .updateRun(run.runId, {
        heartbeatAt: new Date().toISOString(),
        timeline: [...(start.timeline ?? []), ...cp.timeline],
        checkpoint: {
          state: cp.state,
          input: cp.input,
          attempts: cp.attempts,
          at: new Date().toISOString(),
          migrationsDir: ports.ctx.migrationsDir,
          ...(ports.ctx.verifyDir ? { verifyDir: ports.ctx.verifyDir } : {}),
        },
      })
      .catch((error: unknown) => {
        // The first Task (preflight) records the run; before it there is nothing to continue.
        if ((error as { code?: string }).code !== 'RUN_NOT_FOUND') throw error;
      });
  };
  let result: Awaited<ReturnType<typeof runLocally>>;
  try {
    result = await runLocally({
      definition: DEFINITIONS[run.kind](),
      input: start.input,
      ctx,
      checkpoint,
      stopRequested: () => stopReason,
      ...(start.startAt ? { startAt: start.startAt } : {}),
      ...(start.attempts ? { attempts: start.attempts } : {}),
      ...(options.onState ? { onState: (s: string) => options.onState?.(s) } : {}),
      ...(options.invoke ? { invoke: options.invoke } : {}),
      ...(options.taskTimeoutSeconds !== undefined ? { taskTimeoutSeconds: options.taskTimeoutSeconds } : {}),
      ...(options.retryIntervalMs !== undefined ? { retryIntervalMs: options.retryIntervalMs } : {}),
    });
  } finally {
    await heartbeat.stop();
    signals?.dispose();
    options.stopSignal?.removeEventListener('abort', abort);
  }
  let record = await ledger.getRun(run.runId);
  // Without a record, the machine failed before its first step could record the run (a broken definition or binding).
  const why: unknown = result.error?.Cause ?? result.error?.Error;
  record ??= await ledger.startRun({
    runId: run.runId,
    database: run.database,
    kind: run.kind,
    status: 'needs-operator',
    startedAt: new Date().toISOString(),
    error: { code: 'INTERNAL', message: `the workflow failed before it started: ${String(why)}` },
  });
  const timeline = [...(start.timeline ?? []), ...result.timeline];
  const transitions = (record.transitions ?? 0) + result.transitions;
  record = await ledger.updateRun(run.runId, { timeline, transitions });
  const quiesced = await ledger.listQuiesced({ runId: run.runId });
  const starts = quiesced
    .map((q) => q.quiescedAt)
    .filter((t): t is string => !!t)
    .map(Date.parse);
  const ends = quiesced
    .map((q) => q.resumedAt)
    .filter((t): t is string => !!t)
    .map(Date.parse);
  const quiescedWindowMs = starts.length && ends.length ? Math.max(...ends) - Math.min(...starts) : null;
  return { run: record, quiesced, timeline, transitions, quiescedWindowMs };
}
