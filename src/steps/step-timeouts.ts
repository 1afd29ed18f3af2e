import type { StepName } from './registry.ts';

/**
 * How long one invocation of each step may run, in seconds: the Lambda's timeout on AWS, and the
 * budget a step bounds its own SQL by. Steps not listed get {@link DEFAULT_STEP_TIMEOUT_SECONDS}.
 * `migrate` has Lambda's own limit: one migration per invocation must fit in it.
 *
 * @example
 * ```ts
 * stepTimeoutSeconds('migrate') // 900
 * ```
 */
export const STEP_TIMEOUT_SECONDS: Readonly<Partial<Record<StepName, number>>> = {
  preflight: 300,
  restorePreflight: 120,
  startSnapshot: 120,
  migrate: 900,
  verify: 300,
  quiesce: 120,
  resume: 120,
  // It may have to end a Task's sessions that are still running and wait for them to be gone.
  rollbackPlan: 120,
  cleanup: 120,
};

/** @see STEP_TIMEOUT_SECONDS */
export const DEFAULT_STEP_TIMEOUT_SECONDS = 60;

/**
 * How much longer than its Lambda a Task waits before Step Functions times it out: enough for the
 * invocation's own timeout to arrive first, so a Task never fails while its Lambda still runs.
 */
export const TASK_TIMEOUT_MARGIN_SECONDS = 30;

/** The invocation budget of a step, in seconds. */
export function stepTimeoutSeconds(step: StepName): number {
  return STEP_TIMEOUT_SECONDS[step] ?? DEFAULT_STEP_TIMEOUT_SECONDS;
}
