import { DynamoDbLedger } from '../../src/adapters/aws/dynamodb-ledger.ts';
import type { Ledger } from '../../src/ports.ts';
import type { PortFactory } from '../aws-context.ts';

/**
 * The ledger in the deployment's DynamoDB table.
 *
 * @example
 * ```ts
 * export const handler = createStepHandler('finish', { ledger: ledgerPort });
 * ```
 */
export const ledgerPort: PortFactory<Ledger> = (settings) => new DynamoDbLedger({ tableName: settings.ledgerTable });
