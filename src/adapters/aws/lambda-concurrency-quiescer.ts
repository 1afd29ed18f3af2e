import { DeleteFunctionConcurrencyCommand, GetFunctionConcurrencyCommand, LambdaClient, PutFunctionConcurrencyCommand } from '@aws-sdk/client-lambda';
import { OptionError, SafeshiftError, type Outcome } from '../../core/errors.ts';
import type { Json, Quiescer, QuiesceHold } from '../../ports.ts';
import { awsErrorName, isAwsError } from './aws-errors.ts';
import { withBackoff, type BackoffOptions } from './backoff.ts';

export interface LambdaConcurrencyQuiescerOptions {
  /** @default a new LambdaClient for the Lambda's region */
  readonly client?: LambdaClient;
  /** How throttled calls (TooManyRequestsException) and conflicts with an update in progress are retried. */
  readonly retry?: BackoffOptions;
}

const PREFIX = 'lambda:';
/** Worth another try after a wait: throttling, and a function busy with an update of its own. */
const RETRYABLE = ['TooManyRequestsException', 'ResourceConflictException'];

/**
 * Quiesces one Lambda function that writes to the database, by its reserved concurrency. Spec:
 * `lambda:FUNCTION` where FUNCTION is a name, a partial ARN or a full ARN (the ARN's own colons are
 * fine: only the first one separates the kind).
 *
 * - `capture` records the reserved concurrency as it is: a number, or `null` when the function has
 *   none (it then draws on the account's unreserved pool).
 * - `quiesce` sets reserved concurrency to 0: Lambda stops starting new invocations (callers get a
 *   throttle, event sources hold or retry their events); running invocations finish.
 * - `resume(prior)` puts back exactly what `capture` saw: PutFunctionConcurrency for a number,
 *   DeleteFunctionConcurrency for `null`. Both are idempotent, so a repeated resume is harmless.
 *
 * IAM: lambda:GetFunctionConcurrency, lambda:PutFunctionConcurrency, lambda:DeleteFunctionConcurrency.
 *
 * @example
 * ```ts
 * const q = new LambdaConcurrencyQuiescer('lambda:orders-api');
 * const prior = await q.capture();      // e.g. null: no reserved concurrency
 * await ledger.putQuiesce({ runId, database, apiId: q.id, prior, status: 'quiescing' });
 * await q.quiesce();                    // reserved concurrency 0
 * await q.resume(prior);                // reserved concurrency removed again
 * ```
 */
export class LambdaConcurrencyQuiescer implements Quiescer {
  readonly id: string;
  /** The function name or ARN given in the spec. */
  readonly functionName: string;
  private readonly lambda: LambdaClient;
  private readonly retry: BackoffOptions;

  constructor(spec: string, opts: LambdaConcurrencyQuiescerOptions = {}) {
    if (!spec.startsWith(PREFIX) || spec.length === PREFIX.length) {
      throw new OptionError(`"${spec}" is not a Lambda quiesce spec; expected lambda:FUNCTION_NAME_OR_ARN`);
    }
    this.id = spec;
    this.functionName = spec.slice(PREFIX.length);
    this.lambda = opts.client ?? new LambdaClient({});
    this.retry = opts.retry ?? {};
  }

  /** The function exists and its concurrency can be read (the rights to change it are the same role's). */
  async check(): Promise<void> {
    await this.capture();
  }

  /** Reserved concurrency 0 is what quiesce set; anything else lets invocations through again. */
  async stillQuiesced(): Promise<QuiesceHold> {
    const now = await this.capture();
    return { holds: now === 0, evidence: `reserved concurrency is ${now === null ? 'none (unreserved)' : JSON.stringify(now)}` };
  }

  /** The function's reserved concurrency, or `null` when it has none. */
  async capture(): Promise<Json> {
    const out = await this.call('refused', 'reading the reserved concurrency of', () =>
      this.lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: this.functionName })),
    );
    return out.ReservedConcurrentExecutions ?? null;
  }

  async quiesce(): Promise<void> {
    await this.call('needs-operator', 'setting reserved concurrency 0 on', () =>
      this.lambda.send(new PutFunctionConcurrencyCommand({ FunctionName: this.functionName, ReservedConcurrentExecutions: 0 })),
    );
  }

  async resume(prior: Json): Promise<void> {
    if (prior !== null && !(typeof prior === 'number' && Number.isInteger(prior) && prior >= 0)) {
      throw new SafeshiftError(
        'QUIESCE_FAILED',
        `the recorded state of ${this.id} is ${JSON.stringify(prior)}, not a reserved concurrency (a whole number or null); it was left at 0. ` +
          `Put back what it had by hand (aws lambda put-function-concurrency, or delete-function-concurrency for none)`,
        { outcome: 'needs-operator' },
      );
    }
    await this.call(
      'needs-operator',
      `putting back reserved concurrency ${prior ?? 'none'} on`,
      () =>
        prior === null
          ? this.lambda.send(new DeleteFunctionConcurrencyCommand({ FunctionName: this.functionName }))
          : this.lambda.send(new PutFunctionConcurrencyCommand({ FunctionName: this.functionName, ReservedConcurrentExecutions: prior })),
      { prior },
    );
  }

  /** Runs one Lambda call with backoff, and says what failed and what state the function is in. */
  private async call<T>(outcome: Outcome, doing: string, fn: () => Promise<T>, resuming?: { prior: number | null }): Promise<T> {
    try {
      return await withBackoff(fn, (e) => isAwsError(e, ...RETRYABLE), this.retry);
    } catch (error) {
      const name = awsErrorName(error) ?? 'Error';
      const why =
        name === 'ResourceNotFoundException'
          ? `function ${this.functionName} does not exist in this account and region; check the spec`
          : `${name}${error instanceof Error && error.message ? `: ${error.message}` : ''}`;
      const left = resuming ? ` It is still quiesced (reserved concurrency 0); to resume it by hand: ${this.restoreCommand(resuming.prior)}` : '';
      throw new SafeshiftError('QUIESCE_FAILED', `${doing} Lambda ${this.functionName} failed: ${why}.${left}`, {
        cause: error,
        outcome,
        details: { apiId: this.id, awsError: name },
      });
    }
  }

  private restoreCommand(prior: number | null): string {
    return prior === null
      ? `aws lambda delete-function-concurrency --function-name ${this.functionName}`
      : `aws lambda put-function-concurrency --function-name ${this.functionName} --reserved-concurrent-executions ${prior}`;
  }
}
