import type { RunKind } from '../ports.ts';

/** What a run was asked to do: the state machine's input, kept under `$.run`. */
export interface RunInput {
  readonly runId: string;
  readonly kind: RunKind;
  /** The production database's identifier (local database name, RDS instance or Aurora cluster id). */
  readonly database: string;
  readonly targetVersion?: string | null;
  readonly strategy?: 'in-place' | 'swap';
  /** Quiescer specs: `db-role:app`, `http:URL`, `lambda:NAME`. */
  readonly quiesce?: readonly string[];
  /** Rehearse on a clone before touching production. @default true */
  readonly rehearsal?: boolean;
  /**
   * Run an upgrade or restore with no API quiesced, on purpose. Without it such a run is refused:
   * whatever is written after the snapshot would be lost if the run has to bring the snapshot back.
   * @default false
   */
  readonly noQuiesce?: boolean;
  /** For restore runs: the snapshot to bring back. */
  readonly snapshotId?: string;
  /** How long a database the run replaced (ss-old, ss-bad) is kept before a later cleanup deletes it, in hours. @default 72 */
  readonly keepReplacedHours?: number;
  /** How long one verify check may run, in seconds. @default 30 */
  readonly verifyTimeoutSeconds?: number;
}

/** A polling loop's progress, kept under `$.poll` while the machine waits for a snapshot or a clone. */
export interface PollState {
  readonly ready: boolean;
  readonly attempt: number;
  /** How long the Wait state waits before the next check; grows each time. */
  readonly waitSeconds: number;
  readonly startedAt: string;
}

/** The state a workflow carries from step to step (JSONPath ResultPaths of the ASL files). */
export interface WorkflowState {
  readonly run: RunInput;
  readonly preflight?: {
    readonly fromVersion: string | null;
    readonly toVersion: string | null;
    readonly pending: readonly string[];
    readonly nothingToDo: boolean;
  };
  readonly rehearsal?: { readonly snapshotId: string; readonly cloneId: string };
  readonly rehearsed?: {
    readonly applied: readonly { script: string; executionMs: number; lockRetries: number }[];
    readonly toVersion: string | null;
    readonly remaining: number;
  };
  readonly quiesced?: { readonly at: string; readonly apis: readonly string[] };
  /** The snapshot production can be brought back to: pre-upgrade (upgrade) or safety (restore). */
  readonly snapshot?: { readonly snapshotId: string; readonly startedAt: string };
  /** The database that will replace production (swap strategy, restore, rollback). */
  readonly replacement?: { readonly databaseId: string; readonly retiredId: string; readonly snapshotId: string };
  /** Set once production may differ from the snapshot (a migration started, or a swap happened). */
  readonly promoted?: {
    readonly changed: boolean;
    readonly applied: readonly { script: string }[];
    readonly toVersion: string | null;
    readonly remaining: number;
  };
  readonly rollback?: {
    readonly action: 'none' | 'restore' | 'swap-back';
    readonly replacement?: { readonly databaseId: string; readonly retiredId: string; readonly snapshotId: string };
  };
  readonly resumed?: { readonly at: string; readonly apis: readonly string[] };
  readonly poll?: PollState;
  /** What a Catch caught: Step Functions' `{ Error, Cause }`. */
  readonly error?: { readonly Error: string; readonly Cause?: string };
  /** What a Catch on the rollback path caught, in the same `{ Error, Cause }` shape. */
  readonly rollbackError?: { readonly Error: string; readonly Cause?: string };
  readonly [key: string]: unknown;
}
