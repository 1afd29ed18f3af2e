import { AwsQuiescerFactory } from '../../src/adapters/aws/quiescers.ts';
import type { QuiescerFactory } from '../../src/ports.ts';
import type { PortFactory } from '../aws-context.ts';

/**
 * Lambda reserved-concurrency quiescers (`lambda:NAME`); the handler refuses specs the deployment
 * was not configured with before they get here.
 *
 * @example
 * ```ts
 * export const handler = createStepHandler('quiesce', { ledger: ledgerPort, quiescers: quiescersPort });
 * ```
 */
export const quiescersPort: PortFactory<QuiescerFactory> = () => new AwsQuiescerFactory();
