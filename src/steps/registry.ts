import type { StepContext } from './context.ts';
import { migrateStep, rollbackPlanStep, verifyStep } from './database-steps.ts';
import { finishStep, recordRehearsalFailureStep, recordRehearsalStep } from './finish-steps.ts';
import { checkDatabaseStep, checkSnapshotStep, cleanupStep, startCloneStep, startSnapshotStep, swapStep } from './fleet-steps.ts';
import { confirmQuiescedStep, quiesceStep, resumeStep } from './quiesce-steps.ts';
import { preflightStep, restorePreflightStep } from './run-steps.ts';
import type { WorkflowState } from './state.ts';
import { readStepArgs, type ResultPathOf, type StepArgs, type StepName, type StepOutput } from './step-specs.ts';

export type { StepName } from './step-specs.ts';

/** What every Task sends its step: the workflow state and the Task's own constant arguments, both as JSON. */
export interface StepInput {
  /**
   * The state as the machine holds it. Open, unlike {@link WorkflowState}, because it is JSON from
   * outside the type system; the local runner also checkpoints it as such (it casts it to `Json`).
   */
  readonly state: WorkflowState & Readonly<Record<string, unknown>>;
  /** Checked against the step's spec before the step sees them. */
  readonly args?: Readonly<Record<string, unknown>>;
}

/**
 * A step as a Task calls it: the args its spec reads, and its result, which is a whole state where
 * the spec lets a Task put it at `$`.
 */
type Step<K extends StepName> = (
  state: WorkflowState,
  args: StepArgs<K>,
  ctx: StepContext,
) => Promise<'$' extends ResultPathOf<K> ? WorkflowState : StepOutput<K>>;

/**
 * Every step a state machine can call, by the name its Task's Resource uses (`${<name>FunctionArn}`).
 * On AWS each is one Lambda; locally the runner binds each Task to the same function.
 */
export const STEPS: { readonly [K in StepName]: Step<K> } = {
  preflight: (s, _a, c) => preflightStep(s, c),
  restorePreflight: (s, _a, c) => restorePreflightStep(s, c),
  startSnapshot: (s, a, c) => startSnapshotStep(s, a, c),
  checkSnapshot: (s, a, c) => checkSnapshotStep(s, a, c),
  startClone: (s, a, c) => startCloneStep(s, a, c),
  checkDatabase: (s, a, c) => checkDatabaseStep(s, a, c),
  swap: (s, a, c) => swapStep(s, a, c),
  migrate: (s, a, c) => migrateStep(s, a, c),
  verify: (s, a, c) => verifyStep(s, a, c),
  quiesce: (s, _a, c) => quiesceStep(s, c),
  resume: (s, _a, c) => resumeStep(s, c),
  confirmQuiesced: (s, _a, c) => confirmQuiescedStep(s, c),
  rollbackPlan: (s, _a, c) => rollbackPlanStep(s, c),
  cleanup: (s, _a, c) => cleanupStep(s, c),
  recordRehearsal: (s, _a, c) => recordRehearsalStep(s, c),
  recordRehearsalFailure: (s, _a, c) => recordRehearsalFailureStep(s, c),
  finish: (s, a, c) => finishStep(s, a, c),
};

/**
 * Runs one step by name: the body of every Lambda handler and of every local Task binding. The
 * Task's args are checked against the step's spec first (INTERNAL, naming the step and the argument).
 */
export async function runStep(name: StepName, input: StepInput, ctx: StepContext): Promise<unknown> {
  return call(name, input, ctx);
}

function call<K extends StepName>(name: K, input: StepInput, ctx: StepContext) {
  const step: Step<K> = STEPS[name];
  return step(input.state, readStepArgs(name, input.args), ctx);
}
