import {
  AddTagsToResourceCommand,
  CreateDBSnapshotCommand,
  DBSnapshotNotFoundFault,
  DeleteDBInstanceCommand,
  DeleteDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ListTagsForResourceCommand,
  ModifyDBInstanceCommand,
  RDSClient,
  RemoveTagsFromResourceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  type DBInstance,
  type Tag,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { RdsInstanceFleet } from '../src/adapters/aws/rds-instance-fleet.ts';
import { SafeshiftError } from '../src/core/errors.ts';
import type { SafeshiftTags } from '../src/ports.ts';
import { awsError, codeOf, rejection } from './support/aws-errors.ts';
import { defined } from './support/defined.ts';

/** What a promise rejected with; fails the test when it resolves. */
const rds = mockClient(RDSClient);
beforeEach(() => rds.reset());

const fleet = () => new RdsInstanceFleet({ client: new RDSClient({ region: 'eu-west-1' }) });

/** An error shaped the way the SDK throws a service error: `name` is the AWS error name. */
const arn = (kind: 'db' | 'snapshot', id: string) => `arn:aws:rds:eu-west-1:123456789012:${kind}:${id}`;
const tagList = (t: Partial<SafeshiftTags>): Tag[] => [
  ...(t.runId ? [{ Key: 'safeshift:run-id', Value: t.runId }] : []),
  ...(t.database ? [{ Key: 'safeshift:database', Value: t.database }] : []),
  ...(t.kind ? [{ Key: 'safeshift:kind', Value: t.kind }] : []),
];
const PRE: SafeshiftTags = { runId: 'run1', database: 'shop', kind: 'pre-upgrade' };
const CLONE: SafeshiftTags = { runId: 'run1', database: 'shop', kind: 'clone' };

const PROD: DBInstance = {
  DBInstanceIdentifier: 'shop',
  DBInstanceArn: arn('db', 'shop'),
  DBInstanceStatus: 'available',
  DBInstanceClass: 'db.r6g.large',
  DBSubnetGroup: { DBSubnetGroupName: 'shop-private' },
  VpcSecurityGroups: [
    { VpcSecurityGroupId: 'sg-app', Status: 'active' },
    { VpcSecurityGroupId: 'sg-gone', Status: 'inactive' },
  ],
  DBParameterGroups: [{ DBParameterGroupName: 'shop-pg16' }],
  OptionGroupMemberships: [{ OptionGroupName: 'default:postgres-16' }],
  Endpoint: { Address: 'shop.abc.eu-west-1.rds.amazonaws.com', Port: 6432 },
  MultiAZ: true,
  PubliclyAccessible: false,
  StorageType: 'gp3',
  AllocatedStorage: 500,
  Iops: 12_000,
  StorageThroughput: 500,
  StorageEncrypted: true,
  KmsKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/k1',
  IAMDatabaseAuthenticationEnabled: true,
  CACertificateIdentifier: 'rds-ca-rsa2048-g1',
  DeletionProtection: true,
  AutoMinorVersionUpgrade: true,
};

describe('RdsInstanceFleet snapshots', () => {
  it('creates a DB snapshot of the database with safeshift tags', async () => {
    rds.on(CreateDBSnapshotCommand).resolves({});
    await fleet().startSnapshot('shop', 'ss-pre-shop-run1', PRE);
    expect(rds.commandCalls(CreateDBSnapshotCommand)[0]?.args[0].input).toEqual({
      DBSnapshotIdentifier: 'ss-pre-shop-run1',
      DBInstanceIdentifier: 'shop',
      Tags: [
        { Key: 'safeshift:run-id', Value: 'run1' },
        { Key: 'safeshift:database', Value: 'shop' },
        { Key: 'safeshift:kind', Value: 'pre-upgrade' },
      ],
    });
  });

  it("reuses a snapshot that already exists with this run's tags", async () => {
    rds.on(CreateDBSnapshotCommand).rejects(awsError('DBSnapshotAlreadyExistsFault'));
    rds
      .on(DescribeDBSnapshotsCommand)
      .resolves({ DBSnapshots: [{ DBSnapshotIdentifier: 'ss-pre-shop-run1', DBSnapshotArn: arn('snapshot', 's1'), Status: 'creating' }] });
    rds.on(ListTagsForResourceCommand, { ResourceName: arn('snapshot', 's1') }).resolves({ TagList: tagList(PRE) });
    await expect(fleet().startSnapshot('shop', 'ss-pre-shop-run1', PRE)).resolves.toBeUndefined();
  });

  it.each([
    ['another run', tagList({ ...PRE, runId: 'run0' }), 'ALREADY_EXISTS'],
    ['no safeshift tags', [{ Key: 'team', Value: 'db' }], 'ALREADY_EXISTS'],
    ['another database', tagList({ ...PRE, database: 'billing' }), 'SNAPSHOT_FOREIGN'],
  ])('refuses an existing snapshot of %s', async (_what, tags, code) => {
    rds.on(CreateDBSnapshotCommand).rejects(awsError('DBSnapshotAlreadyExistsFault'));
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ DBSnapshotArn: arn('snapshot', 's1'), Status: 'available' }] });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tags });
    expect(await codeOf(fleet().startSnapshot('shop', 'ss-pre-shop-run1', PRE))).toBe(code);
  });

  it.each([
    ['SnapshotQuotaExceededFault', 'SNAPSHOT_QUOTA_EXCEEDED'],
    ['SnapshotQuotaExceeded', 'SNAPSHOT_QUOTA_EXCEEDED'],
    ['KMSKeyNotAccessibleFault', 'KMS_KEY_NOT_ACCESSIBLE'],
    ['InvalidDBInstanceStateFault', 'INVALID_STATE'],
    ['InvalidDBInstanceState', 'INVALID_STATE'],
    ['DBInstanceNotFoundFault', 'DATABASE_NOT_FOUND'],
  ])('maps %s from CreateDBSnapshot to %s', async (name, code) => {
    rds.on(CreateDBSnapshotCommand).rejects(awsError(name));
    const error = await rejection(fleet().startSnapshot('shop', 'ss-pre-shop-run1', PRE));
    expect(error).toBeInstanceOf(SafeshiftError);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(/shop/);
  });

  it('lets an unknown AWS error through with its name', async () => {
    rds.on(CreateDBSnapshotCommand).rejects(awsError('ThrottlingException'));
    await expect(fleet().startSnapshot('shop', 'x', PRE)).rejects.toMatchObject({ name: 'ThrottlingException' });
  });

  it.each([
    ['available', 'available'],
    ['creating', 'creating'],
    ['copying', 'creating'],
    ['failed', 'failed'],
  ])('reports a snapshot that is %s as %s', async (status, expected) => {
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ Status: status }] });
    expect(await fleet().snapshotStatus('s')).toBe(expected);
  });

  it("reports a snapshot RDS does not know as missing (the SDK's own exception class)", async () => {
    rds.on(DescribeDBSnapshotsCommand).rejects(new DBSnapshotNotFoundFault({ message: 'DBSnapshot s not found.', $metadata: {} }));
    expect(await fleet().snapshotStatus('s')).toBe('missing');
  });

  it('reads safeshift tags of a snapshot with ListTagsForResource', async () => {
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ DBSnapshotArn: arn('snapshot', 's1') }] });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: [...tagList(PRE), { Key: 'team', Value: 'db' }] });
    expect(await fleet().snapshotTags('s1')).toEqual(PRE);
    expect(rds.commandCalls(ListTagsForResourceCommand)[0]?.args[0].input).toEqual({ ResourceName: arn('snapshot', 's1') });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: [{ Key: 'team', Value: 'db' }] });
    expect(await fleet().snapshotTags('s1')).toBeUndefined();
    rds.on(DescribeDBSnapshotsCommand).rejects(awsError('DBSnapshotNotFoundFault'));
    expect(await fleet().snapshotTags('s1')).toBeUndefined();
  });

  it('deletes its own snapshot; missing is success; refuses one without safeshift tags', async () => {
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ DBSnapshotArn: arn('snapshot', 's1'), Status: 'available' }] });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tagList({ ...PRE, kind: 'rehearsal' }) });
    rds.on(DeleteDBSnapshotCommand).resolves({});
    await fleet().deleteSnapshot('s1');
    expect(rds.commandCalls(DeleteDBSnapshotCommand)[0]?.args[0].input).toEqual({ DBSnapshotIdentifier: 's1' });

    rds.on(DeleteDBSnapshotCommand).rejects(awsError('DBSnapshotNotFoundFault'));
    await expect(fleet().deleteSnapshot('s1')).resolves.toBeUndefined();

    rds.on(DescribeDBSnapshotsCommand).rejects(awsError('DBSnapshotNotFoundFault'));
    await expect(fleet().deleteSnapshot('s1')).resolves.toBeUndefined();

    rds.reset();
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ DBSnapshotArn: arn('snapshot', 'manual'), Status: 'available' }] });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: [] });
    expect(await codeOf(fleet().deleteSnapshot('manual'))).toBe('NOT_SAFESHIFT_RESOURCE');
    expect(rds.commandCalls(DeleteDBSnapshotCommand)).toHaveLength(0);
  });
});

describe('RdsInstanceFleet clones', () => {
  function snapshotOf(database: string) {
    rds.on(DescribeDBSnapshotsCommand).resolves({
      DBSnapshots: [
        {
          DBSnapshotIdentifier: 'ss-pre-shop-run1',
          DBSnapshotArn: arn('snapshot', 'pre'),
          DBInstanceIdentifier: 'old-name',
          AllocatedStorage: 400,
          Status: 'available',
        },
      ],
    });
    rds.on(ListTagsForResourceCommand, { ResourceName: arn('snapshot', 'pre') }).resolves({ TagList: tagList({ ...PRE, database }) });
  }

  it('restores into the same subnet group, security groups, parameter group, class and storage as production', async () => {
    snapshotOf('shop');
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'ss-new-shop-run1' }).rejects(awsError('DBInstanceNotFoundFault'));
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'shop' }).resolves({ DBInstances: [PROD] });
    rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    await fleet().startClone('ss-pre-shop-run1', 'ss-new-shop-run1', CLONE);

    // The source is the database in the snapshot's tags, not the snapshot's (possibly renamed) instance.
    expect(rds.commandCalls(DescribeDBInstancesCommand).map((c) => c.args[0].input.DBInstanceIdentifier)).toEqual(['ss-new-shop-run1', 'shop']);
    const input = defined(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0], 'the restore call').args[0].input;
    expect(input).toMatchObject({
      DBInstanceIdentifier: 'ss-new-shop-run1',
      DBSnapshotIdentifier: 'ss-pre-shop-run1',
      DBInstanceClass: 'db.r6g.large',
      DBSubnetGroupName: 'shop-private',
      VpcSecurityGroupIds: ['sg-app'],
      DBParameterGroupName: 'shop-pg16',
      OptionGroupName: 'default:postgres-16',
      Port: 6432,
      MultiAZ: true,
      PubliclyAccessible: false,
      StorageType: 'gp3',
      AllocatedStorage: 500,
      Iops: 12_000,
      StorageThroughput: 500,
      EnableIAMDatabaseAuthentication: true,
      CACertificateIdentifier: 'rds-ca-rsa2048-g1',
      DeletionProtection: false,
      Tags: tagList(CLONE),
    });
    // Encryption comes with the snapshot (production's key); the restore API has no key to name.
    expect(input).not.toHaveProperty('KmsKeyId');
  });

  it('does not name IOPS for a small gp3 volume (its baseline is fixed)', async () => {
    snapshotOf('shop');
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'c1' }).rejects(awsError('DBInstanceNotFoundFault'));
    rds
      .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'shop' })
      .resolves({ DBInstances: [{ ...PROD, AllocatedStorage: 100, Iops: 3000, StorageThroughput: 125 }] });
    rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    rds
      .on(DescribeDBSnapshotsCommand)
      .resolves({ DBSnapshots: [{ DBSnapshotIdentifier: 'pre', DBSnapshotArn: arn('snapshot', 'pre'), AllocatedStorage: 100 }] });
    await fleet().startClone('pre', 'c1', CLONE);
    const input = defined(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0], 'the restore call').args[0].input;
    expect(input).not.toHaveProperty('Iops');
    expect(input).not.toHaveProperty('StorageThroughput');
  });

  it("reuses this run's clone without restoring again", async () => {
    rds
      .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'ss-new-shop-run1' })
      .resolves({ DBInstances: [{ DBInstanceArn: arn('db', 'c'), DBInstanceStatus: 'creating' }] });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tagList(CLONE) });
    await fleet().startClone('ss-pre-shop-run1', 'ss-new-shop-run1', CLONE);
    expect(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)).toHaveLength(0);
  });

  it('reuses the clone when a concurrent retry won the race (DBInstanceAlreadyExistsFault)', async () => {
    snapshotOf('shop');
    rds
      .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'ss-new-shop-run1' })
      .rejectsOnce(awsError('DBInstanceNotFoundFault'))
      .resolves({ DBInstances: [{ DBInstanceArn: arn('db', 'c'), DBInstanceStatus: 'creating' }] });
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'shop' }).resolves({ DBInstances: [PROD] });
    rds.on(ListTagsForResourceCommand, { ResourceName: arn('db', 'c') }).resolves({ TagList: tagList(CLONE) });
    rds.on(RestoreDBInstanceFromDBSnapshotCommand).rejects(awsError('DBInstanceAlreadyExistsFault'));
    await expect(fleet().startClone('ss-pre-shop-run1', 'ss-new-shop-run1', CLONE)).resolves.toBeUndefined();
  });

  it("refuses an instance of that name that is not this run's clone", async () => {
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceArn: arn('db', 'c'), DBInstanceStatus: 'available' }] });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tagList({ ...CLONE, runId: 'run0' }) });
    const error = await rejection(fleet().startClone('pre', 'ss-new-shop-run1', CLONE));
    expect(error).toMatchObject({ code: 'ALREADY_EXISTS' });
    expect((error as Error).message).toMatch(/run0/);
  });

  it('reports a missing snapshot as SNAPSHOT_NOT_FOUND', async () => {
    rds.on(DescribeDBInstancesCommand).rejects(awsError('DBInstanceNotFoundFault'));
    rds.on(DescribeDBSnapshotsCommand).rejects(awsError('DBSnapshotNotFoundFault'));
    expect(await codeOf(fleet().startClone('gone', 'c1', CLONE))).toBe('SNAPSHOT_NOT_FOUND');
  });

  it.each([
    ['InsufficientDBInstanceCapacityFault', 'INSUFFICIENT_CAPACITY'],
    ['InsufficientDBInstanceCapacity', 'INSUFFICIENT_CAPACITY'],
    ['InstanceQuotaExceededFault', 'INSUFFICIENT_CAPACITY'],
    ['KMSKeyNotAccessibleFault', 'KMS_KEY_NOT_ACCESSIBLE'],
    ['InvalidDBSnapshotStateFault', 'INVALID_STATE'],
    ['InvalidDBSnapshotState', 'INVALID_STATE'],
  ])('maps %s from the restore to %s', async (name, code) => {
    snapshotOf('shop');
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'c1' }).rejects(awsError('DBInstanceNotFoundFault'));
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'shop' }).resolves({ DBInstances: [PROD] });
    rds.on(RestoreDBInstanceFromDBSnapshotCommand).rejects(awsError(name));
    expect(await codeOf(fleet().startClone('pre', 'c1', CLONE))).toBe(code);
  });

  it.each([
    ['available', 'available'],
    ['backing-up', 'available'],
    ['creating', 'creating'],
    ['modifying', 'creating'],
    ['renaming', 'creating'],
    ['incompatible-restore', 'failed'],
    ['inaccessible-encryption-credentials', 'failed'],
    ['stopped', 'failed'],
  ])('reports an instance that is %s as %s', async (status, expected) => {
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceStatus: status }] });
    expect(await fleet().databaseStatus('c1')).toBe(expected);
  });

  it('reports an instance RDS does not know as missing', async () => {
    rds.on(DescribeDBInstancesCommand).rejects(awsError('DBInstanceNotFoundFault'));
    expect(await fleet().databaseStatus('c1')).toBe('missing');
  });
});

describe('RdsInstanceFleet deleteDatabase', () => {
  function instance(props: Partial<DBInstance>, tags: Tag[]) {
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceArn: arn('db', 'x'), DBInstanceStatus: 'available', ...props }] });
    rds.on(ListTagsForResourceCommand).resolves({ TagList: tags });
    rds.on(DeleteDBInstanceCommand).resolves({});
    rds.on(ModifyDBInstanceCommand).resolves({});
  }

  it('checks the tags first, then deletes a clone without a final snapshot, keeping automated backups', async () => {
    instance({}, tagList(CLONE));
    await fleet().deleteDatabase('ss-rc-shop-run1');
    expect(rds.commandCalls(ListTagsForResourceCommand)).toHaveLength(1);
    expect(rds.commandCalls(DeleteDBInstanceCommand)[0]?.args[0].input).toEqual({
      DBInstanceIdentifier: 'ss-rc-shop-run1',
      SkipFinalSnapshot: true,
      DeleteAutomatedBackups: false,
    });
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(0);
  });

  it.each([
    ['no tags', [] as Tag[]],
    ['a snapshot kind', tagList({ ...CLONE, kind: 'pre-upgrade' })],
    ['only some tags', tagList({ database: 'shop', kind: 'clone' })],
  ])('refuses an instance with %s (NOT_SAFESHIFT_RESOURCE)', async (_what, tags) => {
    instance({}, tags);
    expect(await codeOf(fleet().deleteDatabase('orders'))).toBe('NOT_SAFESHIFT_RESOURCE');
    expect(rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(0);
  });

  it('refuses the swapped-in production even though it was a clone', async () => {
    instance({}, tagList(CLONE));
    expect(await codeOf(fleet().deleteDatabase('shop'))).toBe('NOT_SAFESHIFT_RESOURCE');
    expect(rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(0);
  });

  it('treats a missing or already deleting instance as deleted', async () => {
    rds.on(DescribeDBInstancesCommand).rejects(awsError('DBInstanceNotFoundFault'));
    await fleet().deleteDatabase('c1');
    instance({ DBInstanceStatus: 'deleting' }, tagList(CLONE));
    await fleet().deleteDatabase('c1');
    instance({}, tagList(CLONE));
    rds.on(DeleteDBInstanceCommand).rejects(awsError('DBInstanceNotFoundFault'));
    await expect(fleet().deleteDatabase('c1')).resolves.toBeUndefined();
  });

  it('turns off the deletion protection a retired production kept, then deletes it', async () => {
    instance({ DeletionProtection: true }, tagList({ ...CLONE, kind: 'retired' }));
    await fleet().deleteDatabase('ss-old-shop-run1');
    expect(rds.commandCalls(ModifyDBInstanceCommand)[0]?.args[0].input).toEqual({
      DBInstanceIdentifier: 'ss-old-shop-run1',
      DeletionProtection: false,
      ApplyImmediately: true,
    });
    expect(rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(1);
  });

  it('leaves a clone someone protected from deletion alone', async () => {
    instance({ DeletionProtection: true }, tagList(CLONE));
    expect(await codeOf(fleet().deleteDatabase('c1'))).toBe('INVALID_STATE');
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(0);
  });
});

/**
 * A tiny RDS that renames like the real one: a rename is pending (status `renaming`) until `tick()`,
 * and tags stay with the instance through renames.
 */
class FakeRds {
  readonly instances = new Map<string, { arn: string; resource: string; status: string; pending?: string; protect: boolean; tags: Map<string, string> }>();

  add(id: string, resource: string, protect: boolean, tags: Tag[]) {
    const entries = tags.map((t): [string, string] => [defined(t.Key, 'a tag key'), defined(t.Value, 'a tag value')]);
    this.instances.set(id, { arn: arn('db', resource), resource, status: 'available', protect, tags: new Map(entries) });
  }

  tick() {
    for (const [id, i] of [...this.instances]) {
      if (!i.pending) continue;
      this.instances.delete(id);
      this.instances.set(i.pending, { ...i, status: 'available', pending: undefined });
    }
  }

  byArn(a: string) {
    return defined(
      [...this.instances.values()].find((i) => i.arn === a),
      `the instance of ${a}`,
    );
  }

  install() {
    rds.on(DescribeDBInstancesCommand).callsFake(({ DBInstanceIdentifier: id }: { DBInstanceIdentifier: string }) => {
      const i = this.instances.get(id);
      if (!i) throw awsError('DBInstanceNotFoundFault');
      return {
        DBInstances: [
          {
            DBInstanceIdentifier: id,
            DBInstanceArn: i.arn,
            DbiResourceId: i.resource,
            DBInstanceStatus: i.status,
            DeletionProtection: i.protect,
            PendingModifiedValues: i.pending ? { DBInstanceIdentifier: i.pending } : {},
          },
        ],
      };
    });
    rds.on(ListTagsForResourceCommand).callsFake(({ ResourceName }: { ResourceName: string }) => ({
      TagList: [...this.byArn(ResourceName).tags].map(([Key, Value]) => ({ Key, Value })),
    }));
    rds.on(AddTagsToResourceCommand).callsFake(({ ResourceName, Tags }: { ResourceName: string; Tags: { Key: string; Value: string }[] }) => {
      for (const t of Tags) this.byArn(ResourceName).tags.set(t.Key, t.Value);
      return {};
    });
    rds.on(RemoveTagsFromResourceCommand).callsFake(({ ResourceName, TagKeys }: { ResourceName: string; TagKeys: string[] }) => {
      for (const k of TagKeys) this.byArn(ResourceName).tags.delete(k);
      return {};
    });
    rds.on(ModifyDBInstanceCommand).callsFake((input: { DBInstanceIdentifier: string; NewDBInstanceIdentifier?: string; DeletionProtection?: boolean }) => {
      const { DBInstanceIdentifier: id, NewDBInstanceIdentifier: to, DeletionProtection } = input;
      const i = defined(this.instances.get(id), `the instance ${id}`);
      if (to && this.instances.has(to)) throw awsError('DBInstanceAlreadyExistsFault');
      if (to) Object.assign(i, { pending: to, status: 'renaming' });
      if (DeletionProtection !== undefined) i.protect = DeletionProtection;
      return {};
    });
  }
}

describe('RdsInstanceFleet swap', () => {
  it('renames production to retired, then the replacement to production, one idempotent step per call', async () => {
    const world = new FakeRds();
    world.add('shop', 'db-PROD', true, [{ Key: 'team', Value: 'shop' }]);
    world.add('ss-new-shop-run1', 'db-NEW', false, tagList(CLONE));
    world.install();
    const f = fleet();
    const attempt = () => codeOf(f.swap('shop', 'ss-new-shop-run1', 'ss-old-shop-run1'));

    expect(await attempt()).toBe('SWAP_IN_PROGRESS');
    expect(rds.commandCalls(ModifyDBInstanceCommand)[0]?.args[0].input).toEqual({
      DBInstanceIdentifier: 'shop',
      NewDBInstanceIdentifier: 'ss-old-shop-run1',
      ApplyImmediately: true,
    });
    // While RDS renames, another call only looks.
    expect(await attempt()).toBe('SWAP_IN_PROGRESS');
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(1);

    world.tick();
    expect(await attempt()).toBe('SWAP_IN_PROGRESS');
    expect(rds.commandCalls(ModifyDBInstanceCommand)[1]?.args[0].input).toEqual({
      DBInstanceIdentifier: 'ss-new-shop-run1',
      NewDBInstanceIdentifier: 'shop',
      ApplyImmediately: true,
      DeletionProtection: true,
    });

    world.tick();
    await expect(f.swap('shop', 'ss-new-shop-run1', 'ss-old-shop-run1')).resolves.toBeUndefined();
    const production = defined(world.instances.get('shop'), 'the instance shop');
    const retired = defined(world.instances.get('ss-old-shop-run1'), 'the instance ss-old-shop-run1');
    expect(production.resource).toBe('db-NEW');
    expect(production.protect).toBe(true);
    expect(Object.fromEntries(production.tags)).toEqual({ 'safeshift:run-id': 'run1', 'safeshift:database': 'shop' });
    expect(retired.resource).toBe('db-PROD');
    expect(Object.fromEntries(retired.tags)).toMatchObject({
      'safeshift:kind': 'retired',
      'safeshift:database': 'shop',
      'safeshift:run-id': 'run1',
      team: 'shop',
    });

    // Done: a second swap call is a no-op.
    const writes = () =>
      rds.commandCalls(ModifyDBInstanceCommand).length +
      rds.commandCalls(AddTagsToResourceCommand).length +
      rds.commandCalls(RemoveTagsFromResourceCommand).length;
    const before = writes();
    await f.swap('shop', 'ss-new-shop-run1', 'ss-old-shop-run1');
    expect(writes()).toBe(before);
    expect(await f.swapStep('shop', 'ss-new-shop-run1', 'ss-old-shop-run1')).toMatchObject({ phase: 'done' });
  });

  it('keeps production in place until the replacement is available', async () => {
    const world = new FakeRds();
    world.add('shop', 'db-PROD', false, []);
    world.add('ss-new-shop-run1', 'db-NEW', false, tagList(CLONE));
    defined(world.instances.get('ss-new-shop-run1'), 'the instance ss-new-shop-run1').status = 'backing-up';
    world.install();
    expect(await fleet().swapStep('shop', 'ss-new-shop-run1', 'ss-old-shop-run1')).toMatchObject({ phase: 'retiring-production' });
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(0);
  });

  it('never swaps in an instance safeshift did not make for this database', async () => {
    const world = new FakeRds();
    world.add('shop', 'db-PROD', false, []);
    world.add('ss-new-shop-run1', 'db-NEW', false, tagList({ ...CLONE, database: 'billing' }));
    world.install();
    expect(await codeOf(fleet().swap('shop', 'ss-new-shop-run1', 'ss-old-shop-run1'))).toBe('NOT_SAFESHIFT_RESOURCE');
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(0);
  });

  it('refuses when the retired identifier is taken, and when the replacement is missing', async () => {
    const world = new FakeRds();
    world.add('shop', 'db-PROD', false, []);
    world.add('ss-new-shop-run1', 'db-NEW', false, tagList(CLONE));
    world.add('ss-old-shop-run1', 'db-OTHER', false, []);
    world.install();
    expect(await codeOf(fleet().swap('shop', 'ss-new-shop-run1', 'ss-old-shop-run1'))).toBe('ALREADY_EXISTS');
    expect(await codeOf(fleet().swap('shop', 'ss-nope', 'ss-old-2'))).toBe('DATABASE_NOT_FOUND');
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(0);
  });
});
