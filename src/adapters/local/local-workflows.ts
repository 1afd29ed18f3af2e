import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_HISTORY, type HistoryLocation } from '../../core/history.ts';
import { silentLogger, type Logger } from '../../core/logger.ts';
import type { QuiesceRecord, RunRecord, TimelineEntry } from '../../ports.ts';
import type { AslDefinition } from '../../steps/asl-builder.ts';
import type { StepContext } from '../../steps/context.ts';
import type { RunInput } from '../../steps/state.ts';
import { rehearsalWorkflow, restoreWorkflow, upgradeWorkflow } from '../../steps/workflows.ts';
import { LocalConnector } from './local-connector.ts';
import { LocalQuiescerFactory } from './local-quiescers.ts';
import { runLocally, type StepInvoker } from './local-runner.ts';
import { PostgresLedger } from './postgres-ledger.ts';
import { TemplateFleet } from './template-fleet.ts';

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
  close(): Promise<void>;
}

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
    fleet, connector, ledger, quiescers: new LocalQuiescerFactory(target.serverUrl),
    migrationsDir: target.migrationsDir, history: target.history ?? DEFAULT_HISTORY, log: target.log ?? silentLogger,
    ...(verifyDir ? { verifyDir } : {}),
  };
  return {
    ctx,
    close: async () => {
      await Promise.allSettled([fleet.close(), ledger.close(), (connector as { close?: () => Promise<void> }).close?.()]);
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
}

const DEFINITIONS: Record<RunInput['kind'], () => AslDefinition> = {
  upgrade: upgradeWorkflow, restore: restoreWorkflow, rehearsal: rehearsalWorkflow,
};

/**
 * Runs an upgrade, restore or rehearsal locally, from the same ASL that AWS runs, and records the
 * timeline and transition count in the ledger.
 *
 * @example
 * ```ts
 * const ports = await openLocalPorts({ serverUrl, database: 'shop', migrationsDir: 'examples/migrations' });
 * const report = await runWorkflow(ports, { kind: 'upgrade', database: 'shop', quiesce: ['db-role:shop_app'] });
 * ```
 */
export async function runWorkflow(ports: LocalPorts, input: Omit<RunInput, 'runId'> & { runId?: string }, options: WorkflowOptions = {}): Promise<WorkflowReport> {
  const run: RunInput = { rehearsal: true, strategy: 'in-place', quiesce: [], ...input, runId: input.runId ?? randomUUID() };
  const result = await runLocally({
    definition: DEFINITIONS[run.kind](), input: { run }, ctx: ports.ctx,
    ...(options.onState ? { onState: (s: string) => options.onState?.(s) } : {}),
    ...(options.invoke ? { invoke: options.invoke } : {}),
    ...(options.taskTimeoutSeconds !== undefined ? { taskTimeoutSeconds: options.taskTimeoutSeconds } : {}),
    ...(options.retryIntervalMs !== undefined ? { retryIntervalMs: options.retryIntervalMs } : {}),
  });
  const { ledger } = ports.ctx;
  let record = await ledger.getRun(run.runId);
  if (!record) {
    // The machine failed before its first step could record the run (a broken definition or binding).
    record = await ledger.startRun({ runId: run.runId, database: run.database, kind: run.kind, status: 'needs-operator', startedAt: new Date().toISOString(),
      error: { code: 'INTERNAL', message: `the workflow failed before it started: ${String(result.error?.Cause ?? result.error?.Error)}` } });
  }
  record = await ledger.updateRun(run.runId, { timeline: result.timeline, transitions: result.transitions });
  const quiesced = await ledger.listQuiesced({ runId: run.runId });
  const starts = quiesced.map((q) => q.quiescedAt).filter((t): t is string => !!t).map(Date.parse);
  const ends = quiesced.map((q) => q.resumedAt).filter((t): t is string => !!t).map(Date.parse);
  const quiescedWindowMs = starts.length && ends.length ? Math.max(...ends) - Math.min(...starts) : null;
  return { run: record, quiesced, timeline: result.timeline, transitions: result.transitions, quiescedWindowMs };
}
