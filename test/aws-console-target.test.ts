import { ListStateMachinesCommand, ListTagsForResourceCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { awsConsoleTarget } from '../src/cli/commands/console.ts';
import type { CommandInput } from '../src/cli/command.ts';

/**
 * `safeshift console --stack NAME` finds the deployment the way `upgrade --stack` does: the
 * `<NAME>-restore` state machine by ListStateMachines, the ledger table from its tags.
 */
const sfn = mockClient(SFNClient);
afterEach(() => sfn.reset());

const RESTORE = 'arn:aws:states:eu-west-1:111122223333:stateMachine:Shop-restore';
const at = new Date('2026-03-01T10:00:00Z');
const values = (v: CommandInput['values']): Pick<CommandInput, 'values'> => ({ values: v });
const tagged = (tags: Record<string, string>) => ({ tags: Object.entries(tags).map(([key, value]) => ({ key, value })) });

describe('awsConsoleTarget', () => {
  it('is undefined for a local console', async () => {
    expect(await awsConsoleTarget(values({ port: '0' }), new SFNClient({}))).toBeUndefined();
    expect(sfn.calls()).toHaveLength(0);
  });

  it("--stack finds the restore state machine and the ledger table its tags name, in the ARN's region", async () => {
    sfn.on(ListStateMachinesCommand).resolves({
      stateMachines: [
        { name: 'Shop-upgrade', stateMachineArn: RESTORE.replace('restore', 'upgrade'), type: 'STANDARD', creationDate: at },
        { name: 'Shop-restore', stateMachineArn: RESTORE, type: 'STANDARD', creationDate: at },
      ],
    });
    sfn.on(ListTagsForResourceCommand).resolves(tagged({ 'safeshift:workflow': 'restore', 'safeshift:ledger-table': 'Shop-Ledger' }));
    const target = await awsConsoleTarget(values({ stack: 'Shop' }), new SFNClient({ region: 'eu-west-1' }));
    expect(target).toEqual({ ledgerTable: 'Shop-Ledger', restoreStateMachineArn: RESTORE, region: 'eu-west-1' });
    expect(sfn.commandCalls(ListTagsForResourceCommand).map((c) => c.args[0].input)).toEqual([{ resourceArn: RESTORE }]);
  });

  it('--stack without a ledger tag asks for --ledger-table, and takes it when given', async () => {
    sfn.on(ListStateMachinesCommand).resolves({ stateMachines: [{ name: 'Shop-restore', stateMachineArn: RESTORE, type: 'STANDARD', creationDate: at }] });
    sfn.on(ListTagsForResourceCommand).rejects(Object.assign(new Error('not allowed'), { name: 'AccessDeniedException' }));
    const refused = awsConsoleTarget(values({ stack: 'Shop' }), new SFNClient({}));
    await expect(refused).rejects.toThrow(/give --ledger-table NAME too/);
    await expect(refused).rejects.toMatchObject({ code: 'BAD_OPTION' });
    const target = await awsConsoleTarget(values({ stack: 'Shop', 'ledger-table': 'Mine', region: 'us-east-2' }), new SFNClient({}));
    expect(target).toEqual({ ledgerTable: 'Mine', restoreStateMachineArn: RESTORE, region: 'us-east-2' });
  });

  it('refuses a stack that is not deployed, mixed options and a half-named deployment, before any AWS call it can avoid', async () => {
    sfn.on(ListStateMachinesCommand).resolves({ stateMachines: [] });
    await expect(awsConsoleTarget(values({ stack: 'Nope' }), new SFNClient({}))).rejects.toThrow(/no state machine named Nope-restore/);
    sfn.reset();
    await expect(awsConsoleTarget(values({ stack: 'Shop', 'restore-state-machine': RESTORE }), new SFNClient({}))).rejects.toThrow(
      /either --stack or --restore-state-machine/,
    );
    await expect(awsConsoleTarget(values({ stack: 'Shop', 'database-url': 'postgres://x/y' }), new SFNClient({}))).rejects.toThrow(
      /--database-url is for the local console/,
    );
    await expect(awsConsoleTarget(values({ 'ledger-table': 'Shop-Ledger' }), new SFNClient({}))).rejects.toThrow(/--stack NAME, or both --ledger-table/);
    await expect(awsConsoleTarget(values({ 'ledger-table': 'T', 'restore-state-machine': 'not-an-arn' }), new SFNClient({}))).rejects.toThrow(
      /--restore-state-machine ARN/,
    );
    expect(sfn.calls()).toHaveLength(0);
  });

  it('takes --ledger-table and --restore-state-machine as given, with the region of the ARN', async () => {
    const target = await awsConsoleTarget(values({ 'ledger-table': 'Shop-Ledger', 'restore-state-machine': RESTORE }), new SFNClient({}));
    expect(target).toEqual({ ledgerTable: 'Shop-Ledger', restoreStateMachineArn: RESTORE, region: 'eu-west-1' });
    expect(sfn.calls()).toHaveLength(0);
  });
});
