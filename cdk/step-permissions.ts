import { ArnFormat, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { StepPort } from '../lambdas/step-needs.ts';
import { LedgerTableSchema } from '../src/adapters/aws/ledger-table-schema.ts';
import { SafeshiftTagKeys } from '../src/adapters/aws/rds-tags.ts';

/** What the step Lambdas act on: one database and what safeshift makes of it. */
export interface StepPermissionTarget {
  readonly databaseKind: 'instance' | 'cluster';
  /** The production DB instance or DB cluster identifier. */
  readonly databaseId: string;
  /** For a cluster: its instances' identifiers (they stay behind in the retired cluster after a swap). */
  readonly clusterInstanceIds: readonly string[];
  /** The customer managed KMS key of the database's storage, when it has one. */
  readonly databaseKey?: kms.IKey;
  readonly credentials: secretsmanager.ISecret;
  readonly ledger: dynamodb.ITable;
  /** ARNs of the Lambda functions the quiescers may stop and resume. */
  readonly quiesceFunctionArns: readonly string[];
}

/** Every identifier safeshift creates starts with this (src/steps/names.ts). */
const SAFESHIFT_PREFIX = 'ss-*';
const SNAPSHOT_KINDS = ['pre-upgrade', 'safety', 'rehearsal'];
const DATABASE_KINDS = ['clone', 'retired'];
const TAG_KEYS = [SafeshiftTagKeys.runId, SafeshiftTagKeys.database, SafeshiftTagKeys.kind];

/**
 * The IAM statements a step's role gets for one port: exactly the actions the AWS adapter's TSDoc
 * lists, on the fewest resources AWS lets a policy name.
 *
 * - Production is named by its ARN. Everything safeshift creates is named `ss-*` and must carry its
 *   tags: created only with `aws:RequestTag` safeshift:database = this database (and a safeshift
 *   kind), changed only with `aws:ResourceTag`, restored from and deleted only with
 *   `rds:snapshot-tag` / `rds:cluster-snapshot-tag`. Deleting a database needs kind clone or retired.
 * - Subnet groups and parameter and option groups are only *used* by a restore (they are
 *   production's, whose names an imported database does not reveal), so they are `<type>:*`.
 * - An Aurora cluster's own instances keep their names when a swap retires the cluster, and IAM has
 *   no condition on an instance's cluster's tags: deleting them is allowed by their ARNs, and the
 *   adapter refuses unless the cluster is tagged retired.
 *
 * @example
 * ```ts
 * for (const s of stepPolicyStatements(this, 'ledger', target)) role.addToPolicy(s);
 * ```
 */
export function stepPolicyStatements(scope: Construct, port: StepPort, target: StepPermissionTarget): iam.PolicyStatement[] {
  const stack = Stack.of(scope);
  const rds = (resource: string, name: string) => stack.formatArn({ service: 'rds', resource, resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
  const database = target.databaseId;
  const ofThisDatabase = (key: 'aws:ResourceTag' | 'rds:snapshot-tag' | 'rds:cluster-snapshot-tag') => ({
    StringEquals: { [`${key}/${SafeshiftTagKeys.database}`]: database },
  });
  const created = (kinds: readonly string[]) => ({
    StringEquals: { [`aws:RequestTag/${SafeshiftTagKeys.database}`]: database, [`aws:RequestTag/${SafeshiftTagKeys.kind}`]: [...kinds] },
    'ForAllValues:StringEquals': { 'aws:TagKeys': TAG_KEYS },
  });
  const deletable = {
    StringEquals: { [`aws:ResourceTag/${SafeshiftTagKeys.database}`]: database, [`aws:ResourceTag/${SafeshiftTagKeys.kind}`]: DATABASE_KINDS },
  };
  const allow = (actions: string[], resources: string[], conditions?: Record<string, unknown>) =>
    new iam.PolicyStatement({ actions, resources, ...(conditions ? { conditions } : {}) });
  const clones = rds('db', SAFESHIFT_PREFIX);

  switch (port) {
    case 'ledger': {
      const table = target.ledger.tableArn;
      return [
        allow(
          ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query'],
          [table, `${table}/index/${LedgerTableSchema.byDatabase.indexName}`, `${table}/index/${LedgerTableSchema.byType.indexName}`],
        ),
      ];
    }
    case 'quiescers':
      return target.quiesceFunctionArns.length === 0
        ? []
        : [allow(['lambda:GetFunctionConcurrency', 'lambda:PutFunctionConcurrency', 'lambda:DeleteFunctionConcurrency'], [...target.quiesceFunctionArns])];
    case 'connector': {
      const secret = target.credentials;
      return [
        allow(['secretsmanager:GetSecretValue'], [secret.secretFullArn ?? `${secret.secretArn}-??????`]),
        ...(secret.encryptionKey ? [allow(['kms:Decrypt'], [secret.encryptionKey.keyArn])] : []),
        target.databaseKind === 'cluster'
          ? allow(['rds:DescribeDBClusters'], [rds('cluster', database), rds('cluster', SAFESHIFT_PREFIX)])
          : allow(['rds:DescribeDBInstances'], [rds('db', database), clones]),
      ];
    }
    case 'fleet': {
      const key = target.databaseKey ? [allow(['kms:CreateGrant', 'kms:DescribeKey'], [target.databaseKey.keyArn])] : [];
      return [...(target.databaseKind === 'cluster' ? clusterFleet() : instanceFleet()), ...key];
    }
  }

  function instanceFleet(): iam.PolicyStatement[] {
    const production = rds('db', database);
    const snapshots = rds('snapshot', SAFESHIFT_PREFIX);
    return [
      allow(['rds:DescribeDBInstances'], [production, clones]),
      allow(['rds:DescribeDBSnapshots'], [snapshots]),
      allow(['rds:ListTagsForResource'], [production, clones, snapshots]),
      allow(['rds:CreateDBSnapshot'], [production, snapshots], created(SNAPSHOT_KINDS)),
      allow(['rds:RestoreDBInstanceFromDBSnapshot'], [clones], created(['clone'])),
      allow(['rds:RestoreDBInstanceFromDBSnapshot'], [snapshots], ofThisDatabase('rds:snapshot-tag')),
      allow(['rds:RestoreDBInstanceFromDBSnapshot'], [rds('subgrp', '*'), rds('pg', '*'), rds('og', '*')]),
      allow(['rds:AddTagsToResource'], [clones, snapshots], created([...SNAPSHOT_KINDS, ...DATABASE_KINDS])),
      allow(['rds:RemoveTagsFromResource'], [clones], {
        ...ofThisDatabase('aws:ResourceTag'),
        'ForAllValues:StringEquals': { 'aws:TagKeys': [SafeshiftTagKeys.kind] },
      }),
      // Renaming production is how a swap retires it; production carries no safeshift tags to test.
      allow(['rds:ModifyDBInstance'], [production]),
      allow(['rds:ModifyDBInstance'], [clones], ofThisDatabase('aws:ResourceTag')),
      allow(['rds:DeleteDBInstance'], [clones], deletable),
      allow(['rds:DeleteDBSnapshot'], [snapshots], ofThisDatabase('rds:snapshot-tag')),
    ];
  }

  function clusterFleet(): iam.PolicyStatement[] {
    const production = rds('cluster', database);
    const clusters = rds('cluster', SAFESHIFT_PREFIX);
    const snapshots = rds('cluster-snapshot', SAFESHIFT_PREFIX);
    const productionInstances = target.clusterInstanceIds.map((id) => rds('db', id));
    return [
      allow(['rds:DescribeDBClusters'], [production, clusters]),
      allow(['rds:DescribeDBClusterSnapshots'], [snapshots]),
      // The clone's writer copies production's writer, which must be described; unnamed, any instance may be.
      allow(['rds:DescribeDBInstances'], [clones, ...(productionInstances.length > 0 ? productionInstances : [rds('db', '*')])]),
      allow(['rds:ListTagsForResource'], [production, clusters, snapshots, clones]),
      allow(['rds:CreateDBClusterSnapshot'], [production, snapshots], created(SNAPSHOT_KINDS)),
      allow(['rds:RestoreDBClusterFromSnapshot', 'rds:RestoreDBClusterToPointInTime'], [clusters], created(['clone'])),
      allow(['rds:RestoreDBClusterFromSnapshot'], [snapshots], ofThisDatabase('rds:cluster-snapshot-tag')),
      // A copy-on-write clone reads production; it changes nothing there.
      allow(['rds:RestoreDBClusterToPointInTime'], [production]),
      allow(['rds:RestoreDBClusterFromSnapshot', 'rds:RestoreDBClusterToPointInTime'], [rds('subgrp', '*'), rds('cluster-pg', '*')]),
      allow(['rds:CreateDBInstance'], [clones], created(['clone'])),
      allow(['rds:CreateDBInstance'], [clusters], ofThisDatabase('aws:ResourceTag')),
      allow(['rds:CreateDBInstance'], [rds('pg', '*')]),
      allow(['rds:AddTagsToResource'], [clusters, snapshots, clones], created([...SNAPSHOT_KINDS, ...DATABASE_KINDS])),
      allow(['rds:RemoveTagsFromResource'], [clusters], {
        ...ofThisDatabase('aws:ResourceTag'),
        'ForAllValues:StringEquals': { 'aws:TagKeys': [SafeshiftTagKeys.kind] },
      }),
      allow(['rds:ModifyDBCluster'], [production]),
      allow(['rds:ModifyDBCluster'], [clusters], ofThisDatabase('aws:ResourceTag')),
      allow(['rds:DeleteDBInstance'], [clones], deletable),
      ...(productionInstances.length > 0 ? [allow(['rds:DeleteDBInstance'], productionInstances)] : []),
      allow(['rds:DeleteDBCluster'], [clusters], deletable),
      allow(['rds:DeleteDBClusterSnapshot'], [snapshots], ofThisDatabase('rds:cluster-snapshot-tag')),
    ];
  }
}
