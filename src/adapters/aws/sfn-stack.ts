import { ListStateMachinesCommand, ListTagsForResourceCommand, SFNClient } from '@aws-sdk/client-sfn';
import { SafeshiftError } from '../../core/errors.ts';
import { isAwsError } from './aws-errors.ts';
import { withBackoff, type BackoffOptions } from './backoff.ts';
import { StackTagKeys, stateMachineNameOf, type WorkflowKind } from './sfn-naming.ts';

/** A deployed SafeUpgrade state machine and what its tags say about the deployment. */
export interface Deployment {
  readonly stateMachineArn: string;
  readonly workflow?: WorkflowKind;
  /** The database it upgrades (its RDS instance or Aurora cluster identifier). */
  readonly database?: string;
  readonly ledgerTable?: string;
  /** The construct's default promote strategy. */
  readonly strategy?: 'in-place' | 'swap';
  /** Checksum of the migrations and verify checks it was deployed with. */
  readonly migrationsChecksum?: string;
}

/** Either the state machine's ARN, or the stack (name prefix) whose `<stack>-<workflow>` machine to use. */
export type DeploymentRef = { readonly stateMachineArn: string } | { readonly stack: string };

const THROTTLED = ['ThrottlingException', 'TooManyRequestsException'];

/**
 * Finds a deployment's state machine and reads its tags. `--stack NAME` needs no CloudFormation
 * access: the SafeUpgrade construct names its machines `<NAME>-upgrade`, `-restore` and
 * `-rehearsal` (its `namePrefix`, the stack's name unless set otherwise), which ListStateMachines finds.
 *
 * IAM: states:ListStateMachines (for `--stack`) and states:ListTagsForResource on the state machine.
 *
 * @example
 * ```ts
 * const d = await resolveDeployment({ stack: 'ShopDatabase' }, 'upgrade', new SFNClient({}));
 * d.stateMachineArn; d.database; d.ledgerTable;
 * ```
 */
export async function resolveDeployment(ref: DeploymentRef, workflow: WorkflowKind, client: SFNClient, retry?: BackoffOptions): Promise<Deployment> {
  const call = <T>(fn: () => Promise<T>) => withBackoff(fn, (e) => isAwsError(e, ...THROTTLED), retry);
  let stateMachineArn: string;
  if ('stateMachineArn' in ref) {
    stateMachineArn = ref.stateMachineArn;
  } else {
    const name = stateMachineNameOf(ref.stack, workflow);
    let found: string | undefined;
    let nextToken: string | undefined;
    do {
      const token = nextToken;
      const page = await call(() => client.send(new ListStateMachinesCommand({ maxResults: 1000, ...(token ? { nextToken: token } : {}) })));
      found = page.stateMachines?.find((m) => m.name === name)?.stateMachineArn;
      nextToken = page.nextToken;
    } while (!found && nextToken);
    if (!found) {
      throw new SafeshiftError(
        'BAD_OPTION',
        `no state machine named ${name} in this account and region; is stack ${ref.stack} deployed here (check --region), ` +
          `and was SafeUpgrade given another namePrefix? --state-machine-arn names it directly`,
      );
    }
    stateMachineArn = found;
  }
  let tags: Record<string, string> = {};
  try {
    const out = await call(() => client.send(new ListTagsForResourceCommand({ resourceArn: stateMachineArn })));
    tags = Object.fromEntries((out.tags ?? []).map((t) => [t.key ?? '', t.value ?? '']));
  } catch (error) {
    if (isAwsError(error, 'ResourceNotFound', 'InvalidArn')) {
      throw new SafeshiftError('BAD_OPTION', `state machine ${stateMachineArn} does not exist (or is not a valid ARN)`, { cause: error });
    }
    // Without the tags the run can still start; the Lambdas know their database.
    if (!isAwsError(error, 'AccessDeniedException')) throw error;
  }
  const kind = tags[StackTagKeys.workflow];
  if (kind && kind !== workflow) {
    throw new SafeshiftError(
      'BAD_OPTION',
      `state machine ${stateMachineArn} runs safeshift's ${kind} workflow, not ${workflow}; give the ${workflow} state machine's ARN`,
    );
  }
  const strategy = tags[StackTagKeys.strategy];
  return {
    stateMachineArn,
    ...(kind ? { workflow } : {}),
    ...(tags[StackTagKeys.database] ? { database: tags[StackTagKeys.database] } : {}),
    ...(tags[StackTagKeys.ledgerTable] ? { ledgerTable: tags[StackTagKeys.ledgerTable] } : {}),
    ...(strategy === 'in-place' || strategy === 'swap' ? { strategy } : {}),
    ...(tags[StackTagKeys.migrationsChecksum] ? { migrationsChecksum: tags[StackTagKeys.migrationsChecksum] } : {}),
  };
}

/**
 * The region of a Step Functions ARN (`arn:aws:states:eu-west-1:…`), so `--state-machine-arn` alone
 * is enough.
 *
 * @example
 * ```ts
 * regionOfArn('arn:aws:states:eu-west-1:123456789012:stateMachine:shop-upgrade') // 'eu-west-1'
 * ```
 */
export function regionOfArn(arn: string): string | undefined {
  const region = arn.split(':')[3];
  return region === '' ? undefined : region;
}
