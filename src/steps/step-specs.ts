import type { RunStatus } from '../ports.ts';
import type { migrateStep, rollbackPlanStep, verifyStep } from './database-steps.ts';
import type { finishStep, recordRehearsalStep } from './finish-steps.ts';
import type { checkDatabaseStep, checkSnapshotStep, cleanupStep, startCloneStep, startSnapshotStep, swapStep } from './fleet-steps.ts';
import type { ResourceRole } from './names.ts';
import type { confirmQuiescedStep, quiesceStep, resumeStep } from './quiesce-steps.ts';
import type { RunInput, WorkflowState } from './state.ts';
import { arg, type ArgReader } from './step-args.ts';

/** The roles a run takes snapshots under. */
const SNAPSHOTS = ['rehearsal-snapshot', 'pre-upgrade', 'safety'] as const satisfies readonly ResourceRole[];
/** The roles of databases a run makes from a snapshot. */
const CLONES = ['rehearsal-clone', 'new', 'restored'] as const satisfies readonly ResourceRole[];
/** The roles a replaced production keeps; cleanup keeps exactly these, so a swap must retire into one. */
const REPLACED = ['retired', 'failed'] as const satisfies readonly ResourceRole[];
/** The statuses a run can end with. */
const ENDINGS = ['succeeded', 'refused', 'rolled-back', 'needs-operator'] as const satisfies readonly RunStatus[];
const STRATEGIES = ['in-place', 'swap'] as const satisfies readonly NonNullable<RunInput['strategy']>[];

const snapshot = arg.oneOf(SNAPSHOTS);
const clone = arg.oneOf(CLONES);
const snapshotToClone = arg.oneOf([...SNAPSHOTS, 'requested']);
const target = arg.oneOf(['production', ...CLONES]);
const none = arg.object({});

/** Where a Task may put its step's result: `$` replaces the whole state, null discards it. */
type ResultPath = '$' | `$.${string}` | null;

/** One step's contract with the Tasks that call it. */
interface StepSpec {
  /** Reads a Task's constant `args`; what it returns is the step's args type. */
  readonly args: ArgReader<object, false>;
  /** Where a Task may put the step's result. */
  readonly resultPaths: readonly ResultPath[];
}

type Result<F extends (...args: never[]) => Promise<unknown>> = Awaited<ReturnType<F>>;

/**
 * What each step returns, read off the step functions themselves (type-only imports: building the
 * ASL loads no step). A preflight returns the whole state, which its Task puts at `$`; that type is
 * the state's own, as the state is partly made of these.
 */
export interface StepOutputs {
  readonly preflight: WorkflowState;
  readonly restorePreflight: WorkflowState;
  readonly startSnapshot: Result<typeof startSnapshotStep>;
  readonly checkSnapshot: Result<typeof checkSnapshotStep>;
  readonly startClone: Result<typeof startCloneStep>;
  readonly checkDatabase: Result<typeof checkDatabaseStep>;
  readonly swap: Result<typeof swapStep>;
  readonly migrate: Result<typeof migrateStep>;
  readonly verify: Result<typeof verifyStep>;
  readonly quiesce: Result<typeof quiesceStep>;
  readonly resume: Result<typeof resumeStep>;
  readonly confirmQuiesced: Result<typeof confirmQuiescedStep>;
  readonly rollbackPlan: Result<typeof rollbackPlanStep>;
  readonly cleanup: Result<typeof cleanupStep>;
  readonly recordRehearsal: Result<typeof recordRehearsalStep>;
  /** An empty object, spelt out: the `{}` it is inferred as reads as any non-null value. */
  readonly recordRehearsalFailure: Readonly<Record<string, never>>;
  readonly finish: Result<typeof finishStep>;
}

/**
 * Every step's contract, in one place: the arguments its Tasks give it (typed, and checked when a
 * Task's JSON arrives) and the ResultPaths its result may be written to. The builder accepts only
 * Tasks that fit (`b.task('Quiesce', 'quiesce', { resultPath: '$.rollback' })` does not compile),
 * the registry hands each step its checked args, and the workflow state's fields are what these
 * ResultPaths write.
 *
 * @example
 * ```ts
 * STEP_SPECS.migrate.resultPaths // ['$.promoted', '$.rehearsed']
 * STEP_SPECS.verify.args.read({ target: 'new' }, { step: 'verify', path: '' }) // { target: 'new' }
 * ```
 */
export const STEP_SPECS = {
  preflight: { args: none, resultPaths: ['$'] },
  restorePreflight: { args: none, resultPaths: ['$'] },
  startSnapshot: {
    // A clone started beside the snapshot, so the two copies overlap (see startSnapshotStep).
    args: arg.object({
      role: snapshot,
      clone: arg.optional(arg.object({ from: snapshotToClone, role: clone, strategy: arg.optional(arg.oneOf(STRATEGIES)) })),
    }),
    resultPaths: ['$.poll'],
  },
  checkSnapshot: { args: arg.object({ role: snapshot }), resultPaths: ['$.poll'] },
  startClone: { args: arg.object({ from: snapshotToClone, role: clone }), resultPaths: ['$.poll'] },
  checkDatabase: { args: arg.object({ role: clone }), resultPaths: ['$.poll'] },
  // A swap back puts the retired production in again.
  swap: { args: arg.object({ replacement: arg.oneOf(['new', 'restored', 'retired']), retired: arg.oneOf(REPLACED) }), resultPaths: [null] },
  // Where a migration's progress is kept decides what the next entry of its loop counts from.
  migrate: { args: arg.object({ target }), resultPaths: ['$.promoted', '$.rehearsed'] },
  verify: { args: arg.object({ target }), resultPaths: [null] },
  quiesce: { args: none, resultPaths: ['$.quiesced'] },
  resume: { args: none, resultPaths: ['$.resumed'] },
  confirmQuiesced: { args: none, resultPaths: [null] },
  rollbackPlan: { args: none, resultPaths: ['$.rollback'] },
  cleanup: { args: none, resultPaths: [null] },
  recordRehearsal: { args: none, resultPaths: [null] },
  recordRehearsalFailure: { args: none, resultPaths: [null] },
  finish: { args: arg.object({ status: arg.oneOf(ENDINGS) }), resultPaths: [null] },
} as const satisfies { readonly [K in keyof StepOutputs]: StepSpec };

/** A step a Task can call, by the name its Resource uses (`${<name>FunctionArn}`). */
export type StepName = keyof typeof STEP_SPECS;
/** The constant arguments a Task gives a step. */
export type StepArgs<K extends StepName> = ReturnType<(typeof STEP_SPECS)[K]['args']['read']>;
/** Where a Task may put a step's result (null: discarded). */
export type ResultPathOf<K extends StepName> = (typeof STEP_SPECS)[K]['resultPaths'][number];
/** What a step returns. */
export type StepOutput<K extends StepName> = StepOutputs[K];
/** The steps whose result may go to `path`. */
export type StepsWriting<P extends string> = { [K in StepName]: P extends ResultPathOf<K> ? K : never }[StepName];

/** The specs, typed per step, so a step given by a type parameter reads its own args type. */
const BY_STEP: { readonly [K in StepName]: { readonly args: ArgReader<StepArgs<K>> } } = STEP_SPECS;

/**
 * A Task's `args` as its step takes them, checked: a Task whose JSON does not fit the step's spec
 * fails with an INTERNAL error naming the step and the argument, instead of the step reading a
 * wrong value.
 */
export function readStepArgs<K extends StepName>(step: K, raw: unknown): StepArgs<K> {
  return BY_STEP[step].args.read(raw ?? {}, { step, path: '' });
}

/** What a Catch keeps: Step Functions' `{ Error, Cause }`. */
export interface CaughtError {
  readonly Error: string;
  readonly Cause?: string;
}

/** Where Catches keep what they caught: the cause at `$.error`, a failure on the rollback path beside it. */
export const CATCH_PATHS = ['$.error', '$.rollbackError'] as const;
/** @see CATCH_PATHS */
export type CatchPath = (typeof CATCH_PATHS)[number];

/** What Pass states write: when the run's snapshot began, copied from `$.poll.startedAt` once it is ready. */
export interface PassResults {
  readonly '$.snapshot': { readonly startedAt: string };
}

type Write =
  | { [K in StepName]: { readonly path: ResultPathOf<K>; readonly value: StepOutput<K> } }[StepName]
  | { readonly path: CatchPath; readonly value: CaughtError }
  | { [P in keyof PassResults]: { readonly path: P; readonly value: PassResults[P] } }[keyof PassResults];

/**
 * The fields of the workflow state that ResultPaths write, each typed by what is written there
 * (several writers of one field: any of theirs). Nothing else writes into the state, so a field
 * missing here is one no state writes.
 */
export type WrittenFields = { readonly [W in Write as W['path'] extends `$.${infer F}` ? F : never]?: W['value'] };
