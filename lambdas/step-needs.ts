import type { StepName } from '../src/steps/registry.ts';

/** The ports of a StepContext that a step Lambda may be given. */
export type StepPort = 'fleet' | 'connector' | 'ledger' | 'quiescers';

/** What one step needs in its Lambda: ports (and so IAM), bundled files and time. */
export interface StepNeeds {
  /** The ports the step calls. The construct grants IAM for exactly these; the handler builds only these. */
  readonly ports: readonly StepPort[];
  /** The migrations folder is bundled (and the SQL parser with it: planning and applying parse SQL). */
  readonly migrations?: boolean;
  /** The verify checks are bundled. */
  readonly verify?: boolean;
}

/**
 * What each step needs, read from the steps in src/steps/ (and checked against what they really
 * call by test/lambda-handlers.test.ts, which runs every workflow locally with recording ports).
 * It decides two things at once, so they cannot drift: which adapters a handler bundles (a step that
 * only writes the ledger does not ship the RDS client) and which IAM statements its role gets.
 *
 * `swap` calls `connector.disconnectAll`, which is a no-op on AWS (an RDS rename ends the sessions
 * itself), so it needs no connector and no database credentials.
 *
 * @example
 * ```ts
 * STEP_NEEDS.finish.ports // ['ledger']
 * ```
 */
export const STEP_NEEDS: Readonly<Record<StepName, StepNeeds>> = {
  // Quiescers: every spec is checked before the lock (read-only calls).
  preflight: { ports: ['ledger', 'connector', 'quiescers'], migrations: true },
  restorePreflight: { ports: ['ledger', 'fleet', 'connector', 'quiescers'] },
  startSnapshot: { ports: ['ledger', 'fleet', 'connector'] },
  checkSnapshot: { ports: ['ledger', 'fleet'] },
  startClone: { ports: ['fleet'] },
  checkDatabase: { ports: ['fleet'] },
  // Ledger: the write fence's marks are in the run record (a local run's fence; a Lambda has none, so it reads none there).
  swap: { ports: ['fleet', 'ledger'] },
  migrate: { ports: ['connector'], migrations: true },
  verify: { ports: ['connector'], verify: true },
  quiesce: { ports: ['ledger', 'quiescers'] },
  resume: { ports: ['ledger', 'quiescers'] },
  // Ledger and quiescers: a snapshot is brought back only while every API this run quiesced still holds.
  rollbackPlan: { ports: ['fleet', 'connector', 'ledger', 'quiescers'] },
  confirmQuiesced: { ports: ['ledger', 'quiescers'] },
  cleanup: { ports: ['ledger', 'fleet'] },
  recordRehearsal: { ports: ['ledger'] },
  recordRehearsalFailure: { ports: ['ledger'] },
  // Connector: a run that needs an operator records production's version as it really is.
  finish: { ports: ['ledger', 'connector'] },
};

/**
 * The handler file of a step under lambdas/: its name in kebab case.
 *
 * @example
 * ```ts
 * handlerFileOf('restorePreflight') // 'restore-preflight.ts'
 * ```
 */
export function handlerFileOf(step: StepName): string {
  return `${step.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}.ts`;
}
