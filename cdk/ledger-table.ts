import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { LedgerTableSchema as S } from '../src/adapters/aws/ledger-table-schema.ts';

export interface LedgerTableProps {
  /**
   * A customer managed key for the table. Without one the table is encrypted with the AWS managed
   * key for DynamoDB (`aws/dynamodb`), which the step roles may use without further grants.
   * @default the AWS managed key
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * What happens to the table when the stack is deleted. The ledger is the record of every run,
   * snapshot and quiesced API, so by default it outlives the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The ledger as a DynamoDB table, keyed exactly as DynamoDbLedger reads it (the key names come from
 * LedgerTableSchema, so the two cannot drift): on-demand capacity, point-in-time recovery, KMS
 * encryption, deletion protection, and no TTL (a lock must never expire silently).
 *
 * @example
 * ```ts
 * const ledger = new LedgerTable(this, 'Ledger').table;
 * ```
 */
export class LedgerTable extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: LedgerTableProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: S.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: S.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      ...(props.encryptionKey
        ? { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: props.encryptionKey }
        : { encryption: dynamodb.TableEncryption.AWS_MANAGED }),
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy,
    });
    for (const index of [S.byDatabase, S.byType]) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: index.sortKey, type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }
  }
}
