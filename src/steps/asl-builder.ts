import type { StepName } from './registry.ts';
import { stepTimeoutSeconds, TASK_TIMEOUT_MARGIN_SECONDS } from './step-timeouts.ts';

/** One ASL state, as JSON. */
export type AslState = Record<string, unknown>;
/** A state machine definition (JSONPath ASL). */
export interface AslDefinition {
  readonly Comment: string;
  readonly StartAt: string;
  readonly States: Record<string, AslState>;
}

/**
 * Failures worth retrying as they are: the database or Lambda was briefly unavailable. With full
 * jitter each wait is drawn from 0 to its interval, so the budget must cover an outage on average,
 * not at best: six tries waiting up to 2, 4, 8, 16, 20, 20 s ride out a PostgreSQL restart or an RDS
 * reboot (about 35 s on average, 70 s at most) where three tries (7 s on average) did not.
 */
const TRANSIENT_RETRY = {
  ErrorEquals: ['Transient', 'Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'],
  IntervalSeconds: 2,
  MaxAttempts: 6,
  BackoffRate: 2,
  MaxDelaySeconds: 20,
  JitterStrategy: 'FULL',
};
/** Steps that bring things back (resume, clean up, roll back, record) try harder: giving up there is worst. */
const PERSISTENT_RETRY = { ErrorEquals: ['States.ALL'], IntervalSeconds: 2, MaxAttempts: 3, BackoffRate: 2, JitterStrategy: 'FULL' };
/**
 * An RDS/Aurora swap is two renames that each take minutes: the fleet does one and reports
 * SWAP_IN_PROGRESS until the other can follow, so the swap Task is simply called again later.
 */
const SWAP_RETRY = { ErrorEquals: ['SWAP_IN_PROGRESS'], IntervalSeconds: 30, MaxAttempts: 60, BackoffRate: 1 };

export interface TaskOptions {
  readonly args?: Record<string, unknown>;
  /** Where the result goes in the state; null discards it; `$` replaces the whole state with it. */
  readonly resultPath: string | null;
  readonly next?: string;
  /** Where any failure goes. */
  readonly catchTo?: string;
  /** Where the caught error is kept. @default '$.error' */
  readonly catchPath?: string;
  /** Retry any error, not only transient ones. */
  readonly persistent?: boolean;
}

/**
 * Builds ASL states for safeshift's workflows. Every Task calls a step Lambda given by the
 * substitution `${<step>FunctionArn}` with `{ state: $, args }`, so the CDK app and the local runner
 * bind the same definition to the same step functions.
 */
export class AslBuilder {
  readonly states: Record<string, AslState> = {};

  task(name: string, step: StepName, o: TaskOptions): this {
    this.states[name] = {
      Type: 'Task',
      Resource: `\${${step}FunctionArn}`,
      Parameters: { 'state.$': '$', args: o.args ?? {} },
      // "$" is the ASL default and is left out: aws-local-stepfunctions mishandles it written out.
      ...(o.resultPath === '$' ? {} : { ResultPath: o.resultPath }),
      // Explicit, never the ASL default of 60 s: the step's Lambda times out first and says so.
      TimeoutSeconds: stepTimeoutSeconds(step) + TASK_TIMEOUT_MARGIN_SECONDS,
      Retry: [...(step === 'swap' ? [SWAP_RETRY] : []), TRANSIENT_RETRY, ...(o.persistent ? [PERSISTENT_RETRY] : [])],
      ...(o.catchTo ? { Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: o.catchPath ?? '$.error', Next: o.catchTo }] } : {}),
      ...(o.next ? { Next: o.next } : { End: true }),
    };
    return this;
  }

  /**
   * Start → Check → ready? → Wait (growing, from the check's `waitSeconds`) → Check …: how a long
   * snapshot or restore is awaited without holding a Lambda. Locally the check is ready at once.
   */
  pollLoop(
    name: string,
    start: { step: StepName; args: Record<string, unknown> },
    check: { step: StepName; args: Record<string, unknown> },
    next: string,
    catchTo: string,
    persistent = false,
    catchPath?: string,
  ): this {
    const caught = catchPath ? { catchPath } : {};
    this.task(`Start${name}`, start.step, { args: start.args, resultPath: '$.poll', next: `Check${name}`, catchTo, persistent, ...caught });
    this.task(`Check${name}`, check.step, { args: check.args, resultPath: '$.poll', next: `${name}Ready`, catchTo, persistent, ...caught });
    this.states[`${name}Ready`] = {
      Type: 'Choice',
      Choices: [{ Variable: '$.poll.ready', BooleanEquals: true, Next: next }],
      Default: `Wait${name}`,
    };
    this.states[`Wait${name}`] = { Type: 'Wait', SecondsPath: '$.poll.waitSeconds', Next: `Check${name}` };
    return this;
  }

  /**
   * A migrate Task that runs again while migrations remain: one migration per Lambda invocation, so
   * no invocation has to fit more than one migration in its 15 minutes.
   */
  migrateLoop(name: string, target: string, resultPath: string, next: string, catchTo: string): this {
    this.task(name, 'migrate', { args: { target }, resultPath, next: `${name}Done`, catchTo });
    this.states[`${name}Done`] = {
      Type: 'Choice',
      Choices: [{ Variable: `${resultPath}.remaining`, NumericGreaterThan: 0, Next: name }],
      Default: next,
    };
    return this;
  }

  choice(name: string, choices: Record<string, unknown>[], defaultNext: string): this {
    this.states[name] = { Type: 'Choice', Choices: choices, Default: defaultNext };
    return this;
  }

  succeed(name: string): this {
    this.states[name] = { Type: 'Succeed' };
    return this;
  }

  fail(name: string, error: string, cause: string): this {
    this.states[name] = { Type: 'Fail', Error: error, Cause: cause };
    return this;
  }

  build(comment: string, startAt: string): AslDefinition {
    return { Comment: comment, StartAt: startAt, States: this.states };
  }
}
