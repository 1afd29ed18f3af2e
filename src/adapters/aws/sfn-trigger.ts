import { createHash, randomBytes } from 'node:crypto';
import { DescribeExecutionCommand, GetExecutionHistoryCommand, SFNClient, StartExecutionCommand, type HistoryEvent } from '@aws-sdk/client-sfn';
import { SafeshiftError } from '../../core/errors.ts';
import type { RunError, TimelineEntry } from '../../ports.ts';
import type { RunInput } from '../../steps/state.ts';
import { caughtError } from '../../steps/step-error.ts';
import { isAwsError } from './aws-errors.ts';
import { withBackoff, type BackoffOptions } from './backoff.ts';

export interface SfnTriggerOptions {
  /** @default a new SFNClient (region from the environment) */
  readonly client?: SFNClient;
  /** Progress lines (each state as it is entered, each failure): stderr in the CLI. @default nowhere */
  readonly log?: (line: string) => void;
  /** How AWS calls are retried when throttled. */
  readonly retry?: BackoffOptions;
  /** The first wait between history polls; each quiet poll waits 1.5 times longer. @default 1000 */
  readonly pollMs?: number;
  /** @default 15000 */
  readonly maxPollMs?: number;
  /** @default a timer */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** An execution that was started, or found already started under the same run name. */
export interface StartedRun {
  readonly executionArn: string;
  readonly runName: string;
  readonly runId: string;
  /** True when the run name was already used and this attached to that execution instead. */
  readonly attached: boolean;
}

/** How an execution ended, as the CLI reports it. */
export interface ExecutionOutcome {
  readonly status: 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';
  /** DESIGN.md's exit code: 0 succeeded, 1 rolled back, 2 refused, 3 needs an operator. */
  readonly exitCode: number;
  /** The Fail state's error (`ROLLED_BACK`, `REFUSED`, `NEEDS_OPERATOR`) or Step Functions' own (`States.Timeout`, …). */
  readonly error?: string;
  /** What the last failed step reported: its stable code and message. */
  readonly failure?: RunError;
  readonly timeline: readonly TimelineEntry[];
  /** States entered, as Step Functions counts (and bills) transitions. */
  readonly transitions: number;
}

/** The Fail states of state-machines/*.asl.json and the exit codes of DESIGN.md. */
const EXIT_BY_ERROR: Readonly<Record<string, number>> = { ROLLED_BACK: 1, REFUSED: 2, NEEDS_OPERATOR: 3 };
const THROTTLED = ['ThrottlingException', 'TooManyRequestsException', 'ServiceUnavailable', 'RequestLimitExceeded'];
const RUN_NAME = /^[A-Za-z0-9_-]{1,80}$/;
const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Starts safeshift's state machines and follows them, for a pipeline that waits on the result.
 *
 * - The execution's name is the run name, and the run id is derived from it (and the state
 *   machine), so starting the same run name again never starts a second run: Step Functions
 *   refuses the name (ExecutionAlreadyExists) and the trigger attaches to the execution that has it.
 * - Following polls GetExecutionHistory newest-first for the events not yet seen, waiting longer
 *   while nothing happens (snapshots take minutes), and reports each state as it is entered.
 * - Throttled calls are retried with backoff; anything else is reported as it is.
 *
 * IAM (the pipeline's role): states:StartExecution on the state machine, states:DescribeExecution
 * and states:GetExecutionHistory on its executions.
 *
 * @example
 * ```ts
 * const trigger = new SfnTrigger({ log: (l) => process.stderr.write(`${l}\n`) });
 * const run = await trigger.start(arn, { kind: 'upgrade', targetVersion: '5', strategy: 'in-place', rehearsal: true }, 'release-42');
 * const outcome = await trigger.follow(run.executionArn); // outcome.exitCode: 0, 1, 2 or 3
 * ```
 */
export class SfnTrigger {
  /**
   * The run id of a run name on a state machine: the same name always gives the same id, so a
   * repeated start sends the same input. Formatted like a UUID; safeshift names snapshots and
   * clones after its first 12 hex digits.
   *
   * @example
   * ```ts
   * SfnTrigger.runIdOf(arn, 'release-42') // '3f1c9a…-…'
   * ```
   */
  static runIdOf(stateMachineArn: string, runName: string): string {
    const hex = createHash('sha256').update(`${stateMachineArn}\n${runName}`).digest('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
  }

  /** A fresh run name: the kind, the UTC time and a random suffix. */
  static newRunName(kind: RunInput['kind'], now = new Date()): string {
    return `${kind}-${now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}-${randomBytes(3).toString('hex')}`;
  }

  private readonly sfn: SFNClient;
  private readonly opts: SfnTriggerOptions;
  private readonly log: (line: string) => void;

  constructor(opts: SfnTriggerOptions = {}) {
    this.sfn = opts.client ?? new SFNClient({});
    this.opts = opts;
    this.log = opts.log ?? (() => {});
  }

  /**
   * Starts a run (input `{ run: { runId, …run } }`, name `runName`), or attaches to the execution
   * that already has that name.
   */
  async start(
    stateMachineArn: string,
    run: Omit<RunInput, 'runId' | 'database'> & { readonly database?: string },
    runName = SfnTrigger.newRunName(run.kind),
  ): Promise<StartedRun> {
    if (!RUN_NAME.test(runName)) {
      throw new SafeshiftError('BAD_OPTION', `run name "${runName}" must be 1 to 80 letters, digits, - or _ (it is the execution's name)`);
    }
    const runId = SfnTrigger.runIdOf(stateMachineArn, runName);
    const input = JSON.stringify({ run: { ...run, runId } });
    try {
      const out = await this.call(() => this.sfn.send(new StartExecutionCommand({ stateMachineArn, name: runName, input })));
      this.log(`started ${run.kind} run ${runName} (run id ${runId})`);
      return { executionArn: out.executionArn ?? executionArnOf(stateMachineArn, runName), runName, runId, attached: false };
    } catch (error) {
      if (isAwsError(error, 'StateMachineDoesNotExist'))
        throw new SafeshiftError('BAD_OPTION', `state machine ${stateMachineArn} does not exist in this account and region`, { cause: error });
      if (!isAwsError(error, 'ExecutionAlreadyExists')) throw error;
    }
    const executionArn = executionArnOf(stateMachineArn, runName);
    const existing = await this.call(() => this.sfn.send(new DescribeExecutionCommand({ executionArn })));
    const same = existing.input === input;
    this.log(
      `run ${runName} was already started (${existing.status ?? 'unknown'}); ` +
        `following it instead of starting another${same ? '' : ', although it was started with other options'}`,
    );
    return { executionArn, runName, runId: runIdIn(existing.input) ?? runId, attached: true };
  }

  /** Follows an execution to its end, logging each state, and says how it ended. */
  async follow(executionArn: string): Promise<ExecutionOutcome> {
    const sleep = this.opts.sleep ?? defaultSleep;
    const first = this.opts.pollMs ?? 1_000;
    const max = this.opts.maxPollMs ?? 15_000;
    const events: HistoryEvent[] = [];
    let lastId = 0;
    let wait = first;
    for (;;) {
      const fresh = await this.newEvents(executionArn, lastId);
      for (const event of fresh) {
        events.push(event);
        lastId = Math.max(lastId, event.id ?? 0);
        this.report(event);
      }
      const end = fresh.find((e) => TERMINAL.has(e.type ?? ''));
      if (end) return outcomeOf(end, events);
      // Quick while things happen, patient while a snapshot or restore is under way.
      wait = fresh.length > 0 ? first : Math.min(max, Math.round(wait * 1.5));
      await sleep(wait);
    }
  }

  /** The events after `lastId`, oldest first: read newest-first until an event already seen. */
  private async newEvents(executionArn: string, lastId: number): Promise<HistoryEvent[]> {
    const fresh: HistoryEvent[] = [];
    let nextToken: string | undefined;
    do {
      const token = nextToken;
      const page = await this.call(() =>
        this.sfn.send(new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: 100, ...(token ? { nextToken: token } : {}) })),
      );
      const events = page.events ?? [];
      const unseen = events.filter((e) => (e.id ?? 0) > lastId);
      fresh.push(...unseen);
      nextToken = unseen.length === events.length ? page.nextToken : undefined;
    } while (nextToken);
    return fresh.sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
  }

  private report(event: HistoryEvent): void {
    const type = event.type ?? '';
    if (type.endsWith('StateEntered') && event.stateEnteredEventDetails?.name) this.log(`-> ${event.stateEnteredEventDetails.name}`);
    const failed = failureOf(event);
    if (failed && type !== 'ExecutionFailed') this.log(`   ${failed.code}: ${failed.message.split('\n')[0]}`);
  }

  private call<T>(fn: () => Promise<T>): Promise<T> {
    return withBackoff(fn, (e) => isAwsError(e, ...THROTTLED), this.opts.retry);
  }
}

const TERMINAL = new Set(['ExecutionSucceeded', 'ExecutionFailed', 'ExecutionTimedOut', 'ExecutionAborted']);

/** Step Functions names an execution `…:execution:<state machine name>:<execution name>`. */
function executionArnOf(stateMachineArn: string, name: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
}

function runIdIn(input: string | undefined): string | undefined {
  try {
    const parsed: unknown = JSON.parse(input ?? '');
    const run: unknown = parsed && typeof parsed === 'object' && 'run' in parsed ? parsed.run : undefined;
    const id: unknown = run && typeof run === 'object' && 'runId' in run ? run.runId : undefined;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The step failure an event records (a Lambda that threw, a Task that failed), as code and message. */
function failureOf(event: HistoryEvent): RunError | undefined {
  const details = event.lambdaFunctionFailedEventDetails ?? event.taskFailedEventDetails ?? event.executionFailedEventDetails;
  if (!details?.error) return undefined;
  return caughtError({ Error: details.error, ...(details.cause ? { Cause: details.cause } : {}) });
}

function outcomeOf(end: HistoryEvent, events: readonly HistoryEvent[]): ExecutionOutcome {
  const timeline = timelineOf(events);
  const transitions = events.filter((e) => (e.type ?? '').endsWith('StateEntered')).length;
  if (end.type === 'ExecutionSucceeded') return { status: 'SUCCEEDED', exitCode: 0, timeline, transitions };
  // The step failure that led here: the last one before the end, whatever the run did about it.
  const failure = [...events]
    .reverse()
    .map((e) => (e === end ? undefined : failureOf(e)))
    .find((f) => f !== undefined);
  if (end.type === 'ExecutionFailed') {
    const error = end.executionFailedEventDetails?.error ?? 'States.Runtime';
    return { status: 'FAILED', exitCode: EXIT_BY_ERROR[error] ?? 3, error, ...(failure ? { failure } : {}), timeline, transitions };
  }
  const status = end.type === 'ExecutionTimedOut' ? 'TIMED_OUT' : 'ABORTED';
  return { status, exitCode: 3, error: status === 'TIMED_OUT' ? 'States.Timeout' : 'Aborted', ...(failure ? { failure } : {}), timeline, transitions };
}

function timelineOf(events: readonly HistoryEvent[]): TimelineEntry[] {
  const timeline: TimelineEntry[] = [];
  const open = new Map<string, number>();
  let lastError: string | undefined;
  for (const e of events) {
    const at = (e.timestamp ?? new Date(0)).toISOString();
    const type = e.type ?? '';
    const failed = failureOf(e);
    if (failed) lastError = failed.code;
    if (type.endsWith('StateEntered') && e.stateEnteredEventDetails?.name) {
      open.set(e.stateEnteredEventDetails.name, timeline.length);
      timeline.push({ state: e.stateEnteredEventDetails.name, enteredAt: at });
      lastError = undefined;
    } else if (type.endsWith('StateExited') && e.stateExitedEventDetails?.name) {
      const index = open.get(e.stateExitedEventDetails.name);
      const entry = index === undefined ? undefined : timeline[index];
      if (index !== undefined && entry) timeline[index] = { ...entry, exitedAt: at, ...(lastError ? { error: lastError } : {}) };
    }
  }
  return timeline;
}
