import {
  CreateDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ListTagsForResourceCommand,
  RDSClient,
  RestoreDBInstanceFromDBSnapshotCommand,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RdsInstanceFleet } from '../src/adapters/aws/rds-instance-fleet.ts';
import { LocalConnector } from '../src/adapters/local/local-connector.ts';
import { LocalQuiescerFactory } from '../src/adapters/local/local-quiescers.ts';
import { PostgresLedger } from '../src/adapters/local/postgres-ledger.ts';
import { DEFAULT_HISTORY } from '../src/core/history.ts';
import { silentLogger } from '../src/core/logger.ts';
import type { Fleet } from '../src/ports.ts';
import type { StepContext } from '../src/steps/context.ts';
import { startSnapshotStep } from '../src/steps/fleet-steps.ts';
import type { WorkflowState } from '../src/steps/state.ts';
import { awsError, codeOf } from './support/aws-errors.ts';
import { escapeIdentifier } from '../src/core/identifiers.ts';
import { freshDatabase, testServerUrl, type FreshDatabase } from './support/database.ts';
import { defined } from './support/defined.ts';

// The snapshot step that starts a clone beside its snapshot, on a fleet whose starts only ask (RDS):
// the AWS side is aws-sdk-client-mock, the ledger and the database are the real local ones.
const rds = mockClient(RDSClient);
let db: FreshDatabase;
let ledger: PostgresLedger;
let connector: LocalConnector;

beforeAll(async () => {
  db = await freshDatabase();
  ledger = await PostgresLedger.open(testServerUrl(), { database: `${db.name}_ledger` });
  connector = new LocalConnector(testServerUrl());
});
afterAll(async () => {
  // Each is unset when beforeAll failed before making it. The connector holds nothing open: each session it opens is closed by its user.
  await (ledger as PostgresLedger | undefined)?.close();
  const made = db as FreshDatabase | undefined;
  await made?.client.query(`drop database if exists ${escapeIdentifier(`${made.name}_ledger`)} with (force)`);
  await made?.drop();
});
beforeEach(() => {
  rds.reset();
  // RDS knows production and the chosen snapshot, so a restore, if asked for, would be accepted.
  rds.on(CreateDBSnapshotCommand).resolves({});
  rds.on(DescribeDBSnapshotsCommand).resolves({
    DBSnapshots: [
      {
        DBSnapshotIdentifier: 'ss-pre-shop-run0',
        DBSnapshotArn: 'arn:aws:rds:eu-west-1:123456789012:snapshot:pre',
        DBInstanceIdentifier: db.name,
        Status: 'available',
      },
    ],
  });
  rds.on(ListTagsForResourceCommand).resolves({ TagList: [] });
  rds.on(DescribeDBInstancesCommand).callsFake((input: { DBInstanceIdentifier?: string }) => {
    if (input.DBInstanceIdentifier !== db.name) throw awsError('DBInstanceNotFoundFault');
    return {
      DBInstances: [
        {
          DBInstanceIdentifier: db.name,
          DBInstanceArn: `arn:aws:rds:eu-west-1:123456789012:db:${db.name}`,
          DBInstanceStatus: 'available',
          DBInstanceClass: 'db.t4g.micro',
        },
      ],
    };
  });
  rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
});

function context(fleet: Fleet): StepContext {
  return {
    fleet,
    connector,
    ledger,
    quiescers: new LocalQuiescerFactory(testServerUrl()),
    migrationsDir: '.',
    history: DEFAULT_HISTORY,
    log: silentLogger,
  };
}

/** A restore run as its preflight leaves it: recorded in the ledger. */
async function restoreState(runId: string): Promise<WorkflowState> {
  await ledger.startRun({ runId, database: db.name, kind: 'restore', status: 'running', startedAt: new Date().toISOString() });
  return { run: { runId, kind: 'restore', database: db.name, snapshotId: 'ss-pre-shop-run0' } };
}

describe('startSnapshot with a clone beside it, on a fleet whose starts only ask (RDS)', () => {
  it('starts no restore when the safety snapshot is refused', async () => {
    rds.on(CreateDBSnapshotCommand).rejects(awsError('SnapshotQuotaExceededFault'));
    const fleet = new RdsInstanceFleet({ client: new RDSClient({ region: 'eu-west-1' }) });
    expect((fleet as Fleet).copiesWhileStarting).toBeFalsy();

    const step = startSnapshotStep(await restoreState('run1'), { role: 'safety', clone: { from: 'requested', role: 'restored' } }, context(fleet));

    expect(await codeOf(step)).toBe('SNAPSHOT_QUOTA_EXCEEDED');
    expect(rds.commandCalls(CreateDBSnapshotCommand)).toHaveLength(1);
    expect(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)).toHaveLength(0);
  });

  it('asks for the snapshot, then for the restore of the chosen snapshot, in one Task', async () => {
    const fleet = new RdsInstanceFleet({ client: new RDSClient({ region: 'eu-west-1' }) });

    const poll = await startSnapshotStep(await restoreState('run2'), { role: 'safety', clone: { from: 'requested', role: 'restored' } }, context(fleet));

    expect(poll.ready).toBe(false);
    const snapshot = defined(rds.commandCalls(CreateDBSnapshotCommand)[0], 'the CreateDBSnapshot call').args[0].input;
    const restore = defined(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0], 'the RestoreDBInstanceFromDBSnapshot call').args[0].input;
    expect(snapshot.DBInstanceIdentifier).toBe(db.name);
    expect(restore).toMatchObject({ DBSnapshotIdentifier: 'ss-pre-shop-run0' });
    expect(restore.DBInstanceIdentifier).toMatch(/^ss-rst-/);
    const order = rds.calls().map((c) => (c.args[0] as object).constructor.name);
    expect(order.indexOf('CreateDBSnapshotCommand')).toBeLessThan(order.indexOf('RestoreDBInstanceFromDBSnapshotCommand'));
    expect((await ledger.getSnapshot(defined(snapshot.DBSnapshotIdentifier, 'the snapshot identifier')))?.kind).toBe('safety');
  });
});
