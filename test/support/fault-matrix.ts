import { expect } from 'vitest';
import { openLocalPorts, runWorkflow, type LocalPorts, type WorkflowReport } from '../../src/adapters/local/local-workflows.ts';
import type { StepInvoker } from '../../src/adapters/local/local-runner.ts';
import { runStep } from '../../src/steps/registry.ts';
import type { RunStatus } from '../../src/ports.ts';
import type { RunInput } from '../../src/steps/state.ts';
import { testServerUrl } from './database.ts';
import { EXAMPLE_MIGRATIONS, keptDatabases, leftovers, productionState, roleState, type CaseDatabase, type ShopTemplate } from './shop.ts';
import type { ShopLane } from './case-pool.ts';

/** How a fault is injected into one Task state, once. */
export type FaultMode = 'throws' | 'crashes-after-side-effect' | 'delivered-twice';
export const FAULT_MODES: readonly FaultMode[] = ['throws', 'crashes-after-side-effect', 'delivered-twice'];

/** An error no step raises by itself. */
export class InjectedFault extends Error {
  constructor(state: string, mode: FaultMode) {
    super(`injected fault: ${state} ${mode}`);
    this.name = 'InjectedFault';
  }
}

/** One fault at one state (or none). */
export interface Fault {
  readonly state: string;
  readonly mode: FaultMode;
  /** Which entry of a looping state (the second migration, a later poll), 1-based. @default 1 */
  readonly entry?: number;
}

/**
 * Wraps the real steps so that each listed fault fires once, at its state's entry: the step throws
 * before doing anything, or does its work and then throws (a crash before returning), or is delivered
 * twice (Step Functions' at-least-once delivery) and the second result is returned.
 */
export function faultInjector(ports: LocalPorts, faults: readonly Fault[], fired: Fault[]): StepInvoker {
  const pending = [...faults];
  const entries = new Map<string, number>();
  return async (step, input, stateName, ctx) => {
    const entry = (entries.get(stateName) ?? 0) + 1;
    entries.set(stateName, entry);
    const i = pending.findIndex((f) => f.state === stateName && (f.entry ?? 1) === entry);
    if (i < 0) return runStep(step, input, ctx);
    const [fault] = pending.splice(i, 1);
    if (!fault) return runStep(step, input, ctx);
    fired.push(fault);
    if (fault.mode === 'throws') throw new InjectedFault(stateName, fault.mode);
    // The step runs, side effects and all; its answer is lost (a crash after them, or a delivery that is repeated).
    await runStep(step, input, ctx);
    if (fault.mode === 'crashes-after-side-effect') throw new InjectedFault(stateName, fault.mode);
    return runStep(step, input, ctx);
  };
}

/**
 * Every retry's wait in a fault-matrix run: faults at the persistent states are retried, and the
 * ASL's real back-off (seconds, jittered) would make the matrix take minutes for nothing it tests.
 */
export const FAULT_RETRY_INTERVAL_MS = 20;

/**
 * The local ports of a database (by name, or a case's copy) for the duration of `fn`, closed after.
 *
 * @example
 * ```ts
 * const lock = await withPorts(db, (p) => p.ctx.ledger.getLock(db.database));
 * ```
 */
export async function withPorts<T>(database: string | { readonly database: string }, fn: (ports: LocalPorts) => Promise<T>): Promise<T> {
  const name = typeof database === 'string' ? database : database.database;
  const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: name, migrationsDir: EXAMPLE_MIGRATIONS });
  try {
    return await fn(ports);
  } finally {
    await ports.close();
  }
}

/** Runs a workflow on a database with local ports (closed afterwards), retries waiting {@link FAULT_RETRY_INTERVAL_MS}. */
export async function runOn(
  shop: ShopTemplate,
  db: CaseDatabase,
  input: Omit<RunInput, 'runId' | 'database'>,
  faults: readonly Fault[] = [],
): Promise<{ report: WorkflowReport; fired: Fault[] }> {
  const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: db.database, migrationsDir: EXAMPLE_MIGRATIONS });
  const fired: Fault[] = [];
  try {
    const report = await runWorkflow(
      ports,
      { ...input, database: db.database, quiesce: [`db-role:${shop.appRole}`] },
      {
        invoke: faultInjector(ports, faults, fired),
        retryIntervalMs: FAULT_RETRY_INTERVAL_MS,
      },
    );
    return { report, fired };
  } finally {
    await ports.close();
  }
}

/** The later entries of looping Task states in a run (a state's second migration, a later poll), in order. */
export function laterEntries(report: WorkflowReport, definition: { States: Record<string, Record<string, unknown>> }): { state: string; entry: number }[] {
  const seen = new Map<string, number>();
  const out: { state: string; entry: number }[] = [];
  for (const t of report.timeline) {
    if (definition.States[t.state]?.Type !== 'Task') continue;
    const entry = (seen.get(t.state) ?? 0) + 1;
    seen.set(t.state, entry);
    if (entry > 1) out.push({ state: t.state, entry });
  }
  return out;
}

/** The Task states a run entered, in order, each once. */
export function taskStates(report: WorkflowReport, definition: { States: Record<string, Record<string, unknown>> }): string[] {
  const seen = new Set<string>();
  for (const t of report.timeline) if (definition.States[t.state]?.Type === 'Task') seen.add(t.state);
  return [...seen];
}

/** Where a Catch leads, as the status the run then ends with (workflows.ts). */
const ENDINGS: Readonly<Record<string, RunStatus>> = {
  RollbackPlan: 'rolled-back',
  FinishRefused: 'refused',
  RecordRehearsalFailure: 'refused',
  FinishNeedsOperator: 'needs-operator',
};

interface Definition {
  readonly States: Record<string, Record<string, unknown>>;
}

/**
 * The one status a failure in `state` must give, from the machine's definition, never from what a run did:
 * - a Task that retries every error (`persistent`: Retry on States.ALL) absorbs one failure, so the
 *   run ends as it would have without it (`unfaulted`: succeeded, or rolled-back for a run already on
 *   its rollback path);
 * - a Task that fails for good (no such Retry, or a failure that keeps coming back through every
 *   attempt) ends where its Catch leads: RollbackPlan brings production back (rolled-back);
 *   FinishRefused, and RecordRehearsalFailure whose path ends in FinishRefused, refuse the run (every
 *   Task before Quiesce catches there: nothing of production was changed yet); FinishNeedsOperator
 *   says an operator must look (a failure on the rollback path after its retries).
 */
export function failureOutcome(definition: Definition, state: string, unfaulted: RunStatus, keepsFailing = false): RunStatus {
  const task = definition.States[state];
  if (!task) throw new Error(`no state ${state} in the definition`);
  const retries = (task.Retry ?? []) as { ErrorEquals: string[] }[];
  if (!keepsFailing && retries.some((r) => r.ErrorEquals.includes('States.ALL'))) return unfaulted;
  const catches = (task.Catch ?? []) as { ErrorEquals: string[]; Next: string }[];
  const next = catches.find((c) => c.ErrorEquals.includes('States.ALL'))?.Next;
  const ending = next === undefined ? undefined : ENDINGS[next];
  if (!ending) throw new Error(`${state} has no Catch of every error leading to a known ending (${String(next)})`);
  return ending;
}

/** The one outcome a single Task fault must give: a repeated delivery changes nothing (the outcome of no fault); otherwise {@link failureOutcome}. */
export function expectedOutcome(definition: Definition, fault: Fault): RunStatus {
  return fault.mode === 'delivered-twice' ? 'succeeded' : failureOutcome(definition, fault.state, 'succeeded');
}

/**
 * The invariants after any fault: production is exactly as before or fully upgraded (and the status
 * says which), every quiesced API is back to its recorded state, the ledger has a terminal record,
 * no clone or temporary database is left, and the lock is released.
 */
export async function expectSafeOutcome(
  opts: ShopLane & {
    readonly db: CaseDatabase;
    readonly report: WorkflowReport;
    readonly label: string;
    /** The one outcome this case must have ({@link expectedOutcome}); "any safe one" is not an assertion. */
    readonly expected: RunStatus;
  },
): Promise<void> {
  const { report, db, label } = opts;
  expect(report.run.status, `${label}: status ${report.run.status} ${report.run.error?.message ?? ''}`).toBe(opts.expected);
  // Read on one session: the run is over, so nothing changes between the reads.
  const { state, role, left, kept } = await db.withClient(async (c) => ({
    state: await productionState(c),
    role: await roleState(c, opts.shop.appRole, db.database),
    left: await leftovers(c, db.database),
    kept: await keptDatabases(c, db.database),
  }));
  if (report.run.status === 'succeeded') expect(state, `${label}: production fully upgraded`).toEqual(opts.after);
  else expect(state, `${label}: production exactly as before`).toEqual(opts.before);
  if (report.run.status === 'succeeded') expect(report.quiesced.length, `${label}: the API was quiesced and recorded`).toBeGreaterThan(0);
  expect(
    report.quiesced.every((q) => q.status === 'resumed' && q.resumedAt),
    `${label}: every API resumed`,
  ).toBe(true);
  expect(role, `${label}: role rights put back`).toEqual(opts.roleBefore);
  expect(left, `${label}: no temporary database left`).toEqual([]);
  const ports = await openLocalPorts({ serverUrl: testServerUrl(), database: db.database, migrationsDir: EXAMPLE_MIGRATIONS });
  try {
    expect(await ports.ctx.ledger.getLock(db.database), `${label}: lock released`).toBeUndefined();
    const run = await ports.ctx.ledger.getRun(report.run.runId);
    expect(run?.status, `${label}: terminal record`).not.toBe('running');
    // A database the run replaced is kept (it may hold writes nothing else has), and recorded with its time.
    for (const id of kept) {
      const record = await ports.ctx.ledger.getSnapshot(id);
      expect(record?.kind === 'retired' || record?.kind === 'failed', `${label}: ${id} recorded as kept`).toBe(true);
      expect(record?.keepUntil, `${label}: ${id} has a keep-until time`).toBeDefined();
    }
  } finally {
    await ports.close();
  }
}
