import type { RunOptions, StateMachineDefinition } from 'aws-local-stepfunctions';
import { SafeshiftError } from '../../core/errors.ts';
import type { AslDefinition, AslState } from '../../steps/asl-builder.ts';
import type { StepContext } from '../../steps/context.ts';
import { runStep, STEPS, type StepInput, type StepName } from '../../steps/registry.ts';
import { toStepError } from '../../steps/step-error.ts';
import type { Json, TimelineEntry } from '../../ports.ts';
import { ensurePromiseWithResolvers } from './node-compat.ts';

type Handlers = NonNullable<NonNullable<RunOptions['overrides']>['taskResourceLocalHandlers']>;
type MachineJson = Parameters<Handlers[string]>[0];

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

/** Where a Task stands as it begins: what {@link LocalRunOptions.checkpoint} is given. */
export interface TaskCheckpoint {
  readonly state: string;
  /** The machine's state as the Task got it, before its Parameters: what a continuation starts from. */
  readonly input: Json;
  /** Starts of each Task so far, retries included. */
  readonly attempts: Readonly<Record<string, number>>;
  /** What happened so far, for the record of a run continued later. */
  readonly timeline: readonly TimelineEntry[];
}

export interface LocalRunOptions {
  readonly definition: AslDefinition;
  readonly input: Readonly<Record<string, unknown>>;
  /**
   * Starts here instead of the definition's StartAt: how an interrupted run is continued from its
   * checkpoint (whose `input` is then this run's input).
   */
  readonly startAt?: string;
  /** Starts already counted for each Task, when continuing (so the record says how often each ran). */
  readonly attempts?: Readonly<Record<string, number>>;
  /**
   * Called before each Task's step begins, and awaited: a run killed at any moment can be continued
   * from the last checkpoint, re-running at most the Task that was under way.
   */
  readonly checkpoint?: (checkpoint: TaskCheckpoint) => Promise<void>;
  /**
   * Asked before each Task: a reason to stop (a signal), or undefined. A stop makes the next Task
   * that can end the run safely fail with STOPPED instead of running, so its Catch takes the run to
   * its refusal or rollback ending; the steps on those endings, and the ones that bring APIs back,
   * still run.
   */
  readonly stopRequested?: () => string | undefined;
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
 * The definitions (as JSON text, after the local rewrites) that this process has already seen pass
 * validation; a definition that failed it threw before it was remembered. A process runs a handful
 * (three workflows, a continuation's cut at each Task, another task timeout), so the bound only guards
 * against a caller that makes new ones without end.
 */
const VALIDATED = new Set<string>();
const MAX_VALIDATED = 256;

function rememberValidated(text: string): void {
  if (VALIDATED.has(text)) return;
  if (VALIDATED.size >= MAX_VALIDATED) VALIDATED.clear();
  VALIDATED.add(text);
}

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
  const handlers: Handlers = {};
  const waits: Record<string, number> = {};
  const retries: Record<string, number> = {};
  const states: Record<string, AslState> = {};
  const attempts: Record<string, number> = { ...options.attempts };
  const timeline: TimelineEntry[] = [];
  for (const [name, state] of Object.entries(options.definition.States)) {
    const copy = { ...state };
    if (state.Type === 'Task') {
      const step = taskStep(name, state);
      const stoppable = canStopAt(state, options.definition);
      copy.Resource = `arn:aws:lambda:us-east-1:000000000000:function:safeshift-${step}`;
      copy.TimeoutSeconds = taskTimeoutSeconds;
      handlers[name] = async (input: MachineJson) => {
        const taskInput = stepInput(input, name);
        try {
          attempts[name] = (attempts[name] ?? 0) + 1;
          await options.checkpoint?.({ state: name, input: taskInput.state as Json, attempts: { ...attempts }, timeline: [...timeline] });
          const stop = stoppable ? options.stopRequested?.() : undefined;
          if (stop !== undefined) throw new SafeshiftError('STOPPED', `the run was stopped (${stop}) before ${name}`, { outcome: 'rolled-back' });
          // The step bounds its SQL by this, as a Lambda bounds it by its remaining time.
          const ctx: StepContext = { ...options.ctx, deadline: Date.now() + taskTimeoutSeconds * 1000 };
          return toMachineJson(await invoke(step, taskInput, name, ctx));
        } catch (error) {
          throw toStepError(error);
        }
      };
      if (options.retryIntervalMs !== undefined) retries[name] = options.retryIntervalMs;
    }
    if (state.Type === 'Wait') waits[name] = 0;
    states[name] = copy;
  }
  const startAt = options.startAt ?? options.definition.StartAt;
  if (!(startAt in states)) throw new Error(`the workflow has no state ${startAt} to start at`);
  const definition = asMachineDefinition({ ...options.definition, StartAt: startAt, States: reachableFrom(startAt, states) });
  const text = JSON.stringify(definition);
  const machine = new StateMachine(definition, {
    // The library validates a definition by compiling the whole ASL JSON schema anew: 0.15 to 0.3 s
    // of CPU, every run. The same text validates the same way, so each is validated once.
    validationOptions: VALIDATED.has(text) ? { noValidate: true } : { checkArn: true, checkPaths: true },
  });
  rememberValidated(text);
  const execution = machine.run(toMachineJson(options.input), {
    overrides: { taskResourceLocalHandlers: handlers, waitTimeOverrides: waits, retryIntervalOverrides: retries },
  });
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
          timeline[index] = { ...entry, exitedAt: at, ...(event.type === 'StateFailed' ? { error: event.Error } : {}) };
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

function taskStep(name: string, state: AslState): StepName {
  const step = TASK_RESOURCE.exec(String(state.Resource))?.[1];
  if (!step || !isStepName(step)) throw new Error(`state ${name} calls unknown step ${String(state.Resource)}`);
  return step;
}

function isStepName(name: string): name is StepName {
  return Object.hasOwn(STEPS, name);
}

/** What a Task's Parameters (`{ state: $, args }`) hand its step. */
function stepInput(input: MachineJson, stateName: string): StepInput {
  if (input === null || typeof input !== 'object' || Array.isArray(input) || typeof input.state !== 'object' || input.state === null) {
    throw new Error(`state ${stateName} did not get { state, args } from its Parameters`);
  }
  return input as unknown as StepInput;
}

/**
 * Whether a stop may end the run at this Task: one that moves the run forward and fails over to the
 * refusal or rollback path. Not the steps of those paths, nor the ones that retry anything (putting
 * APIs back, recording, cleaning up): stopping there would leave more undone, not less.
 */
function canStopAt(state: AslState, definition: AslDefinition): boolean {
  const retries = Array.isArray(state.Retry) ? (state.Retry as { ErrorEquals?: string[] }[]) : [];
  if (retries.some((r) => r.ErrorEquals?.includes('States.ALL'))) return false;
  const catches = Array.isArray(state.Catch) ? (state.Catch as { Next?: string }[]) : [];
  return catches.some((c) => c.Next !== undefined && FAILURE_PATHS.has(c.Next) && c.Next in definition.States);
}

/** The states where the workflows' forward paths fail over to (workflows.ts). */
const FAILURE_PATHS = new Set(['RollbackPlan', 'FinishRefused', 'RecordRehearsalFailure']);

/** A step's result as the machine carries it: plain JSON (undefined fields dropped, as Lambda's JSON does). */
function toMachineJson(value: unknown): MachineJson {
  return value === undefined ? null : (JSON.parse(JSON.stringify(value)) as MachineJson);
}

/** The definition, checked for the shape the library runs (it validates the rest itself). */
function asMachineDefinition(definition: AslDefinition): StateMachineDefinition {
  for (const [name, state] of Object.entries(definition.States)) {
    if (typeof state.Type !== 'string') throw new Error(`state ${name} has no Type`);
  }
  return definition as unknown as StateMachineDefinition;
}

/** The states reachable from `startAt`: a continued run's machine, since ASL refuses unreachable states. */
function reachableFrom(startAt: string, states: Record<string, AslState>): Record<string, AslState> {
  const kept: Record<string, AslState> = {};
  const queue = [startAt];
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    const state = states[name];
    if (!state || name in kept) continue;
    kept[name] = state;
    const choices = Array.isArray(state.Choices) ? (state.Choices as { Next?: unknown }[]) : [];
    const catches = Array.isArray(state.Catch) ? (state.Catch as { Next?: unknown }[]) : [];
    for (const next of [state.Next, state.Default, ...choices.map((c) => c.Next), ...catches.map((c) => c.Next)]) {
      if (typeof next === 'string') queue.push(next);
    }
  }
  return kept;
}
