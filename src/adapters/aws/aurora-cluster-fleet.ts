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
  ModifyDBClusterCommand,
  RDSClient,
  RemoveTagsFromResourceCommand,
  RestoreDBClusterFromSnapshotCommand,
  RestoreDBClusterToPointInTimeCommand,
  type DBCluster,
  type DBClusterSnapshot,
  type DBInstance,
} from '@aws-sdk/client-rds';
import { SafeshiftError } from '../../core/errors.ts';
import type { Fleet, ResourceStatus, SafeshiftTags } from '../../ports.ts';
import { isAwsError } from './aws-errors.ts';
import { translateRdsError } from './rds-errors.ts';
import { toResourceStatus } from './rds-status.ts';
import { assertDeletable, assertReusable, readTags, safeshiftTagsOf, SafeshiftTagKeys, toRdsTags, type TagMap } from './rds-tags.ts';
import { swapStep, SwapInProgressError, type RenameDriver, type SwapProgress } from './rename-swap.ts';

export interface AuroraClusterFleetOptions {
  /** @default a new RDSClient for the Lambda's region */
  readonly client?: RDSClient;
  /** Where progress lines go. @default nowhere */
  readonly log?: (line: string) => void;
}

const CLUSTER_NOT_FOUND = ['DBClusterNotFoundFault'];
const CLUSTER_SNAPSHOT_NOT_FOUND = ['DBClusterSnapshotNotFoundFault'];
const INSTANCE_NOT_FOUND = ['DBInstanceNotFoundFault', 'DBInstanceNotFound'];
/** Prefix of the marker snapshot id that means "copy-on-write clone of the live cluster". */
const LIVE = 'live:';

/**
 * The Fleet of one Aurora PostgreSQL DB cluster.
 *
 * What `startClone(snapshotId, …)` does depends on the snapshot id:
 * - a DB cluster snapshot id (or ARN): RestoreDBClusterFromSnapshot, with the snapshot's engine
 *   version. Restores and swap replacements always come from a real snapshot.
 * - a marker made by {@link AuroraClusterFleet.liveSource} (`live:<cluster>`; a real snapshot id can
 *   never contain `:`): RestoreDBClusterToPointInTime with RestoreType `copy-on-write` and
 *   UseLatestRestorableTime — an Aurora clone of the live cluster, which needs no snapshot and shares
 *   storage pages until they change. This is what rehearsals should use on Aurora. For the marker,
 *   startSnapshot and deleteSnapshot do nothing, snapshotStatus is the cluster's and snapshotTags is
 *   undefined, so the same steps work unchanged.
 *
 * Either way the clone cluster gets production's subnet group, VPC security groups, cluster parameter
 * group, port, KMS key, IAM auth and Serverless v2 scaling (read from DescribeDBClusters of the
 * snapshot's `safeshift:database`), no deletion protection, and safeshift's tags. Aurora creates a
 * cluster without instances, and an instance can only be added once the cluster is available, so
 * `databaseStatus` of a safeshift clone adds its one writer instance (production writer's class and
 * parameter group) when the cluster has none. Readers are not copied.
 *
 * A swap renames clusters (ModifyDBCluster NewDBClusterIdentifier); instances keep their names. Like
 * RdsInstanceFleet, `swapStep` does one idempotent step and `swap` throws SwapInProgressError
 * (`SWAP_IN_PROGRESS`) until the swap is complete.
 *
 * IAM: rds:CreateDBClusterSnapshot, DescribeDBClusterSnapshots, DescribeDBClusters, DescribeDBInstances,
 * RestoreDBClusterToPointInTime, RestoreDBClusterFromSnapshot, CreateDBInstance, ModifyDBCluster,
 * DeleteDBInstance, DeleteDBCluster, DeleteDBClusterSnapshot, ListTagsForResource, AddTagsToResource,
 * RemoveTagsFromResource; kms:CreateGrant and kms:DescribeKey on the cluster's key.
 *
 * @example
 * ```ts
 * const fleet = new AuroraClusterFleet();
 * const tags = { runId: '1a2b', database: 'shop', kind: 'clone' } as const;
 * await fleet.startClone(AuroraClusterFleet.liveSource('shop'), 'ss-rc-shop-1a2b', tags); // rehearsal clone
 * await fleet.startClone('ss-pre-shop-1a2b', 'ss-rst-shop-1a2b', tags);                   // from a snapshot
 * ```
 */
export class AuroraClusterFleet implements Fleet {
  private readonly rds: RDSClient;
  private readonly log: (line: string) => void;

  /** The marker snapshot id that makes startClone a copy-on-write clone of the live `clusterId`. */
  /** {@link Fleet.liveCloneSource}: rehearsal clones are copy-on-write clones of the live cluster. */
  liveCloneSource(database: string): string {
    return AuroraClusterFleet.liveSource(database);
  }

  static liveSource(clusterId: string): string {
    return `${LIVE}${clusterId}`;
  }

  constructor(opts: AuroraClusterFleetOptions = {}) {
    this.rds = opts.client ?? new RDSClient({});
    this.log = opts.log ?? (() => {});
  }

  async startSnapshot(database: string, snapshotId: string, tags: SafeshiftTags): Promise<void> {
    const live = liveClusterOf(snapshotId);
    if (live !== undefined) {
      if (!(await this.describeCluster(live))) throw clusterNotFound(live);
      return;
    }
    try {
      await this.rds.send(
        new CreateDBClusterSnapshotCommand({ DBClusterSnapshotIdentifier: snapshotId, DBClusterIdentifier: database, Tags: toRdsTags(tags) }),
      );
      this.log(`cluster snapshot ${snapshotId} of ${database} started`);
    } catch (error) {
      if (isAwsError(error, 'DBClusterSnapshotAlreadyExistsFault')) {
        const existing = await this.describeSnapshot(snapshotId);
        if (!existing) throw error;
        assertReusable(snapshotId, 'DB cluster snapshot', await readTags(this.rds, existing.DBClusterSnapshotArn), tags);
        this.log(`cluster snapshot ${snapshotId} already exists for this run; reusing it`);
        return;
      }
      if (isAwsError(error, ...CLUSTER_NOT_FOUND)) throw clusterNotFound(database, error);
      throw translateRdsError(error, `snapshot ${snapshotId} of DB cluster ${database}`);
    }
  }

  async snapshotStatus(snapshotId: string): Promise<ResourceStatus> {
    const live = liveClusterOf(snapshotId);
    if (live !== undefined) {
      const cluster = await this.describeCluster(live);
      return cluster ? toResourceStatus(cluster.Status) : 'missing';
    }
    const snapshot = await this.describeSnapshot(snapshotId);
    return snapshot ? toResourceStatus(snapshot.Status, 'snapshot') : 'missing';
  }

  async startClone(snapshotId: string, cloneId: string, tags: SafeshiftTags): Promise<void> {
    const existing = await this.describeCluster(cloneId);
    if (existing) {
      assertReusable(cloneId, 'DB cluster', await readTags(this.rds, existing.DBClusterArn), tags);
      this.log(`clone ${cloneId} already exists for this run; reusing it`);
      return;
    }
    const live = liveClusterOf(snapshotId);
    try {
      if (live !== undefined) {
        const source = await this.describeCluster(live);
        if (!source) throw clusterNotFound(live);
        await this.rds.send(
          new RestoreDBClusterToPointInTimeCommand({
            ...clusterPlacement(source, cloneId, tags),
            SourceDBClusterIdentifier: live,
            RestoreType: 'copy-on-write',
            UseLatestRestorableTime: true,
          }),
        );
        this.log(`copy-on-write clone ${cloneId} of ${live} started`);
        return;
      }
      const snapshot = await this.describeSnapshot(snapshotId);
      if (!snapshot) throw new SafeshiftError('SNAPSHOT_NOT_FOUND', `DB cluster snapshot ${snapshotId} does not exist; nothing to restore from`);
      const sourceId = (await readTags(this.rds, snapshot.DBClusterSnapshotArn))[SafeshiftTagKeys.database] ?? snapshot.DBClusterIdentifier ?? tags.database;
      const source = await this.describeCluster(sourceId);
      if (!source) {
        throw new SafeshiftError(
          'DATABASE_NOT_FOUND',
          `DB cluster ${sourceId}, which snapshot ${snapshotId} was taken of, does not exist; ` +
            `safeshift copies its network and settings to the clone and cannot guess them`,
        );
      }
      await this.rds.send(
        new RestoreDBClusterFromSnapshotCommand({
          ...clusterPlacement(source, cloneId, tags),
          SnapshotIdentifier: snapshotId,
          Engine: snapshot.Engine ?? source.Engine,
          EngineVersion: snapshot.EngineVersion,
        }),
      );
      this.log(`clone ${cloneId} of cluster snapshot ${snapshotId} started`);
    } catch (error) {
      if (isAwsError(error, 'DBClusterAlreadyExistsFault')) {
        const raced = await this.describeCluster(cloneId);
        if (!raced) throw error;
        assertReusable(cloneId, 'DB cluster', await readTags(this.rds, raced.DBClusterArn), tags);
        return;
      }
      if (isAwsError(error, ...CLUSTER_SNAPSHOT_NOT_FOUND))
        throw new SafeshiftError('SNAPSHOT_NOT_FOUND', `DB cluster snapshot ${snapshotId} does not exist; nothing to restore from`, { cause: error });
      throw translateRdsError(error, `creating clone ${cloneId}`);
    }
  }

  /**
   * Available when the cluster and its writer are. For a safeshift clone whose cluster is available
   * but has no instance yet, adds the writer instance (idempotently) and reports `creating`.
   */
  async databaseStatus(databaseId: string): Promise<ResourceStatus> {
    const cluster = await this.describeCluster(databaseId);
    if (!cluster) return 'missing';
    const status = toResourceStatus(cluster.Status);
    if (status !== 'available') return status;
    const members = cluster.DBClusterMembers ?? [];
    if (members.length === 0) {
      const tags = safeshiftTagsOf(await readTags(this.rds, cluster.DBClusterArn), 'database');
      // Only a clone safeshift made for another database gets an instance; production is never touched.
      if (tags?.kind !== 'clone' || tags.database === databaseId) return 'failed';
      await this.addWriter(cluster, tags);
      return 'creating';
    }
    const writer = members.find((m) => m.IsClusterWriter) ?? members[0];
    const instance = writer?.DBInstanceIdentifier ? await this.describeInstance(writer.DBInstanceIdentifier) : undefined;
    return instance ? toResourceStatus(instance.DBInstanceStatus) : 'creating';
  }

  async swap(production: string, replacement: string, retiredId: string): Promise<void> {
    const progress = await this.swapStep(production, replacement, retiredId);
    if (progress.phase !== 'done') throw new SwapInProgressError(progress);
  }

  /** One idempotent step of a swap (see rename-swap.ts); call again after a wait until `done`. */
  async swapStep(production: string, replacement: string, retiredId: string): Promise<SwapProgress> {
    const progress = await swapStep(this.renameDriver(), production, replacement, retiredId);
    this.log(`swap ${production} ← ${replacement}: ${progress.detail}`);
    return progress;
  }

  /**
   * Deletes a clone or retired cluster: its instances, then the cluster (SkipFinalSnapshot; automated
   * backups kept). Refused unless the cluster carries safeshift's tags; missing is success. Call again
   * while RDS refuses the cluster because its instances are still going (INVALID_STATE).
   */
  async deleteDatabase(databaseId: string): Promise<void> {
    const cluster = await this.describeCluster(databaseId);
    if (!cluster || cluster.Status === 'deleting') return;
    const tags = assertDeletable(databaseId, 'DB cluster', await readTags(this.rds, cluster.DBClusterArn), 'database');
    if (cluster.DeletionProtection && tags.kind !== 'retired') {
      throw new SafeshiftError(
        'INVALID_STATE',
        `DB cluster ${databaseId} has deletion protection on, which safeshift never sets on a clone; someone wants it kept, so it was left alone`,
      );
    }
    try {
      if (cluster.DeletionProtection) {
        await this.rds.send(new ModifyDBClusterCommand({ DBClusterIdentifier: databaseId, DeletionProtection: false, ApplyImmediately: true }));
      }
      for (const member of cluster.DBClusterMembers ?? []) {
        if (!member.DBInstanceIdentifier) continue;
        try {
          await this.rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: member.DBInstanceIdentifier }));
        } catch (error) {
          if (!isAwsError(error, ...INSTANCE_NOT_FOUND)) throw error;
        }
      }
      await this.rds.send(new DeleteDBClusterCommand({ DBClusterIdentifier: databaseId, SkipFinalSnapshot: true, DeleteAutomatedBackups: false }));
      this.log(`deleting DB cluster ${databaseId}`);
    } catch (error) {
      if (isAwsError(error, ...CLUSTER_NOT_FOUND)) return;
      throw translateRdsError(error, `deleting DB cluster ${databaseId}`);
    }
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    if (liveClusterOf(snapshotId) !== undefined) return;
    const snapshot = await this.describeSnapshot(snapshotId);
    if (!snapshot || snapshot.Status === 'deleting') return;
    assertDeletable(snapshotId, 'DB cluster snapshot', await readTags(this.rds, snapshot.DBClusterSnapshotArn), 'snapshot');
    try {
      await this.rds.send(new DeleteDBClusterSnapshotCommand({ DBClusterSnapshotIdentifier: snapshotId }));
      this.log(`deleting DB cluster snapshot ${snapshotId}`);
    } catch (error) {
      if (isAwsError(error, ...CLUSTER_SNAPSHOT_NOT_FOUND)) return;
      throw translateRdsError(error, `deleting DB cluster snapshot ${snapshotId}`);
    }
  }

  async snapshotTags(snapshotId: string): Promise<SafeshiftTags | undefined> {
    if (liveClusterOf(snapshotId) !== undefined) return undefined;
    const snapshot = await this.describeSnapshot(snapshotId);
    return snapshot ? safeshiftTagsOf(await readTags(this.rds, snapshot.DBClusterSnapshotArn), 'snapshot') : undefined;
  }

  /** Adds the clone's writer: production writer's class and parameter group, the clone's tags. */
  private async addWriter(clone: DBCluster, tags: SafeshiftTags): Promise<void> {
    const cloneId = clone.DBClusterIdentifier ?? '';
    const source = await this.describeCluster(tags.database);
    if (!source) throw clusterNotFound(tags.database);
    const sourceWriterId = (source.DBClusterMembers ?? []).find((m) => m.IsClusterWriter)?.DBInstanceIdentifier;
    const writer = sourceWriterId ? await this.describeInstance(sourceWriterId) : undefined;
    if (!writer?.DBInstanceClass)
      throw new SafeshiftError('INVALID_STATE', `DB cluster ${tags.database} has no writer instance to copy the clone's instance class from`);
    const instanceId = writerIdOf(cloneId);
    try {
      await this.rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: instanceId,
          DBClusterIdentifier: cloneId,
          Engine: clone.Engine ?? source.Engine,
          DBInstanceClass: writer.DBInstanceClass,
          ...defined({
            DBParameterGroupName: writer.DBParameterGroups?.[0]?.DBParameterGroupName,
            PubliclyAccessible: writer.PubliclyAccessible,
            CACertificateIdentifier: writer.CACertificateIdentifier,
            AutoMinorVersionUpgrade: writer.AutoMinorVersionUpgrade,
          }),
          Tags: toRdsTags(tags),
        }),
      );
      this.log(`writer ${instanceId} of clone ${cloneId} started`);
    } catch (error) {
      if (isAwsError(error, 'DBInstanceAlreadyExistsFault', 'DBInstanceAlreadyExists')) {
        const found = await this.describeInstance(instanceId);
        if (found?.DBClusterIdentifier === cloneId) return;
        throw new SafeshiftError(
          'ALREADY_EXISTS',
          `DB instance ${instanceId} already exists in another cluster (${found?.DBClusterIdentifier ?? '?'}); delete it or use another run id`,
          { cause: error },
        );
      }
      throw translateRdsError(error, `adding writer ${instanceId} to clone ${cloneId}`);
    }
  }

  private async describeCluster(id: string): Promise<DBCluster | undefined> {
    try {
      return (await this.rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: id }))).DBClusters?.[0];
    } catch (error) {
      if (isAwsError(error, ...CLUSTER_NOT_FOUND)) return undefined;
      throw error;
    }
  }

  private async describeSnapshot(id: string): Promise<DBClusterSnapshot | undefined> {
    try {
      return (await this.rds.send(new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: id }))).DBClusterSnapshots?.[0];
    } catch (error) {
      if (isAwsError(error, ...CLUSTER_SNAPSHOT_NOT_FOUND)) return undefined;
      throw error;
    }
  }

  private async describeInstance(id: string): Promise<DBInstance | undefined> {
    try {
      return (await this.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances?.[0];
    } catch (error) {
      if (isAwsError(error, ...INSTANCE_NOT_FOUND)) return undefined;
      throw error;
    }
  }

  private renameDriver(): RenameDriver {
    return {
      noun: 'DB cluster',
      describe: async (id) => {
        const cluster = await this.describeCluster(id);
        if (!cluster) return undefined;
        const tags: TagMap = await readTags(this.rds, cluster.DBClusterArn);
        return {
          id,
          arn: cluster.DBClusterArn ?? '',
          status: cluster.Status ?? 'unknown',
          tags,
          ...(cluster.PendingModifiedValues?.DBClusterIdentifier ? { pendingId: cluster.PendingModifiedValues.DBClusterIdentifier } : {}),
          deletionProtection: cluster.DeletionProtection === true,
        };
      },
      rename: async (id, newId, deletionProtection) => {
        try {
          await this.rds.send(
            new ModifyDBClusterCommand({
              DBClusterIdentifier: id,
              NewDBClusterIdentifier: newId,
              ApplyImmediately: true,
              ...(deletionProtection === undefined ? {} : { DeletionProtection: deletionProtection }),
            }),
          );
        } catch (error) {
          throw translateRdsError(error, `renaming DB cluster ${id} to ${newId}`);
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

function liveClusterOf(snapshotId: string): string | undefined {
  return snapshotId.startsWith(LIVE) && snapshotId.length > LIVE.length ? snapshotId.slice(LIVE.length) : undefined;
}

/** The clone's one instance; identifiers are at most 63 characters. */
function writerIdOf(cloneId: string): string {
  return `${cloneId.slice(0, 61).replace(/-+$/, '')}-1`;
}

function clusterNotFound(id: string, cause?: unknown): SafeshiftError {
  return new SafeshiftError(
    'DATABASE_NOT_FOUND',
    `DB cluster ${id} does not exist in this account and region; check the database identifier`,
    cause === undefined ? {} : { cause },
  );
}

/** The settings a clone cluster copies from production (shared by both restore calls). */
function clusterPlacement(source: DBCluster, cloneId: string, tags: SafeshiftTags) {
  const securityGroups = (source.VpcSecurityGroups ?? [])
    .filter((g) => g.Status !== 'inactive')
    .map((g) => g.VpcSecurityGroupId)
    .filter((id): id is string => !!id);
  const scaling = source.ServerlessV2ScalingConfiguration;
  return {
    DBClusterIdentifier: cloneId,
    ...defined({
      DBSubnetGroupName: source.DBSubnetGroup,
      VpcSecurityGroupIds: securityGroups.length > 0 ? securityGroups : undefined,
      DBClusterParameterGroupName: source.DBClusterParameterGroup,
      // The same key as production; an unencrypted production stays unencrypted.
      KmsKeyId: source.StorageEncrypted ? source.KmsKeyId : undefined,
      Port: source.Port,
      EnableIAMDatabaseAuthentication: source.IAMDatabaseAuthenticationEnabled,
      CopyTagsToSnapshot: source.CopyTagsToSnapshot,
      StorageType: source.StorageType,
      NetworkType: source.NetworkType,
      ServerlessV2ScalingConfiguration:
        scaling?.MinCapacity !== undefined ? defined({ MinCapacity: scaling.MinCapacity, MaxCapacity: scaling.MaxCapacity }) : undefined,
    }),
    DeletionProtection: false,
    Tags: toRdsTags(tags),
  };
}

/** The object without its undefined fields, so a request names only what production actually has. */
function defined<T extends Record<string, unknown>>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}
