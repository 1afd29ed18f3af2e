import type { CatchPath, PassResults, ResultPathOf, StepArgs, StepName, StepsWriting } from './step-specs.ts';
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

/** Where a Task goes next, and what it does on failure. */
interface TaskFlow {
  readonly next?: string;
  /** Where any failure goes. */
  readonly catchTo?: string;
  /** Where the caught error is kept. @default '$.error' */
  readonly catchPath?: CatchPath;
  /** Retry any error, not only transient ones. */
  readonly persistent?: boolean;
}

/** A Task's constant arguments: the ones its step's spec reads, and none for a step that reads none. */
type TaskArgs<S extends StepName> = [keyof StepArgs<S>] extends [never] ? { readonly args?: never } : { readonly args: StepArgs<S> };

/** A Task of step `S`, as its step's spec allows it. */
export type TaskOptions<S extends StepName> = TaskFlow &
  TaskArgs<S> & {
    /** Where the result goes in the state; null discards it; `$` replaces the whole state with it. */
    readonly resultPath: ResultPathOf<S>;
  };

/** A call of any step whose result may go to `P`: the step and its arguments. */
type StepCall<P extends string> = { [S in StepsWriting<P>]: { readonly step: S } & TaskArgs<S> }[StepsWriting<P>];

/** The steps a migrate loop can run on. */
type MigrateTarget = StepArgs<'migrate'>['target'];
/** Where a migrate loop keeps its progress: the step counts a rehearsal clone's from `$.rehearsed`, the others' from `$.promoted`. */
type ProgressPath<T extends MigrateTarget> = T extends 'rehearsal-clone' ? '$.rehearsed' : '$.promoted';

/** A Pass state's Parameters that write `P`: each field of what is written there, copied from a path of the state. */
type PassParameters<P extends keyof PassResults> = { readonly [K in keyof PassResults[P] & string as `${K}.$`]: string };

/**
 * Builds ASL states for safeshift's workflows. Every Task calls a step Lambda given by the
 * substitution `${<step>FunctionArn}` with `{ state: $, args }`, so the CDK app and the local runner
 * bind the same definition to the same step functions.
 */
export class AslBuilder {
  readonly states: Record<string, AslState> = {};

  /** A Task calling `step`; its args and ResultPath must fit the step's spec (src/steps/step-specs.ts). */
  task<S extends StepName>(name: string, step: S, o: NoInfer<TaskOptions<S>>): this {
    return this.put(name, step, o);
  }

  /** Writes a Task; what calls it (task, pollLoop, migrateLoop) has had its step, args and ResultPath checked against the spec. */
  private put(name: string, step: StepName, o: TaskFlow & { readonly args?: object; readonly resultPath: string | null }): this {
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
  pollLoop(name: string, start: StepCall<'$.poll'>, check: StepCall<'$.poll'>, next: string, catchTo: string, persistent = false, catchPath?: CatchPath): this {
    const caught = catchPath ? { catchPath } : {};
    this.put(`Start${name}`, start.step, { args: start.args, resultPath: '$.poll', next: `Check${name}`, catchTo, persistent, ...caught });
    this.put(`Check${name}`, check.step, { args: check.args, resultPath: '$.poll', next: `${name}Ready`, catchTo, persistent, ...caught });
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
  migrateLoop<T extends MigrateTarget>(name: string, target: T, resultPath: ProgressPath<T>, next: string, catchTo: string): this {
    this.task(name, 'migrate', { args: { target }, resultPath, next: `${name}Done`, catchTo });
    this.states[`${name}Done`] = {
      Type: 'Choice',
      Choices: [{ Variable: `${resultPath}.remaining`, NumericGreaterThan: 0, Next: name }],
      Default: next,
    };
    return this;
  }

  /** A Pass state writing `resultPath` from other paths of the state. */
  pass<P extends keyof PassResults>(name: string, resultPath: P, parameters: PassParameters<P>, next: string): this {
    this.states[name] = { Type: 'Pass', Parameters: parameters, ResultPath: resultPath, Next: next };
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
