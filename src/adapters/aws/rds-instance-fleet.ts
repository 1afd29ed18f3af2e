import {
  AddTagsToResourceCommand,
  CreateDBSnapshotCommand,
  DeleteDBInstanceCommand,
  DeleteDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBInstanceCommand,
  RDSClient,
  RemoveTagsFromResourceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  type DBInstance,
  type DBSnapshot,
  type RestoreDBInstanceFromDBSnapshotCommandInput,
} from '@aws-sdk/client-rds';
import { SafeshiftError } from '../../core/errors.ts';
import type { Fleet, ResourceStatus, SafeshiftTags } from '../../ports.ts';
import { isAwsError } from './aws-errors.ts';
import { translateRdsError } from './rds-errors.ts';
import { toResourceStatus } from './rds-status.ts';
import { assertDeletable, assertReusable, readTags, safeshiftTagsOf, SafeshiftTagKeys, toRdsTags } from './rds-tags.ts';
import { swapStep, SwapInProgressError, type RenameDriver, type SwapProgress } from './rename-swap.ts';

export interface RdsInstanceFleetOptions {
  /** @default a new RDSClient for the Lambda's region */
  readonly client?: RDSClient;
  /** Where progress lines go (what was started, what was reused). @default nowhere */
  readonly log?: (line: string) => void;
}

const INSTANCE_NOT_FOUND = ['DBInstanceNotFoundFault', 'DBInstanceNotFound'];
const SNAPSHOT_NOT_FOUND = ['DBSnapshotNotFoundFault', 'DBSnapshotNotFound'];
/** gp3 volumes below this size (GiB, PostgreSQL) have fixed baseline IOPS and throughput that a restore must not name. */
const GP3_PROVISIONED_FROM_GIB = 400;

/**
 * The Fleet of one RDS for PostgreSQL DB instance: snapshots are manual DB snapshots, clones are
 * restores of them, a swap renames instances.
 *
 * - A clone gets production's network and settings, read from DescribeDBInstances of the database
 *   the snapshot was taken of (its `safeshift:database` tag): subnet group, VPC security groups,
 *   parameter and option groups, instance class, port, Multi-AZ, storage type/size/IOPS, IAM auth and
 *   CA. Its encryption is the snapshot's, i.e. production's KMS key: RDS does not re-key on restore.
 *   Deletion protection is off on clones, so cleanup can always delete them.
 * - A swap is two renames with ApplyImmediately, each taking minutes. `swapStep` does the next one
 *   and says where the swap stands; `swap` (the port) does the same and throws SwapInProgressError
 *   (code `SWAP_IN_PROGRESS`) until it is complete. Waiting between calls is the caller's business
 *   (a Wait state, or ASL Retry on `SWAP_IN_PROGRESS`); any number of calls is safe.
 * - Deletes are refused (NOT_SAFESHIFT_RESOURCE) unless the resource carries safeshift's tags.
 *
 * IAM: rds:CreateDBSnapshot, DescribeDBSnapshots, DescribeDBInstances, RestoreDBInstanceFromDBSnapshot,
 * ModifyDBInstance, DeleteDBInstance, DeleteDBSnapshot, ListTagsForResource, AddTagsToResource,
 * RemoveTagsFromResource; kms:CreateGrant and kms:DescribeKey on production's key when it is encrypted.
 *
 * @example
 * ```ts
 * const fleet = new RdsInstanceFleet({ client: new RDSClient({}) });
 * await fleet.startSnapshot('shop', 'ss-pre-shop-1a2b', { runId: '1a2b', database: 'shop', kind: 'pre-upgrade' });
 * while ((await fleet.snapshotStatus('ss-pre-shop-1a2b')) === 'creating') await sleep(30_000);
 * ```
 */
export class RdsInstanceFleet implements Fleet {
  private readonly rds: RDSClient;
  private readonly log: (line: string) => void;

  constructor(opts: RdsInstanceFleetOptions = {}) {
    this.rds = opts.client ?? new RDSClient({});
    this.log = opts.log ?? (() => {});
  }

  async startSnapshot(database: string, snapshotId: string, tags: SafeshiftTags): Promise<void> {
    try {
      await this.rds.send(new CreateDBSnapshotCommand({ DBSnapshotIdentifier: snapshotId, DBInstanceIdentifier: database, Tags: toRdsTags(tags) }));
      this.log(`snapshot ${snapshotId} of ${database} started`);
    } catch (error) {
      if (isAwsError(error, 'DBSnapshotAlreadyExistsFault', 'DBSnapshotAlreadyExists')) {
        const existing = await this.describeSnapshot(snapshotId);
        if (!existing) throw error;
        assertReusable(snapshotId, 'DB snapshot', await readTags(this.rds, existing.DBSnapshotArn), tags);
        this.log(`snapshot ${snapshotId} already exists for this run; reusing it`);
        return;
      }
      if (isAwsError(error, ...INSTANCE_NOT_FOUND)) {
        throw new SafeshiftError('DATABASE_NOT_FOUND', `DB instance ${database} does not exist in this account and region; check the database identifier`, {
          cause: error,
        });
      }
      throw translateRdsError(error, `snapshot ${snapshotId} of DB instance ${database}`);
    }
  }

  async snapshotStatus(snapshotId: string): Promise<ResourceStatus> {
    const snapshot = await this.describeSnapshot(snapshotId);
    return snapshot ? toResourceStatus(snapshot.Status, 'snapshot') : 'missing';
  }

  /** Restores `cloneId` from a DB snapshot with production's settings; reuses this run's clone when it exists. */
  async startClone(snapshotId: string, cloneId: string, tags: SafeshiftTags): Promise<void> {
    const existing = await this.describeInstance(cloneId);
    if (existing) {
      assertReusable(cloneId, 'DB instance', await readTags(this.rds, existing.DBInstanceArn), tags);
      this.log(`clone ${cloneId} already exists for this run; reusing it`);
      return;
    }
    const snapshot = await this.describeSnapshot(snapshotId);
    if (!snapshot) throw new SafeshiftError('SNAPSHOT_NOT_FOUND', `DB snapshot ${snapshotId} does not exist; nothing to restore from`);
    const sourceId = (await readTags(this.rds, snapshot.DBSnapshotArn))[SafeshiftTagKeys.database] ?? snapshot.DBInstanceIdentifier ?? tags.database;
    const source = await this.describeInstance(sourceId);
    if (!source) {
      throw new SafeshiftError(
        'DATABASE_NOT_FOUND',
        `DB instance ${sourceId}, which snapshot ${snapshotId} was taken of, does not exist; ` +
          `safeshift copies its network and settings to the clone and cannot guess them`,
      );
    }
    try {
      await this.rds.send(new RestoreDBInstanceFromDBSnapshotCommand(cloneInput(source, snapshot, cloneId, tags)));
      this.log(`clone ${cloneId} of snapshot ${snapshotId} started`);
    } catch (error) {
      if (isAwsError(error, 'DBInstanceAlreadyExistsFault', 'DBInstanceAlreadyExists')) {
        const raced = await this.describeInstance(cloneId);
        if (!raced) throw error;
        assertReusable(cloneId, 'DB instance', await readTags(this.rds, raced.DBInstanceArn), tags);
        this.log(`clone ${cloneId} already exists for this run; reusing it`);
        return;
      }
      if (isAwsError(error, ...SNAPSHOT_NOT_FOUND))
        throw new SafeshiftError('SNAPSHOT_NOT_FOUND', `DB snapshot ${snapshotId} does not exist; nothing to restore from`, { cause: error });
      throw translateRdsError(error, `restoring ${cloneId} from snapshot ${snapshotId}`);
    }
  }

  async databaseStatus(databaseId: string): Promise<ResourceStatus> {
    const instance = await this.describeInstance(databaseId);
    return instance ? toResourceStatus(instance.DBInstanceStatus) : 'missing';
  }

  /**
   * The port's swap: takes the next step (see {@link swapStep}) and throws SwapInProgressError until
   * the swap is complete; returns quietly once it is, so a repeated call after the swap is a no-op.
   */
  async swap(production: string, replacement: string, retiredId: string): Promise<void> {
    const progress = await this.swapStep(production, replacement, retiredId);
    if (progress.phase !== 'done') throw new SwapInProgressError(progress);
  }

  /**
   * One idempotent step of a swap: does at most one rename and says where the swap stands. Call it
   * again, after a wait, until the phase is `done`. See rename-swap.ts for the steps.
   */
  async swapStep(production: string, replacement: string, retiredId: string): Promise<SwapProgress> {
    const progress = await swapStep(this.renameDriver(), production, replacement, retiredId);
    this.log(`swap ${production} ← ${replacement}: ${progress.detail}`);
    return progress;
  }

  /**
   * Deletes a clone or retired production (SkipFinalSnapshot: a safeshift snapshot holds its data;
   * its automated backups are kept). Refused unless it carries safeshift's tags; missing is success.
   * A retired production keeps the deletion protection production had; it is turned off first.
   */
  async deleteDatabase(databaseId: string): Promise<void> {
    const instance = await this.describeInstance(databaseId);
    if (!instance || instance.DBInstanceStatus === 'deleting') return;
    const tags = assertDeletable(databaseId, 'DB instance', await readTags(this.rds, instance.DBInstanceArn), 'database');
    if (instance.DeletionProtection && tags.kind !== 'retired') {
      throw new SafeshiftError(
        'INVALID_STATE',
        `DB instance ${databaseId} has deletion protection on, which safeshift never sets on a clone; someone wants it kept, so it was left alone`,
      );
    }
    try {
      if (instance.DeletionProtection) {
        await this.rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: databaseId, DeletionProtection: false, ApplyImmediately: true }));
      }
      await this.rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: databaseId, SkipFinalSnapshot: true, DeleteAutomatedBackups: false }));
      this.log(`deleting DB instance ${databaseId}`);
    } catch (error) {
      if (isAwsError(error, ...INSTANCE_NOT_FOUND)) return;
      throw translateRdsError(error, `deleting DB instance ${databaseId}`);
    }
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    const snapshot = await this.describeSnapshot(snapshotId);
    if (!snapshot || snapshot.Status === 'deleting') return;
    assertDeletable(snapshotId, 'DB snapshot', await readTags(this.rds, snapshot.DBSnapshotArn), 'snapshot');
    try {
      await this.rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: snapshotId }));
      this.log(`deleting DB snapshot ${snapshotId}`);
    } catch (error) {
      if (isAwsError(error, ...SNAPSHOT_NOT_FOUND)) return;
      throw translateRdsError(error, `deleting DB snapshot ${snapshotId}`);
    }
  }

  /** Safeshift's tags on a DB snapshot; undefined when it has none or does not exist. */
  async snapshotTags(snapshotId: string): Promise<SafeshiftTags | undefined> {
    const snapshot = await this.describeSnapshot(snapshotId);
    return snapshot ? safeshiftTagsOf(await readTags(this.rds, snapshot.DBSnapshotArn), 'snapshot') : undefined;
  }

  private async describeInstance(id: string): Promise<DBInstance | undefined> {
    try {
      const out = await this.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
      return out.DBInstances?.[0];
    } catch (error) {
      if (isAwsError(error, ...INSTANCE_NOT_FOUND)) return undefined;
      throw error;
    }
  }

  private async describeSnapshot(id: string): Promise<DBSnapshot | undefined> {
    try {
      const out = await this.rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: id }));
      return out.DBSnapshots?.[0];
    } catch (error) {
      if (isAwsError(error, ...SNAPSHOT_NOT_FOUND)) return undefined;
      throw error;
    }
  }

  private renameDriver(): RenameDriver {
    return {
      noun: 'DB instance',
      describe: async (id) => {
        const instance = await this.describeInstance(id);
        if (!instance) return undefined;
        return {
          id,
          arn: instance.DBInstanceArn ?? '',
          status: instance.DBInstanceStatus ?? 'unknown',
          ...(instance.PendingModifiedValues?.DBInstanceIdentifier ? { pendingId: instance.PendingModifiedValues.DBInstanceIdentifier } : {}),
          deletionProtection: instance.DeletionProtection === true,
          tags: await readTags(this.rds, instance.DBInstanceArn),
        };
      },
      rename: async (id, newId, deletionProtection) => {
        try {
          await this.rds.send(
            new ModifyDBInstanceCommand({
              DBInstanceIdentifier: id,
              NewDBInstanceIdentifier: newId,
              ApplyImmediately: true,
              ...(deletionProtection === undefined ? {} : { DeletionProtection: deletionProtection }),
            }),
          );
        } catch (error) {
          throw translateRdsError(error, `renaming DB instance ${id} to ${newId}`);
        }
      },
      addTags: async (arn, tags) => {
        await this.rds.send(new AddTagsToResourceCommand({ ResourceName: arn, Tags: tags }));
      },
      removeTags: async (arn, keys) => {
        await this.rds.send(new RemoveTagsFromResourceCommand({ ResourceName: arn, TagKeys: keys }));
      },
    };
  }
}

/** The restore request: production's placement and settings, the snapshot's data and encryption. */
function cloneInput(source: DBInstance, snapshot: DBSnapshot, cloneId: string, tags: SafeshiftTags): RestoreDBInstanceFromDBSnapshotCommandInput {
  const storageType = source.StorageType;
  const allocated = Math.max(source.AllocatedStorage ?? 0, snapshot.AllocatedStorage ?? 0) || undefined;
  // io1/io2 always name their IOPS; gp3 only above the size where they can differ from the baseline.
  const provisioned = storageType === 'io1' || storageType === 'io2' || (storageType === 'gp3' && (allocated ?? 0) >= GP3_PROVISIONED_FROM_GIB);
  const securityGroups = (source.VpcSecurityGroups ?? [])
    .filter((g) => g.Status !== 'inactive')
    .map((g) => g.VpcSecurityGroupId)
    .filter((id): id is string => !!id);
  const input: RestoreDBInstanceFromDBSnapshotCommandInput = {
    DBInstanceIdentifier: cloneId,
    DBSnapshotIdentifier: snapshot.DBSnapshotIdentifier,
    DBInstanceClass: source.DBInstanceClass,
    DBSubnetGroupName: source.DBSubnetGroup?.DBSubnetGroupName,
    VpcSecurityGroupIds: securityGroups.length > 0 ? securityGroups : undefined,
    DBParameterGroupName: source.DBParameterGroups?.[0]?.DBParameterGroupName,
    OptionGroupName: source.OptionGroupMemberships?.[0]?.OptionGroupName,
    Port: source.Endpoint?.Port ?? source.DbInstancePort,
    MultiAZ: source.MultiAZ,
    PubliclyAccessible: source.PubliclyAccessible,
    StorageType: storageType,
    AllocatedStorage: allocated,
    Iops: provisioned ? source.Iops : undefined,
    StorageThroughput: provisioned && storageType === 'gp3' ? source.StorageThroughput : undefined,
    EnableIAMDatabaseAuthentication: source.IAMDatabaseAuthenticationEnabled,
    CACertificateIdentifier: source.CACertificateIdentifier,
    AutoMinorVersionUpgrade: source.AutoMinorVersionUpgrade,
    CopyTagsToSnapshot: source.CopyTagsToSnapshot,
    NetworkType: source.NetworkType,
    DeletionProtection: false,
    Tags: toRdsTags(tags),
  };
  // Undefined fields are left to RDS's defaults; dropping them keeps the request (and the tests) honest.
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as RestoreDBInstanceFromDBSnapshotCommandInput;
}
