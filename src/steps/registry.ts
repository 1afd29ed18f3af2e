import type { RunStatus } from '../ports.ts';
import type { StepContext } from './context.ts';
import { migrateStep, rollbackPlanStep, verifyStep } from './database-steps.ts';
import { finishStep, recordRehearsalFailureStep, recordRehearsalStep } from './finish-steps.ts';
import {
  type AlongsideClone,
  checkDatabaseStep,
  checkSnapshotStep,
  cleanupStep,
  startCloneStep,
  startSnapshotStep,
  swapStep,
  type Target,
} from './fleet-steps.ts';
import type { ResourceRole } from './names.ts';
import { confirmQuiescedStep, quiesceStep, resumeStep } from './quiesce-steps.ts';
import { preflightStep, restorePreflightStep } from './run-steps.ts';
import type { WorkflowState } from './state.ts';

/** What every Task sends its step: the whole workflow state and the Task's own constant arguments. */
export interface StepInput {
  readonly state: WorkflowState;
  readonly args?: Record<string, unknown>;
}

type Step = (state: WorkflowState, args: Record<string, unknown>, ctx: StepContext) => Promise<unknown>;

/**
 * Every step a state machine can call, by the name its Task's Resource uses (`${<name>FunctionArn}`).
 * On AWS each is one Lambda; locally the runner binds each Task to the same function.
 */
export const STEPS = {
  preflight: (s, _a, c) => preflightStep(s, c),
  restorePreflight: (s, _a, c) => restorePreflightStep(s, c),
  startSnapshot: (s, a, c) => startSnapshotStep(s, { role: a.role as ResourceRole, ...(a.clone ? { clone: a.clone as unknown as AlongsideClone } : {}) }, c),
  checkSnapshot: (s, a, c) => checkSnapshotStep(s, { role: a.role as ResourceRole }, c),
  startClone: (s, a, c) => startCloneStep(s, { from: a.from as ResourceRole | 'requested', role: a.role as ResourceRole }, c),
  checkDatabase: (s, a, c) => checkDatabaseStep(s, { role: a.role as ResourceRole }, c),
  swap: (s, a, c) => swapStep(s, { replacement: a.replacement as ResourceRole, retired: a.retired as ResourceRole }, c),
  migrate: (s, a, c) => migrateStep(s, { target: a.target as Target }, c),
  verify: (s, a, c) => verifyStep(s, { target: a.target as Target }, c),
  quiesce: (s, _a, c) => quiesceStep(s, c),
  resume: (s, _a, c) => resumeStep(s, c),
  confirmQuiesced: (s, _a, c) => confirmQuiescedStep(s, c),
  rollbackPlan: (s, _a, c) => rollbackPlanStep(s, c),
  cleanup: (s, _a, c) => cleanupStep(s, c),
  recordRehearsal: (s, _a, c) => recordRehearsalStep(s, c),
  recordRehearsalFailure: (s, _a, c) => recordRehearsalFailureStep(s, c),
  finish: (s, a, c) => finishStep(s, { status: a.status as RunStatus }, c),
} satisfies Record<string, Step>;

export type StepName = keyof typeof STEPS;

/** Runs one step by name: the body of every Lambda handler and of every local Task binding. */
export async function runStep(name: StepName, input: StepInput, ctx: StepContext): Promise<unknown> {
  const step: Step = STEPS[name];
  return step(input.state, input.args ?? {}, ctx);
}
