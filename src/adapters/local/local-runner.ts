import type { AslDefinition } from '../../steps/asl-builder.ts';
import type { StepContext } from '../../steps/context.ts';
import { runStep, STEPS, type StepInput, type StepName } from '../../steps/registry.ts';
import { toStepError } from '../../steps/step-error.ts';
import type { TimelineEntry } from '../../ports.ts';
import { ensurePromiseWithResolvers } from './node-compat.ts';

/**
 * Calls one step for one Task state; the default is the step itself (tests may wrap it). `ctx` is the
 * run's context with this invocation's deadline, as a Lambda would see it.
 */
export type StepInvoker = (step: StepName, input: StepInput, stateName: string, ctx: StepContext) => Promise<unknown>;

/**
 * A local Task's default timeout: a day, i.e. no practical bound (a local migration may take as long
 * as it takes), yet below the 24.8 days past which a JavaScript timer fires at once.
 */
export const LOCAL_TASK_TIMEOUT_SECONDS = 86_400;

export interface LocalRunOptions {
  readonly definition: AslDefinition;
  readonly input: Record<string, unknown>;
  readonly ctx: StepContext;
  /** Called as each state is entered, for progress on stderr. */
  readonly onState?: (state: string, atMs: number) => void;
  readonly invoke?: StepInvoker;
  /**
   * How long each Task may run before the machine times it out (`States.Timeout`), in seconds. The
   * ASL's own TimeoutSeconds are the Lambdas' budgets; locally nothing has Lambda's 15 minutes.
   * @default LOCAL_TASK_TIMEOUT_SECONDS
   */
  readonly taskTimeoutSeconds?: number;
  /**
   * Waits this many milliseconds before every retry instead of the ASL's own back-off
   * (IntervalSeconds × BackoffRate^attempt, with full jitter). For tests that inject many faults; a
   * real run keeps the back-off, which is what lets it ride out a database restart.
   * @default the ASL's back-off
   */
  readonly retryIntervalMs?: number;
}

export interface LocalRunResult {
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output?: unknown;
  readonly error?: { readonly Error: string; readonly Cause: unknown };
  readonly timeline: TimelineEntry[];
  /** State transitions, as Step Functions would count and bill them. */
  readonly transitions: number;
}

const TASK_RESOURCE = /^\$\{(\w+)FunctionArn\}$/;

/**
 * Runs a workflow definition in-process with aws-local-stepfunctions: the same ASL the CDK deploys,
 * each Task bound to the step its Resource names, Wait states not waiting (local snapshots are ready
 * at once), each Task's timeout the local one, and retries waiting as the ASL says (unless
 * `retryIntervalMs` is given).
 *
 * @example
 * ```ts
 * const result = await runLocally({ definition: upgradeWorkflow(), input: { run }, ctx });
 * ```
 */
export async function runLocally(options: LocalRunOptions): Promise<LocalRunResult> {
  ensurePromiseWithResolvers();
  const { StateMachine } = await import('aws-local-stepfunctions');
  const invoke: StepInvoker = options.invoke ?? ((step, input, _state, ctx) => runStep(step, input, ctx));
  const taskTimeoutSeconds = options.taskTimeoutSeconds ?? LOCAL_TASK_TIMEOUT_SECONDS;
  const handlers: Record<string, (input: unknown) => Promise<never>> = {};
  const waits: Record<string, number> = {};
  const retries: Record<string, number> = {};
  const states: Record<string, Record<string, unknown>> = {};
  for (const [name, state] of Object.entries(options.definition.States)) {
    const copy = { ...state };
    if (state.Type === 'Task') {
      const step = TASK_RESOURCE.exec(String(state.Resource))?.[1];
      if (!step || !(step in STEPS)) throw new Error(`state ${name} calls unknown step ${String(state.Resource)}`);
      copy.Resource = `arn:aws:lambda:us-east-1:000000000000:function:safeshift-${step}`;
      copy.TimeoutSeconds = taskTimeoutSeconds;
      handlers[name] = async (input: unknown) => {
        // The step bounds its SQL by this, as a Lambda bounds it by its remaining time.
        const ctx: StepContext = { ...options.ctx, deadline: Date.now() + taskTimeoutSeconds * 1000 };
        try {
          return (await invoke(step as StepName, input as StepInput, name, ctx)) as never;
        } catch (error) {
          throw toStepError(error);
        }
      };
      if (options.retryIntervalMs !== undefined) retries[name] = options.retryIntervalMs;
    }
    if (state.Type === 'Wait') waits[name] = 0;
    states[name] = copy;
  }
  const machine = new StateMachine({ ...options.definition, States: states } as never, { validationOptions: { checkArn: true, checkPaths: true } });
  const execution = machine.run(options.input as never, {
    overrides: { taskResourceLocalHandlers: handlers as never, waitTimeOverrides: waits, retryIntervalOverrides: retries },
  });
  const timeline: TimelineEntry[] = [];
  let transitions = 0;
  const open = new Map<string, number>();
  const collect = (async () => {
    for await (const event of execution.eventLogs) {
      const at = new Date(event.timestamp).toISOString();
      if (event.type === 'StateEntered') {
        transitions++;
        open.set(event.state.name, timeline.length);
        timeline.push({ state: event.state.name, enteredAt: at });
        options.onState?.(event.state.name, event.timestamp);
      } else if (event.type === 'StateExited' || event.type === 'StateFailed') {
        const index = open.get(event.state.name);
        const entry = index === undefined ? undefined : timeline[index];
        if (index !== undefined && entry) {
          timeline[index] = { ...entry, exitedAt: at, ...(event.type === 'StateFailed' ? { error: String(event.Error) } : {}) };
        }
      }
    }
  })();
  try {
    const output = await execution.result;
    await collect;
    return { status: 'SUCCEEDED', output, timeline, transitions };
  } catch (error) {
    await collect.catch(() => undefined);
    const e = error as { name?: string; message?: string; cause?: unknown };
    return { status: 'FAILED', error: { Error: e.name ?? 'Error', Cause: e.cause ?? e.message }, timeline, transitions };
  }
}
