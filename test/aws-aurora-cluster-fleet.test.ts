import {
  AddTagsToResourceCommand,
  CreateDBClusterSnapshotCommand,
  CreateDBInstanceCommand,
  DeleteDBClusterCommand,
  DeleteDBClusterSnapshotCommand,
  DeleteDBInstanceCommand,
  DescribeDBClustersCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBInstancesCommand,
  ListTagsForResourceCommand,
  ModifyDBClusterCommand,
  RDSClient,
  RemoveTagsFromResourceCommand,
  RestoreDBClusterFromSnapshotCommand,
  RestoreDBClusterToPointInTimeCommand,
  type DBCluster,
  type Tag,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import type { StepContext } from '../src/steps/context.ts';
import { startCloneStep } from '../src/steps/fleet-steps.ts';
import { resourceName } from '../src/steps/names.ts';
import type { WorkflowState } from '../src/steps/state.ts';
import { beforeEach, describe, expect, it } from 'vitest';
import { AuroraClusterFleet } from '../src/adapters/aws/aurora-cluster-fleet.ts';
import type { SafeshiftTags } from '../src/ports.ts';
import { awsError, codeOf } from './support/aws-errors.ts';

const rds = mockClient(RDSClient);
beforeEach(() => rds.reset());

const fleet = () => new AuroraClusterFleet({ client: new RDSClient({ region: 'eu-west-1' }) });

const arn = (kind: 'cluster' | 'cluster-snapshot' | 'db', id: string) => `arn:aws:rds:eu-west-1:123456789012:${kind}:${id}`;
const tagList = (t: SafeshiftTags): Tag[] => [
  { Key: 'safeshift:run-id', Value: t.runId },
  { Key: 'safeshift:database', Value: t.database },
  { Key: 'safeshift:kind', Value: t.kind },
];
const CLONE: SafeshiftTags = { runId: 'run1', database: 'shop', kind: 'clone' };
const PRE: SafeshiftTags = { runId: 'run1', database: 'shop', kind: 'pre-upgrade' };

const PROD: DBCluster = {
  DBClusterIdentifier: 'shop',
  DBClusterArn: arn('cluster', 'shop'),
  Status: 'available',
  Engine: 'aurora-postgresql',
  EngineVersion: '16.4',
  DBSubnetGroup: 'shop-private',
  VpcSecurityGroups: [{ VpcSecurityGroupId: 'sg-app', Status: 'active' }],
  DBClusterParameterGroup: 'shop-cluster-pg16',
  StorageEncrypted: true,
  KmsKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/k1',
  Port: 5432,
  IAMDatabaseAuthenticationEnabled: true,
  DeletionProtection: true,
  ServerlessV2ScalingConfiguration: { MinCapacity: 0.5, MaxCapacity: 16 },
  DBClusterMembers: [
    { DBInstanceIdentifier: 'shop-reader', IsClusterWriter: false },
    { DBInstanceIdentifier: 'shop-writer', IsClusterWriter: true },
  ],
};

const PLACEMENT = {
  DBSubnetGroupName: 'shop-private',
  VpcSecurityGroupIds: ['sg-app'],
  DBClusterParameterGroupName: 'shop-cluster-pg16',
  KmsKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/k1',
  Port: 5432,
  EnableIAMDatabaseAuthentication: true,
  ServerlessV2ScalingConfiguration: { MinCapacity: 0.5, MaxCapacity: 16 },
  DeletionProtection: false,
  Tags: tagList(CLONE),
};

function clusters(map: Record<string, DBCluster | undefined>) {
  rds.on(DescribeDBClustersCommand).callsFake(({ DBClusterIdentifier: id }: { DBClusterIdentifier: string }) => {
    const c = map[id];
    if (!c) throw awsError('DBClusterNotFoundFault');
    return { DBClusters: [c] };
  });
}

describe('AuroraClusterFleet snapshots', () => {
  it("creates a DB cluster snapshot with safeshift tags, and reuses this run's on retry", async () => {
    rds.on(CreateDBClusterSnapshotCommand).resolves({});
    await fleet().startSnapshot('shop', 'ss-pre-shop-run1', PRE);
    expect(rds.commandCalls(CreateDBClusterSnapshotCommand)[0]?.args[0].input).toEqual({
      DBClusterSnapshotIdentifier: 'ss-pre-shop-run1',
      DBClusterIdentifier: 'shop',
      Tags: tagList(PRE),
    });

    rds.on(CreateDBClusterSnapshotCommand).rejects(awsError('DBClusterSnapshotAlreadyExistsFault'));
    rds.on(DescribeDBClusterSnapshotsCommand).resolves({ DBClusterSnapshots: [{ DBClusterSnapshotArn: arn('cluster-snapshot', 'pre'), Status: 'creating' }] });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tagList(PRE) });
    await expect(fleet().startSnapshot('shop', 'ss-pre-shop-run1', PRE)).resolves.toBeUndefined();
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tagList({ ...PRE, runId: 'run0' }) });
    expect(await codeOf(fleet().startSnapshot('shop', 'ss-pre-shop-run1', PRE))).toBe('ALREADY_EXISTS');
  });

  it.each([
    ['SnapshotQuotaExceededFault', 'SNAPSHOT_QUOTA_EXCEEDED'],
    ['InvalidDBClusterStateFault', 'INVALID_STATE'],
    ['KMSKeyNotAccessibleFault', 'KMS_KEY_NOT_ACCESSIBLE'],
    ['DBClusterNotFoundFault', 'DATABASE_NOT_FOUND'],
  ])('maps %s from CreateDBClusterSnapshot to %s', async (name, code) => {
    rds.on(CreateDBClusterSnapshotCommand).rejects(awsError(name));
    expect(await codeOf(fleet().startSnapshot('shop', 's', PRE))).toBe(code);
  });

  it('reports status, missing on DBClusterSnapshotNotFoundFault', async () => {
    rds.on(DescribeDBClusterSnapshotsCommand).resolves({ DBClusterSnapshots: [{ Status: 'available' }] });
    expect(await fleet().snapshotStatus('s')).toBe('available');
    rds.on(DescribeDBClusterSnapshotsCommand).rejects(awsError('DBClusterSnapshotNotFoundFault'));
    expect(await fleet().snapshotStatus('s')).toBe('missing');
  });

  it('deletes its own cluster snapshot; refuses an untagged one; missing is success', async () => {
    rds.on(DescribeDBClusterSnapshotsCommand).resolves({ DBClusterSnapshots: [{ DBClusterSnapshotArn: arn('cluster-snapshot', 'rs'), Status: 'available' }] });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tagList({ ...PRE, kind: 'rehearsal' }) });
    rds.on(DeleteDBClusterSnapshotCommand).resolves({});
    await fleet().deleteSnapshot('rs');
    expect(rds.commandCalls(DeleteDBClusterSnapshotCommand)[0]?.args[0].input).toEqual({ DBClusterSnapshotIdentifier: 'rs' });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: [] });
    expect(await codeOf(fleet().deleteSnapshot('rs'))).toBe('NOT_SAFESHIFT_RESOURCE');
    rds.on(DescribeDBClusterSnapshotsCommand).rejects(awsError('DBClusterSnapshotNotFoundFault'));
    await expect(fleet().deleteSnapshot('rs')).resolves.toBeUndefined();
    expect(rds.commandCalls(DeleteDBClusterSnapshotCommand)).toHaveLength(1);
  });

  it('treats the live marker as a snapshot that needs no RDS snapshot', async () => {
    const live = AuroraClusterFleet.liveSource('shop');
    expect(live).toBe('live:shop');
    clusters({ shop: PROD });
    await fleet().startSnapshot('shop', live, { ...PRE, kind: 'rehearsal' });
    expect(await fleet().snapshotStatus(live)).toBe('available');
    expect(await fleet().snapshotTags(live)).toBeUndefined();
    await fleet().deleteSnapshot(live);
    expect(rds.commandCalls(CreateDBClusterSnapshotCommand)).toHaveLength(0);
    expect(rds.commandCalls(DescribeDBClusterSnapshotsCommand)).toHaveLength(0);
    expect(rds.commandCalls(DeleteDBClusterSnapshotCommand)).toHaveLength(0);
  });
});

describe('AuroraClusterFleet clones', () => {
  it("restores a cluster snapshot into production's subnet group, security groups, cluster parameter group and KMS key", async () => {
    clusters({ shop: PROD });
    rds.on(DescribeDBClusterSnapshotsCommand).resolves({
      DBClusterSnapshots: [
        {
          DBClusterSnapshotArn: arn('cluster-snapshot', 'pre'),
          DBClusterIdentifier: 'shop',
          Engine: 'aurora-postgresql',
          EngineVersion: '16.2',
          Status: 'available',
        },
      ],
    });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tagList(PRE) });
    rds.on(RestoreDBClusterFromSnapshotCommand).resolves({});
    await fleet().startClone('ss-pre-shop-run1', 'ss-rst-shop-run1', CLONE);
    expect(rds.commandCalls(RestoreDBClusterFromSnapshotCommand)[0]?.args[0].input).toEqual({
      DBClusterIdentifier: 'ss-rst-shop-run1',
      SnapshotIdentifier: 'ss-pre-shop-run1',
      Engine: 'aurora-postgresql',
      EngineVersion: '16.2',
      ...PLACEMENT,
    });
    expect(rds.commandCalls(RestoreDBClusterToPointInTimeCommand)).toHaveLength(0);
    // The instance comes once the cluster is available (databaseStatus).
    expect(rds.commandCalls(CreateDBInstanceCommand)).toHaveLength(0);
  });

  it('makes a copy-on-write clone of the live cluster for the marker', async () => {
    clusters({ shop: PROD });
    rds.on(RestoreDBClusterToPointInTimeCommand).resolves({});
    await fleet().startClone(AuroraClusterFleet.liveSource('shop'), 'ss-rc-shop-run1', CLONE);
    expect(rds.commandCalls(RestoreDBClusterToPointInTimeCommand)[0]?.args[0].input).toEqual({
      DBClusterIdentifier: 'ss-rc-shop-run1',
      SourceDBClusterIdentifier: 'shop',
      RestoreType: 'copy-on-write',
      UseLatestRestorableTime: true,
      ...PLACEMENT,
    });
    expect(rds.commandCalls(DescribeDBClusterSnapshotsCommand)).toHaveLength(0);
  });

  it('is what a rehearsal clones: the clone step asks for a copy-on-write clone of live production', async () => {
    clusters({ shop: PROD });
    rds.on(RestoreDBClusterToPointInTimeCommand).resolves({});
    const f = fleet();
    const ctx = { fleet: f } as unknown as StepContext;
    const state = { run: { runId: 'run1', kind: 'upgrade', database: 'shop' } } as WorkflowState;
    await startCloneStep(state, { from: 'rehearsal-snapshot', role: 'rehearsal-clone' }, ctx);
    expect(rds.commandCalls(RestoreDBClusterToPointInTimeCommand)[0]?.args[0].input).toMatchObject({
      SourceDBClusterIdentifier: 'shop',
      RestoreType: 'copy-on-write',
      DBClusterIdentifier: resourceName('rehearsal-clone', 'shop', 'run1'),
    });
    expect(rds.commandCalls(RestoreDBClusterFromSnapshotCommand)).toHaveLength(0);
  });

  it("reuses this run's clone cluster, also after DBClusterAlreadyExistsFault", async () => {
    clusters({ 'ss-rc-shop-run1': { DBClusterArn: arn('cluster', 'rc'), Status: 'creating' } });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tagList(CLONE) });
    await fleet().startClone(AuroraClusterFleet.liveSource('shop'), 'ss-rc-shop-run1', CLONE);
    expect(rds.commandCalls(RestoreDBClusterToPointInTimeCommand)).toHaveLength(0);

    rds.reset();
    let described = 0;
    rds.on(DescribeDBClustersCommand).callsFake(({ DBClusterIdentifier: id }) => {
      if (id === 'shop') return { DBClusters: [PROD] };
      if (described++ === 0) throw awsError('DBClusterNotFoundFault');
      return { DBClusters: [{ DBClusterArn: arn('cluster', 'rc'), Status: 'creating' }] };
    });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tagList(CLONE) });
    rds.on(RestoreDBClusterToPointInTimeCommand).rejects(awsError('DBClusterAlreadyExistsFault'));
    await expect(fleet().startClone(AuroraClusterFleet.liveSource('shop'), 'ss-rc-shop-run1', CLONE)).resolves.toBeUndefined();
  });

  it.each([
    ['InsufficientDBClusterCapacityFault', 'INSUFFICIENT_CAPACITY'],
    ['InsufficientStorageClusterCapacityFault', 'INSUFFICIENT_CAPACITY'],
    ['KMSKeyNotAccessibleFault', 'KMS_KEY_NOT_ACCESSIBLE'],
    ['InvalidDBClusterStateFault', 'INVALID_STATE'],
    ['InvalidDBClusterSnapshotStateFault', 'INVALID_STATE'],
    ['DBClusterSnapshotNotFoundFault', 'SNAPSHOT_NOT_FOUND'],
  ])('maps %s from the restore to %s', async (name, code) => {
    clusters({ shop: PROD });
    rds
      .on(DescribeDBClusterSnapshotsCommand)
      .resolves({ DBClusterSnapshots: [{ DBClusterSnapshotArn: arn('cluster-snapshot', 'pre'), Engine: 'aurora-postgresql' }] });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tagList(PRE) });
    rds.on(RestoreDBClusterFromSnapshotCommand).rejects(awsError(name));
    expect(await codeOf(fleet().startClone('pre', 'c1', CLONE))).toBe(code);
  });

  it("adds the clone's writer once its cluster is available: production writer's class, same engine", async () => {
    const clone: DBCluster = {
      DBClusterIdentifier: 'ss-rc-shop-run1',
      DBClusterArn: arn('cluster', 'rc'),
      Status: 'available',
      Engine: 'aurora-postgresql',
      DBClusterMembers: [],
    };
    clusters({ shop: PROD, 'ss-rc-shop-run1': clone });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tagList(CLONE) });
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'shop-writer' }).resolves({
      DBInstances: [
        {
          DBInstanceClass: 'db.r7g.xlarge',
          DBParameterGroups: [{ DBParameterGroupName: 'shop-inst-pg16' }],
          PubliclyAccessible: false,
          CACertificateIdentifier: 'rds-ca-rsa2048-g1',
        },
      ],
    });
    rds.on(CreateDBInstanceCommand).resolves({});
    expect(await fleet().databaseStatus('ss-rc-shop-run1')).toBe('creating');
    expect(rds.commandCalls(CreateDBInstanceCommand)[0]?.args[0].input).toEqual({
      DBInstanceIdentifier: 'ss-rc-shop-run1-1',
      DBClusterIdentifier: 'ss-rc-shop-run1',
      Engine: 'aurora-postgresql',
      DBInstanceClass: 'db.r7g.xlarge',
      DBParameterGroupName: 'shop-inst-pg16',
      PubliclyAccessible: false,
      CACertificateIdentifier: 'rds-ca-rsa2048-g1',
      Tags: tagList(CLONE),
    });

    // A retry that finds the instance already made carries on.
    rds.on(CreateDBInstanceCommand).rejects(awsError('DBInstanceAlreadyExistsFault'));
    rds
      .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'ss-rc-shop-run1-1' })
      .resolves({ DBInstances: [{ DBClusterIdentifier: 'ss-rc-shop-run1', DBInstanceStatus: 'creating' }] });
    expect(await fleet().databaseStatus('ss-rc-shop-run1')).toBe('creating');
  });

  it('is available when the cluster and its writer are; never adds an instance to production', async () => {
    clusters({
      c1: { Status: 'available', DBClusterMembers: [{ DBInstanceIdentifier: 'c1-1', IsClusterWriter: true }] },
      bare: { Status: 'available', DBClusterArn: arn('cluster', 'bare'), DBClusterMembers: [] },
    });
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceStatus: 'creating' }] });
    expect(await fleet().databaseStatus('c1')).toBe('creating');
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceStatus: 'available' }] });
    expect(await fleet().databaseStatus('c1')).toBe('available');
    rds.on(ListTagsForResourceCommand).resolves({ TagList: [] });
    expect(await fleet().databaseStatus('bare')).toBe('failed');
    expect(await fleet().databaseStatus('nope')).toBe('missing');
    expect(rds.commandCalls(CreateDBInstanceCommand)).toHaveLength(0);
  });
});

describe('AuroraClusterFleet swap and delete', () => {
  it('renames production to retired with ModifyDBCluster, then the replacement, then is a no-op', async () => {
    const retired: DBCluster = { DBClusterArn: arn('cluster', 'old'), Status: 'available', DeletionProtection: true };
    const replacement: DBCluster = { DBClusterArn: arn('cluster', 'new'), Status: 'available' };
    rds.on(ListTagsForResourceCommand, { ResourceName: arn('cluster', 'new') }).resolves({ TagList: tagList(CLONE) });
    rds.on(ListTagsForResourceCommand, { ResourceName: arn('cluster', 'shop') }).resolves({ TagList: [] });
    rds.on(ModifyDBClusterCommand).resolves({});
    rds.on(AddTagsToResourceCommand).resolves({});
    rds.on(RemoveTagsFromResourceCommand).resolves({});

    clusters({ shop: PROD, 'ss-new-shop-run1': replacement });
    expect(await codeOf(fleet().swap('shop', 'ss-new-shop-run1', 'ss-old-shop-run1'))).toBe('SWAP_IN_PROGRESS');
    expect(rds.commandCalls(ModifyDBClusterCommand)[0]?.args[0].input).toEqual({
      DBClusterIdentifier: 'shop',
      NewDBClusterIdentifier: 'ss-old-shop-run1',
      ApplyImmediately: true,
    });

    rds.on(ListTagsForResourceCommand, { ResourceName: arn('cluster', 'old') }).resolves({ TagList: [] });
    clusters({ 'ss-new-shop-run1': replacement, 'ss-old-shop-run1': retired });
    expect(await codeOf(fleet().swap('shop', 'ss-new-shop-run1', 'ss-old-shop-run1'))).toBe('SWAP_IN_PROGRESS');
    expect(rds.commandCalls(AddTagsToResourceCommand)[0]?.args[0].input).toEqual({
      ResourceName: arn('cluster', 'old'),
      Tags: [
        { Key: 'safeshift:run-id', Value: 'run1' },
        { Key: 'safeshift:database', Value: 'shop' },
        { Key: 'safeshift:kind', Value: 'retired' },
      ],
    });
    expect(rds.commandCalls(RemoveTagsFromResourceCommand)[0]?.args[0].input).toEqual({ ResourceName: arn('cluster', 'new'), TagKeys: ['safeshift:kind'] });
    expect(rds.commandCalls(ModifyDBClusterCommand)[1]?.args[0].input).toEqual({
      DBClusterIdentifier: 'ss-new-shop-run1',
      NewDBClusterIdentifier: 'shop',
      ApplyImmediately: true,
      DeletionProtection: true,
    });

    rds.on(ListTagsForResourceCommand, { ResourceName: arn('cluster', 'new') }).resolves({ TagList: tagList(CLONE).slice(0, 2) });
    rds.on(ListTagsForResourceCommand, { ResourceName: arn('cluster', 'old') }).resolves({ TagList: tagList({ ...CLONE, kind: 'retired' }) });
    clusters({ shop: replacement, 'ss-old-shop-run1': retired });
    await expect(fleet().swap('shop', 'ss-new-shop-run1', 'ss-old-shop-run1')).resolves.toBeUndefined();
    await fleet().swap('shop', 'ss-new-shop-run1', 'ss-old-shop-run1');
    expect(rds.commandCalls(ModifyDBClusterCommand)).toHaveLength(2);
    expect(rds.commandCalls(AddTagsToResourceCommand)).toHaveLength(1);
  });

  it("deletes a clone's instances, then the cluster without a final snapshot", async () => {
    clusters({
      c1: { DBClusterArn: arn('cluster', 'c1'), Status: 'available', DBClusterMembers: [{ DBInstanceIdentifier: 'c1-1' }, { DBInstanceIdentifier: 'c1-2' }] },
    });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tagList(CLONE) });
    rds.on(DeleteDBInstanceCommand, { DBInstanceIdentifier: 'c1-1' }).resolves({});
    rds.on(DeleteDBInstanceCommand, { DBInstanceIdentifier: 'c1-2' }).rejects(awsError('DBInstanceNotFoundFault'));
    rds.on(DeleteDBClusterCommand).resolves({});
    await fleet().deleteDatabase('c1');
    const order = rds
      .calls()
      .map((c) => c.args[0].constructor.name)
      .filter((n) => n.startsWith('Delete'));
    expect(order).toEqual(['DeleteDBInstanceCommand', 'DeleteDBInstanceCommand', 'DeleteDBClusterCommand']);
    expect(rds.commandCalls(DeleteDBClusterCommand)[0]?.args[0].input).toEqual({
      DBClusterIdentifier: 'c1',
      SkipFinalSnapshot: true,
      DeleteAutomatedBackups: false,
    });
  });

  it('refuses a cluster without safeshift tags and production; missing is success', async () => {
    clusters({ orders: { DBClusterArn: arn('cluster', 'orders'), Status: 'available', DBClusterMembers: [{ DBInstanceIdentifier: 'o-1' }] } });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: [] });
    expect(await codeOf(fleet().deleteDatabase('orders'))).toBe('NOT_SAFESHIFT_RESOURCE');
    clusters({ shop: { DBClusterArn: arn('cluster', 'shop'), Status: 'available' } });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tagList(CLONE) });
    expect(await codeOf(fleet().deleteDatabase('shop'))).toBe('NOT_SAFESHIFT_RESOURCE');
    expect(rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(0);
    expect(rds.commandCalls(DeleteDBClusterCommand)).toHaveLength(0);

    clusters({});
    await expect(fleet().deleteDatabase('c1')).resolves.toBeUndefined();
    clusters({ c1: { DBClusterArn: arn('cluster', 'c1'), Status: 'available' } });
    rds.on(DeleteDBClusterCommand).rejects(awsError('DBClusterNotFoundFault'));
    await expect(fleet().deleteDatabase('c1')).resolves.toBeUndefined();
  });
});
