import { describe, expect, it } from 'vitest';
import { SafeshiftError } from '../src/core/errors.ts';
import { DEFAULT_HISTORY } from '../src/core/history.ts';
import { silentLogger } from '../src/core/logger.ts';
import type { Connector, Fleet, Ledger, QuiescerFactory } from '../src/ports.ts';
import { AslBuilder, type AslState } from '../src/steps/asl-builder.ts';
import type { StepContext } from '../src/steps/context.ts';
import { runStep } from '../src/steps/registry.ts';
import type { WorkflowState } from '../src/steps/state.ts';
import { CATCH_PATHS, type PassResults, readStepArgs, STEP_SPECS, type StepName } from '../src/steps/step-specs.ts';
import { WORKFLOWS } from '../src/steps/workflows.ts';
import { thrown } from './support/defined.ts';

/**
 * The step specs against what uses them: the args checker a Task's JSON goes through, and the three
 * generated definitions, whose every Task must call a step with args and a ResultPath its spec allows.
 * (That the builder refuses other Tasks at compile time is checked by tsc, on the @ts-expect-error lines below.)
 */

const isStep = (name: string): name is StepName => Object.hasOwn(STEP_SPECS, name);
const PASS_RESULTS: readonly string[] = ['$.snapshot'] satisfies (keyof PassResults)[];

interface Task {
  readonly workflow: string;
  readonly name: string;
  readonly step: StepName;
  readonly args: unknown;
  /** As the state machine reads it: no ResultPath is `$`. */
  readonly resultPath: unknown;
  readonly catchPaths: readonly unknown[];
}

function tasksOf(workflow: string, states: Record<string, AslState>): Task[] {
  return Object.entries(states)
    .filter(([, state]) => state.Type === 'Task')
    .map(([name, state]) => {
      const step = /^\$\{(\w+)FunctionArn\}$/.exec(String(state.Resource))?.[1] ?? '';
      if (!isStep(step)) throw new Error(`${workflow} ${name} calls ${String(state.Resource)}, which is no step of STEP_SPECS`);
      const parameters = state.Parameters as { args?: unknown } | undefined;
      const catches = (state.Catch ?? []) as readonly { ResultPath?: unknown }[];
      return {
        workflow,
        name,
        step,
        args: parameters?.args,
        resultPath: 'ResultPath' in state ? state.ResultPath : '$',
        catchPaths: catches.map((c) => c.ResultPath),
      };
    });
}

const TASKS = Object.entries(WORKFLOWS).flatMap(([file, build]) => tasksOf(file, build().States));

/** What reading `args` for `step` threw. */
function refusal(step: StepName, args: unknown): SafeshiftError {
  const error = thrown(() => readStepArgs(step, args), `reading ${step}'s args`);
  if (!(error instanceof SafeshiftError)) throw new Error(`expected a SafeshiftError, got ${String(error)}`);
  return error;
}

describe("readStepArgs: a Task's args, checked against its step's spec", () => {
  it('hands a step the args it takes, leaving out what the Task left out', () => {
    expect(readStepArgs('startSnapshot', { role: 'safety' })).toEqual({ role: 'safety' });
    expect(Object.keys(readStepArgs('startSnapshot', { role: 'safety' }))).toEqual(['role']);
    expect(readStepArgs('startSnapshot', { role: 'pre-upgrade', clone: { from: 'pre-upgrade', role: 'new', strategy: 'swap' } })).toEqual({
      role: 'pre-upgrade',
      clone: { from: 'pre-upgrade', role: 'new', strategy: 'swap' },
    });
    expect(readStepArgs('finish', { status: 'rolled-back' })).toEqual({ status: 'rolled-back' });
    // A Task with no args at all (a direct call, an old definition) is a Task with none.
    expect(readStepArgs('quiesce', undefined)).toEqual({});
  });

  it('refuses a value its spec does not allow, naming the step and the argument', () => {
    const error = refusal('startSnapshot', { role: 'safety', clone: { from: 'requested', role: 'production' } });
    expect(error.code).toBe('INTERNAL');
    expect(error.message).toContain('step startSnapshot');
    expect(error.message).toContain('args.clone.role must be one of "rehearsal-clone", "new", "restored", not "production"');
    expect(error.details).toEqual({ step: 'startSnapshot', arg: 'clone.role' });
  });

  it('refuses a missing argument, a misspelt one, and args that are not an object', () => {
    expect(refusal('swap', { replacement: 'new' }).message).toContain('args.retired must be one of "retired", "failed", not nothing');
    expect(refusal('verify', { target: 'new', tagret: 'production' }).message).toContain('args.tagret is not an argument of the step (it takes target)');
    expect(refusal('quiesce', { role: 'safety' }).message).toContain('args.role is not an argument of the step (it takes none)');
    expect(refusal('finish', 'succeeded').message).toContain('args must be an object, not "succeeded"');
    expect(refusal('finish', { status: 'running' }).details).toEqual({ step: 'finish', arg: 'status' });
    expect(refusal('migrate', { target: 7 }).message).toContain('not 7');
  });

  it('runStep checks the args before the step runs: no port is touched', async () => {
    const untouchable = new Proxy(
      {},
      {
        get: (_target, member) => {
          throw new Error(`the step used ${String(member)}`);
        },
      },
    );
    const ctx: StepContext = {
      fleet: untouchable as Fleet,
      connector: untouchable as Connector,
      ledger: untouchable as Ledger,
      quiescers: untouchable as QuiescerFactory,
      migrationsDir: '.',
      history: DEFAULT_HISTORY,
      log: silentLogger,
    };
    const state = { run: { runId: 'r1', kind: 'upgrade', database: 'shop' } } as const;
    await expect(runStep('checkDatabase', { state, args: { role: 'retired' } }, ctx)).rejects.toMatchObject({
      code: 'INTERNAL',
      details: { step: 'checkDatabase', arg: 'role' },
    });
  });
});

describe('the generated definitions, against the specs', () => {
  it('have Tasks to check', () => {
    expect(TASKS.length).toBeGreaterThan(60);
  });

  it.each(Object.keys(WORKFLOWS))('%s: every Task gives its step args its spec reads, unchanged', (file) => {
    for (const task of TASKS.filter((t) => t.workflow === file)) expect(readStepArgs(task.step, task.args), task.name).toEqual(task.args);
  });

  it.each(Object.keys(WORKFLOWS))("%s: every Task puts its result where its step's spec allows, and what it catches at a catch path", (file) => {
    for (const task of TASKS.filter((t) => t.workflow === file)) {
      const allowed: readonly (string | null)[] = STEP_SPECS[task.step].resultPaths;
      expect(allowed, `${task.name} (${task.step})`).toContain(task.resultPath);
      for (const path of task.catchPaths) expect(CATCH_PATHS, task.name).toContain(path);
    }
  });

  it('every ResultPath a spec allows is one some Task uses (none is left over)', () => {
    const used = new Set(TASKS.map((t) => `${t.step} ${String(t.resultPath)}`));
    const allowed = Object.entries(STEP_SPECS).flatMap(([step, spec]) => spec.resultPaths.map((path) => `${step} ${String(path)}`));
    expect(allowed.filter((a) => !used.has(a))).toEqual([]);
    expect(Object.keys(STEP_SPECS).filter((step) => !TASKS.some((t) => t.step === step))).toEqual([]);
  });

  it('every Pass state writes a result PassResults types', () => {
    for (const build of Object.values(WORKFLOWS)) {
      for (const [name, state] of Object.entries(build().States)) {
        if (state.Type === 'Pass') expect(PASS_RESULTS, name).toContain(state.ResultPath);
      }
    }
  });

  it('a Task its spec does not allow does not compile', () => {
    const b = new AslBuilder();
    // @ts-expect-error quiesce's result goes to $.quiesced, not $.rollback
    b.task('Quiesce', 'quiesce', { resultPath: '$.rollback' });
    // @ts-expect-error quiesce takes no args
    b.task('Quiesce', 'quiesce', { resultPath: '$.quiesced', args: { role: 'safety' } });
    // @ts-expect-error migrate needs its target
    b.task('Migrate', 'migrate', { resultPath: '$.promoted' });
    // @ts-expect-error a snapshot is no target of a migration
    b.task('Migrate', 'migrate', { resultPath: '$.promoted', args: { target: 'safety' } });
    // @ts-expect-error finish writes nothing
    b.task('Finish', 'finish', { resultPath: '$.finished', args: { status: 'succeeded' } });
    // @ts-expect-error a Catch keeps its error at $.error or $.rollbackError
    b.task('Finish', 'finish', { resultPath: null, args: { status: 'succeeded' }, catchPath: '$.oops' });
    // @ts-expect-error a rehearsal clone's progress is kept at $.rehearsed, where the step counts it from
    b.migrateLoop('MigrateRehearsalClone', 'rehearsal-clone', '$.promoted', 'Next', 'Failed');
    // @ts-expect-error migrate's result does not go to $.poll
    b.pollLoop('Clone', { step: 'migrate', args: { target: 'new' } }, { step: 'checkDatabase', args: { role: 'new' } }, 'Next', 'Failed');
    b.task('Quiesce', 'quiesce', { resultPath: '$.quiesced' });
    expect(Object.keys(b.states)).toContain('Quiesce');
  });

  it('the workflow state has a field only where some state writes one', () => {
    const state: WorkflowState = { run: { runId: 'r1', kind: 'upgrade', database: 'shop' } };
    // @ts-expect-error no state writes $.replacement
    expect(state.replacement).toBeUndefined();
    // @ts-expect-error rollbackPlan writes $.rollback without a replacement
    expect(state.rollback?.replacement).toBeUndefined();
    expect(state.promoted?.applied[0]?.lockRetries).toBeUndefined();
  });
});
