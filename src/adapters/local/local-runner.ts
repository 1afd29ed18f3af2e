import type { AslDefinition } from '../../steps/asl-builder.ts';
import type { StepContext } from '../../steps/context.ts';
import { runStep, STEPS, type StepInput, type StepName } from '../../steps/registry.ts';
import { toStepError } from '../../steps/step-error.ts';
import type { TimelineEntry } from '../../ports.ts';
import { ensurePromiseWithResolvers } from './node-compat.ts';

/** Calls one step for one Task state; the default is the step itself (tests may wrap it). */
export type StepInvoker = (step: StepName, input: StepInput, stateName: string) => Promise<unknown>;

export interface LocalRunOptions {
  readonly definition: AslDefinition;
  readonly input: Record<string, unknown>;
  readonly ctx: StepContext;
  /** Called as each state is entered, for progress on stderr. */
  readonly onState?: (state: string, atMs: number) => void;
  readonly invoke?: StepInvoker;
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
 * at once) and retry back-off shortened to milliseconds.
 *
 * @example
 * ```ts
 * const result = await runLocally({ definition: upgradeWorkflow(), input: { run }, ctx });
 * ```
 */
export async function runLocally(options: LocalRunOptions): Promise<LocalRunResult> {
  ensurePromiseWithResolvers();
  const { StateMachine } = await import('aws-local-stepfunctions');
  const invoke: StepInvoker = options.invoke ?? ((step, input) => runStep(step, input, options.ctx));
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
      handlers[name] = async (input: unknown) => {
        try {
          return (await invoke(step as StepName, input as StepInput, name)) as never;
        } catch (error) {
          throw toStepError(error);
        }
      };
      retries[name] = 20;
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
