import type { RunKind } from '../ports.ts';
import type { WrittenFields } from './step-specs.ts';

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

/**
 * The state a workflow carries from step to step: the run's input, the plan its preflight made (its
 * Task's ResultPath is `$`: it returns the whole state), and what the other ResultPaths write, typed
 * by the step specs (`$.quiesced` is what the quiesce step returns, `$.error` what a Catch caught, …).
 * A type rather than an interface: only an object type is assignable to the open JSON record a
 * step's input carries (src/steps/registry.ts `StepInput`).
 */
export type WorkflowState = WrittenFields & {
  readonly run: RunInput;
  readonly preflight?: {
    readonly fromVersion: string | null;
    readonly toVersion: string | null;
    readonly pending: readonly string[];
    readonly nothingToDo: boolean;
  };
};
