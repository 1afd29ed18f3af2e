import type { LambdaClient } from '@aws-sdk/client-lambda';
import { OptionError } from '../../core/errors.ts';
import type { Quiescer, QuiescerFactory } from '../../ports.ts';
import type { BackoffOptions } from './backoff.ts';
import { LambdaConcurrencyQuiescer } from './lambda-concurrency-quiescer.ts';

export interface AwsQuiescerFactoryOptions {
  /** Shared by every Lambda quiescer. @default a new LambdaClient */
  readonly lambda?: LambdaClient;
  readonly retry?: BackoffOptions;
  /**
   * Makes the quiescers of every kind other than `lambda:` (`db-role:`, `http:`), e.g. the local
   * factory given the SecretsConnector. Without it those kinds are refused with BAD_OPTION.
   */
  readonly fallback?: QuiescerFactory;
}

/**
 * The quiescers of an AWS deployment. `lambda:FUNCTION_NAME_OR_ARN` is handled here (reserved
 * concurrency, LambdaConcurrencyQuiescer). `db-role:` and `http:` are not AWS-specific and are not
 * implemented here: they go to `fallback` when one is given, and are refused with BAD_OPTION
 * otherwise, before anything changed, rather than silently skipped.
 *
 * IAM: what LambdaConcurrencyQuiescer needs (lambda:GetFunctionConcurrency, PutFunctionConcurrency,
 * DeleteFunctionConcurrency), plus whatever the fallback's quiescers need.
 *
 * @example
 * ```ts
 * const quiescers = new AwsQuiescerFactory();
 * const q = quiescers.create('lambda:orders-api', 'shop');
 * ```
 */
export class AwsQuiescerFactory implements QuiescerFactory {
  private readonly opts: AwsQuiescerFactoryOptions;

  constructor(opts: AwsQuiescerFactoryOptions = {}) {
    this.opts = opts;
  }

  create(spec: string, databaseId: string): Quiescer {
    const colon = spec.indexOf(':');
    const kind = colon > 0 ? spec.slice(0, colon) : '';
    if (kind === 'lambda') {
      return new LambdaConcurrencyQuiescer(spec, {
        ...(this.opts.lambda ? { client: this.opts.lambda } : {}),
        ...(this.opts.retry ? { retry: this.opts.retry } : {}),
      });
    }
    if (this.opts.fallback && (kind === 'db-role' || kind === 'http')) return this.opts.fallback.create(spec, databaseId);
    if (kind === 'db-role' || kind === 'http') {
      throw new OptionError(
        `quiesce spec "${spec}": ${kind}: quiescers are not set up in this AWS deployment; ` +
          `use lambda:FUNCTION_NAME_OR_ARN, or configure the deployment with a fallback quiescer factory`,
      );
    }
    throw new OptionError(
      `quiesce spec "${spec}" has an unknown kind; expected lambda:FUNCTION_NAME_OR_ARN${this.opts.fallback ? ', db-role:ROLE or http:URL' : ''}`,
    );
  }
}
