import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  ListStateMachinesCommand,
  ListTagsForResourceCommand,
  SFNClient,
  StartExecutionCommand,
  type HistoryEvent,
} from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { migrationsBundle } from '../src/adapters/aws/sfn-migrations-checksum.ts';
import { resolveDeployment } from '../src/adapters/aws/sfn-stack.ts';
import { SfnTrigger } from '../src/adapters/aws/sfn-trigger.ts';
import { SafeshiftError } from '../src/core/errors.ts';
import { runCli } from '../src/cli/run-cli.ts';
import { awsError } from './support/aws-errors.ts';
import { defined } from './support/defined.ts';

/**
 * The pipeline trigger against a mocked Step Functions: the exact requests, a repeated run name,
 * history streaming, every way an execution ends and its exit code, and throttling.
 */
const sfn = mockClient(SFNClient);
const dynamo = mockClient(DynamoDBDocumentClient);
beforeEach(() => {
  sfn.reset();
  dynamo.reset();
});

const MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:Shop-upgrade';
const EXECUTION = (name: string) => `arn:aws:states:eu-west-1:123456789012:execution:Shop-upgrade:${name}`;
const MIGRATIONS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'migrations');

let nextId = 0;
const at = new Date('2026-03-01T10:00:00Z');
function event(type: string, extra: Partial<HistoryEvent> = {}): HistoryEvent {
  nextId++;
  return { id: nextId, type: type as HistoryEvent['type'], timestamp: new Date(at.getTime() + nextId * 1000), ...extra };
}
const entered = (name: string, type = 'TaskStateEntered') => event(type, { stateEnteredEventDetails: { name } });
const exited = (name: string, type = 'TaskStateExited') => event(type, { stateExitedEventDetails: { name } });
const lambdaFailed = (code: string, message: string) =>
  event('LambdaFunctionFailed', {
    lambdaFunctionFailedEventDetails: { error: code, cause: JSON.stringify({ errorType: code, errorMessage: JSON.stringify({ code, message }), trace: [] }) },
  });
const failedWith = (error: string) => event('ExecutionFailed', { executionFailedEventDetails: { error, cause: 'see the ledger' } });

/**
 * A fake execution history: each poll (a call without nextToken) reveals the next batch of events;
 * pages are served newest-first, `maxResults` at a time, as with `reverseOrder: true`.
 */
function serveHistory(batches: HistoryEvent[][]): { polls: () => number } {
  let visible = 0;
  let polls = 0;
  sfn.on(GetExecutionHistoryCommand).callsFake((input: { nextToken?: string; maxResults?: number; reverseOrder?: boolean }) => {
    expect(input.reverseOrder).toBe(true);
    if (!input.nextToken) {
      polls++;
      visible = batches.slice(0, polls).flat().length;
    }
    const all = batches.flat().slice(0, visible).reverse();
    const start = input.nextToken ? Number(input.nextToken) : 0;
    const size = input.maxResults ?? 1000;
    const page = all.slice(start, start + size);
    return { events: page, ...(start + size < all.length ? { nextToken: String(start + size) } : {}) };
  });
  return { polls: () => polls };
}

function trigger(lines: string[] = [], waits: number[] = []) {
  return new SfnTrigger({
    client: new SFNClient({ region: 'eu-west-1' }),
    log: (l) => lines.push(l),
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
    retry: { baseMs: 10, sleep: async () => {}, random: () => 0.5 },
  });
}

describe('SfnTrigger.start', () => {
  it('starts the execution named after the run, with the run id derived from it in the input', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: EXECUTION('release-42'), startDate: at });
    const started = await trigger().start(
      MACHINE,
      { kind: 'upgrade', database: 'shop', targetVersion: '5', strategy: 'in-place', rehearsal: true },
      'release-42',
    );
    const runId = SfnTrigger.runIdOf(MACHINE, 'release-42');
    expect(runId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input)).toEqual([
      {
        stateMachineArn: MACHINE,
        name: 'release-42',
        input: JSON.stringify({ run: { kind: 'upgrade', database: 'shop', targetVersion: '5', strategy: 'in-place', rehearsal: true, runId } }),
      },
    ]);
    expect(started).toEqual({ executionArn: EXECUTION('release-42'), runName: 'release-42', runId, attached: false });
  });

  it('does not start a second run for a repeated run name: it attaches to the execution that has it', async () => {
    sfn.on(StartExecutionCommand).rejects(awsError('ExecutionAlreadyExists'));
    const firstInput = JSON.stringify({ run: { kind: 'upgrade', targetVersion: '4', strategy: 'in-place', rehearsal: true, runId: 'first-run-id' } });
    sfn.on(DescribeExecutionCommand).resolves({ executionArn: EXECUTION('release-42'), status: 'SUCCEEDED', input: firstInput });
    const lines: string[] = [];
    const started = await trigger(lines).start(MACHINE, { kind: 'upgrade', targetVersion: '5', strategy: 'in-place', rehearsal: true }, 'release-42');
    expect(started).toEqual({ executionArn: EXECUTION('release-42'), runName: 'release-42', runId: 'first-run-id', attached: true });
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(1);
    expect(sfn.commandCalls(DescribeExecutionCommand)[0]?.args[0].input).toEqual({ executionArn: EXECUTION('release-42') });
    expect(lines.join('\n')).toMatch(/already started \(SUCCEEDED\); following it instead of starting another, although it was started with other options/);
  });

  it('gives the same run id for the same run name, and another for another name or machine', () => {
    expect(SfnTrigger.runIdOf(MACHINE, 'a')).toBe(SfnTrigger.runIdOf(MACHINE, 'a'));
    expect(SfnTrigger.runIdOf(MACHINE, 'a')).not.toBe(SfnTrigger.runIdOf(MACHINE, 'b'));
    expect(SfnTrigger.runIdOf(MACHINE, 'a')).not.toBe(SfnTrigger.runIdOf(MACHINE.replace('upgrade', 'restore'), 'a'));
    expect(SfnTrigger.newRunName('upgrade', at)).toMatch(/^upgrade-20260301T100000-[0-9a-f]{6}$/);
  });

  it('retries a throttled start with backoff', async () => {
    sfn
      .on(StartExecutionCommand)
      .rejectsOnce(awsError('ThrottlingException'))
      .rejectsOnce(awsError('ThrottlingException'))
      .resolves({ executionArn: EXECUTION('r1') });
    const started = await trigger().start(MACHINE, { kind: 'upgrade', strategy: 'in-place', rehearsal: true }, 'r1');
    expect(started.executionArn).toBe(EXECUTION('r1'));
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(3);
  });

  it('refuses a run name Step Functions would not accept, and a state machine that does not exist', async () => {
    const refused = trigger().start(MACHINE, { kind: 'upgrade', strategy: 'in-place', rehearsal: true }, 'has spaces');
    await expect(refused).rejects.toMatchObject({ code: 'BAD_OPTION' });
    await expect(refused).rejects.toThrow('"has spaces"');
    sfn.on(StartExecutionCommand).rejects(awsError('StateMachineDoesNotExist'));
    await expect(trigger().start(MACHINE, { kind: 'upgrade', strategy: 'in-place', rehearsal: true }, 'r1')).rejects.toBeInstanceOf(SafeshiftError);
  });
});

describe('SfnTrigger.follow', () => {
  it('streams each state as it is entered, polling quickly while things happen and more slowly while they do not', async () => {
    nextId = 0;
    serveHistory([
      [event('ExecutionStarted'), entered('Preflight'), exited('Preflight'), entered('AnythingToDo', 'ChoiceStateEntered')],
      [],
      [],
      [
        exited('AnythingToDo', 'ChoiceStateExited'),
        entered('FinishSucceeded'),
        exited('FinishSucceeded'),
        entered('Succeeded', 'SucceedStateEntered'),
        event('ExecutionSucceeded'),
      ],
    ]);
    const lines: string[] = [];
    const waits: number[] = [];
    const outcome = await trigger(lines, waits).follow(EXECUTION('r1'));
    expect(lines).toEqual(['-> Preflight', '-> AnythingToDo', '-> FinishSucceeded', '-> Succeeded']);
    expect(waits).toEqual([1000, 1500, 2250]);
    expect(outcome).toMatchObject({ status: 'SUCCEEDED', exitCode: 0, transitions: 4 });
    expect(outcome.timeline.map((t) => t.state)).toEqual(['Preflight', 'AnythingToDo', 'FinishSucceeded', 'Succeeded']);
    expect(outcome.timeline[0]).toMatchObject({ enteredAt: '2026-03-01T10:00:02.000Z', exitedAt: '2026-03-01T10:00:03.000Z' });
  });

  it('reads a long history page by page, newest first, and emits it oldest first', async () => {
    nextId = 0;
    const many = Array.from({ length: 130 }, (_, i) => entered(`State${i}`));
    serveHistory([[event('ExecutionStarted'), ...many, event('ExecutionSucceeded')]]);
    const lines: string[] = [];
    const outcome = await trigger(lines).follow(EXECUTION('r1'));
    expect(lines).toHaveLength(130);
    expect(lines[0]).toBe('-> State0');
    expect(lines[129]).toBe('-> State129');
    expect(outcome.transitions).toBe(130);
    expect(sfn.commandCalls(GetExecutionHistoryCommand).map((c) => c.args[0].input.nextToken)).toEqual([undefined, '100']);
  });

  it.each([
    ['succeeded', () => event('ExecutionSucceeded'), 'SUCCEEDED', 0],
    ['failed and rolled back', () => failedWith('ROLLED_BACK'), 'FAILED', 1],
    ['refused', () => failedWith('REFUSED'), 'FAILED', 2],
    ['needs an operator', () => failedWith('NEEDS_OPERATOR'), 'FAILED', 3],
    ['failed without reaching a Fail state', () => failedWith('States.Runtime'), 'FAILED', 3],
    ['timed out', () => event('ExecutionTimedOut', { executionTimedOutEventDetails: { error: 'States.Timeout' } }), 'TIMED_OUT', 3],
    ['aborted', () => event('ExecutionAborted'), 'ABORTED', 3],
  ] as const)('an execution that %s exits %#', async (_label, end, status, exitCode) => {
    nextId = 0;
    serveHistory([[event('ExecutionStarted'), entered('Preflight'), end()]]);
    const outcome = await trigger().follow(EXECUTION('r1'));
    expect(outcome.status).toBe(status);
    expect(outcome.exitCode).toBe(exitCode);
  });

  it("reports the failed step's stable code and message from the Lambda error the execution recorded", async () => {
    nextId = 0;
    serveHistory([
      [
        event('ExecutionStarted'),
        entered('Preflight'),
        event('LambdaFunctionScheduled'),
        lambdaFailed('LOCKED', 'database shop is locked by run 1a2b, which took the lock 3 min ago'),
        exited('Preflight'),
        entered('FinishRefused'),
        exited('FinishRefused'),
        entered('Refused', 'FailStateEntered'),
        failedWith('REFUSED'),
      ],
    ]);
    const lines: string[] = [];
    const outcome = await trigger(lines).follow(EXECUTION('r1'));
    expect(outcome).toMatchObject({
      exitCode: 2,
      error: 'REFUSED',
      failure: { code: 'LOCKED', message: 'database shop is locked by run 1a2b, which took the lock 3 min ago' },
    });
    expect(lines).toContain('   LOCKED: database shop is locked by run 1a2b, which took the lock 3 min ago');
    expect(outcome.timeline.find((t) => t.state === 'Preflight')?.error).toBe('LOCKED');
  });

  it('retries a throttled history read', async () => {
    nextId = 0;
    const events = [event('ExecutionStarted'), entered('Preflight'), event('ExecutionSucceeded')];
    sfn
      .on(GetExecutionHistoryCommand)
      .rejectsOnce(awsError('ThrottlingException'))
      .resolves({ events: [...events].reverse() });
    const outcome = await trigger().follow(EXECUTION('r1'));
    expect(outcome.exitCode).toBe(0);
    expect(sfn.commandCalls(GetExecutionHistoryCommand)).toHaveLength(2);
  });
});

describe('resolveDeployment', () => {
  const tags = (workflow: string, extra: Record<string, string> = {}) => ({
    tags: Object.entries({
      'safeshift:workflow': workflow,
      'safeshift:database': 'shop',
      'safeshift:ledger-table': 'Shop-Ledger',
      'safeshift:strategy': 'swap',
      ...extra,
    }).map(([key, value]) => ({ key, value })),
  });

  it('finds <stack>-<workflow> across pages and reads the deployment from its tags', async () => {
    sfn
      .on(ListStateMachinesCommand)
      .resolvesOnce({ stateMachines: [{ name: 'Other-upgrade', stateMachineArn: 'arn:other', type: 'STANDARD', creationDate: at }], nextToken: 't2' })
      .resolves({ stateMachines: [{ name: 'Shop-upgrade', stateMachineArn: MACHINE, type: 'STANDARD', creationDate: at }] });
    sfn.on(ListTagsForResourceCommand).resolves(tags('upgrade', { 'safeshift:migrations-checksum': 'abc' }));
    const d = await resolveDeployment({ stack: 'Shop' }, 'upgrade', new SFNClient({ region: 'eu-west-1' }));
    expect(d).toEqual({
      stateMachineArn: MACHINE,
      workflow: 'upgrade',
      database: 'shop',
      ledgerTable: 'Shop-Ledger',
      strategy: 'swap',
      migrationsChecksum: 'abc',
    });
    expect(sfn.commandCalls(ListStateMachinesCommand).map((c) => c.args[0].input.nextToken)).toEqual([undefined, 't2']);
  });

  it("says when the stack has no such state machine, and when an ARN is another workflow's", async () => {
    sfn.on(ListStateMachinesCommand).resolves({ stateMachines: [] });
    await expect(resolveDeployment({ stack: 'Shop' }, 'restore', new SFNClient({}))).rejects.toThrow(/no state machine named Shop-restore/);
    sfn.on(ListTagsForResourceCommand).resolves(tags('restore'));
    await expect(resolveDeployment({ stateMachineArn: MACHINE }, 'upgrade', new SFNClient({}))).rejects.toThrow(
      /runs safeshift's restore workflow, not upgrade/,
    );
  });
});

describe('safeshift upgrade|runs on AWS', () => {
  async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const code = await runCli(args, {
      stdout: (t) => {
        stdout += t;
      },
      stderr: (t) => {
        stderr += `${t}\n`;
      },
      env: {},
    });
    return { code, stdout, stderr };
  }
  const { checksum } = migrationsBundle(MIGRATIONS, path.join(MIGRATIONS, '..', 'verify'));

  it.each([
    ['ROLLED_BACK', 1],
    ['REFUSED', 2],
    ['NEEDS_OPERATOR', 3],
  ] as const)('--wait exits with the code of an execution ending in %s', async (error, code) => {
    nextId = 0;
    sfn.on(ListTagsForResourceCommand).resolves({
      tags: [
        { key: 'safeshift:workflow', value: 'upgrade' },
        { key: 'safeshift:database', value: 'shop' },
        { key: 'safeshift:migrations-checksum', value: checksum },
      ],
    });
    sfn.on(StartExecutionCommand).resolves({ executionArn: EXECUTION('r1') });
    serveHistory([[event('ExecutionStarted'), entered('Preflight'), failedWith(error)]]);
    const out = await cli(['upgrade', '--state-machine-arn', MACHINE, '--target', '3', '--wait', '--run-name', 'r1', '--dir', MIGRATIONS, '--json']);
    expect(out.code).toBe(code);
    expect(out.stderr).toContain('-> Preflight');
    expect(JSON.parse(out.stdout)).toMatchObject({ runName: 'r1', exitCode: code, error, transitions: 1 });
    const started = defined(sfn.commandCalls(StartExecutionCommand)[0]?.args[0].input.input, 'the execution input');
    const input = JSON.parse(started) as { run: Record<string, unknown> };
    expect(input.run).toMatchObject({ kind: 'upgrade', database: 'shop', targetVersion: '3', strategy: 'in-place', rehearsal: true });
  });

  it('refuses (exit 2) to start with migrations other than the deployed ones', async () => {
    sfn.on(ListTagsForResourceCommand).resolves({
      tags: [
        { key: 'safeshift:workflow', value: 'upgrade' },
        { key: 'safeshift:migrations-checksum', value: 'deadbeef'.repeat(8) },
      ],
    });
    const out = await cli(['upgrade', '--state-machine-arn', MACHINE, '--wait', '--dir', MIGRATIONS]);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/CHECKSUM_MISMATCH.*other migrations than/);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('without --wait starts the run and exits 0 with the execution', async () => {
    sfn.on(ListTagsForResourceCommand).resolves({ tags: [] });
    sfn.on(StartExecutionCommand).resolves({ executionArn: EXECUTION('r2') });
    const out = await cli(['restore', '--state-machine-arn', MACHINE.replace('upgrade', 'restore'), '--snapshot', 'ss-pre-shop-1a2b', '--run-name', 'r2']);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(EXECUTION('r2'));
    const started = defined(sfn.commandCalls(StartExecutionCommand)[0]?.args[0].input.input, 'the execution input');
    const input = JSON.parse(started) as { run: Record<string, unknown> };
    expect(input.run).toMatchObject({ kind: 'restore', snapshotId: 'ss-pre-shop-1a2b', strategy: 'in-place', rehearsal: false });
  });

  it("runs --stack lists the runs of the deployment's DynamoDB ledger", async () => {
    sfn.on(ListStateMachinesCommand).resolves({ stateMachines: [{ name: 'Shop-upgrade', stateMachineArn: MACHINE, type: 'STANDARD', creationDate: at }] });
    sfn.on(ListTagsForResourceCommand).resolves({
      tags: [
        { key: 'safeshift:workflow', value: 'upgrade' },
        { key: 'safeshift:database', value: 'shop' },
        { key: 'safeshift:ledger-table', value: 'Shop-Ledger' },
      ],
    });
    dynamo.on(QueryCommand).resolves({
      Items: [
        {
          pk: 'RUN#r1',
          sk: 'RUN',
          runId: 'r1',
          database: 'shop',
          kind: 'upgrade',
          status: 'rolled-back',
          startedAt: '2026-03-01T10:00:00.000Z',
          fromVersion: '2',
          toVersion: '2',
          error: { code: 'VERIFY_FAILED', message: 'x' },
        },
      ],
    });
    dynamo.on(GetCommand).resolves({});
    const out = await cli(['runs', '--stack', 'Shop', '--region', 'eu-west-1']);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/upgrade\s+rolled-back\s+2 → 2: rolled back, at 2\s+VERIFY_FAILED\s+r1/);
    const query = dynamo.commandCalls(QueryCommand)[0]?.args[0].input;
    expect(query).toMatchObject({ TableName: 'Shop-Ledger', IndexName: 'byDatabase' });
  });
});
