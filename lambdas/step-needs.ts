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
  /** Seconds one invocation may take. @default 60 */
  readonly timeoutSeconds?: number;
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
  preflight: { ports: ['ledger', 'connector'], migrations: true, timeoutSeconds: 300 },
  restorePreflight: { ports: ['ledger', 'fleet', 'connector'] },
  startSnapshot: { ports: ['ledger', 'fleet', 'connector'] },
  checkSnapshot: { ports: ['ledger', 'fleet'] },
  startClone: { ports: ['fleet'] },
  checkDatabase: { ports: ['fleet'] },
  swap: { ports: ['fleet'] },
  // Lambda's own limit: every pending migration is applied in this one invocation.
  migrate: { ports: ['connector'], migrations: true, timeoutSeconds: 900 },
  verify: { ports: ['connector'], verify: true, timeoutSeconds: 300 },
  quiesce: { ports: ['ledger', 'quiescers'], timeoutSeconds: 120 },
  resume: { ports: ['ledger', 'quiescers'], timeoutSeconds: 120 },
  rollbackPlan: { ports: ['fleet', 'connector'] },
  cleanup: { ports: ['ledger', 'fleet'], timeoutSeconds: 120 },
  recordRehearsal: { ports: ['ledger'] },
  recordRehearsalFailure: { ports: ['ledger'] },
  finish: { ports: ['ledger'] },
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
