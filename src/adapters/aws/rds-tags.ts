import { ListTagsForResourceCommand, type RDSClient, type Tag } from '@aws-sdk/client-rds';
import { SafeshiftError } from '../../core/errors.ts';
import type { SafeshiftTags, SnapshotKind } from '../../ports.ts';

/**
 * The tag keys safeshift puts on every RDS resource it creates. RDS keeps tags with a resource
 * through renames, which is what lets a swap and a delete tell safeshift's resources from anyone
 * else's. An IAM policy can use them too (`aws:ResourceTag/safeshift:kind`).
 */
export const SafeshiftTagKeys = {
  runId: 'safeshift:run-id',
  database: 'safeshift:database',
  kind: 'safeshift:kind',
} as const;

const SNAPSHOT_KINDS: readonly string[] = ['pre-upgrade', 'safety', 'rehearsal'] satisfies SnapshotKind[];
const DATABASE_KINDS: readonly string[] = ['clone', 'retired'];

/** A resource's tags as a map. */
export type TagMap = Readonly<Record<string, string>>;

/**
 * The RDS tag list for safeshift's tags.
 *
 * @example
 * ```ts
 * toRdsTags({ runId: 'r1', database: 'shop', kind: 'clone' })
 * // [{ Key: 'safeshift:run-id', Value: 'r1' }, { Key: 'safeshift:database', Value: 'shop' }, { Key: 'safeshift:kind', Value: 'clone' }]
 * ```
 */
export function toRdsTags(tags: SafeshiftTags): Tag[] {
  return [
    { Key: SafeshiftTagKeys.runId, Value: tags.runId },
    { Key: SafeshiftTagKeys.database, Value: tags.database },
    { Key: SafeshiftTagKeys.kind, Value: tags.kind },
  ];
}

/** Reads a resource's tags by ARN (ListTagsForResource: the one authoritative source). */
export async function readTags(rds: RDSClient, arn: string | undefined): Promise<TagMap> {
  if (!arn) return {};
  const out = await rds.send(new ListTagsForResourceCommand({ ResourceName: arn }));
  const map: Record<string, string> = {};
  for (const tag of out.TagList ?? []) if (tag.Key) map[tag.Key] = tag.Value ?? '';
  return map;
}

/** Safeshift's tags from a tag map, when all three are there and the kind is one safeshift uses. */
export function safeshiftTagsOf(map: TagMap, of: 'snapshot' | 'database'): SafeshiftTags | undefined {
  const runId = map[SafeshiftTagKeys.runId];
  const database = map[SafeshiftTagKeys.database];
  const kind = map[SafeshiftTagKeys.kind];
  if (!runId || !database || !kind) return undefined;
  if (!(of === 'snapshot' ? SNAPSHOT_KINDS : DATABASE_KINDS).includes(kind)) return undefined;
  return { runId, database, kind: kind as SafeshiftTags['kind'] };
}

/**
 * Refuses to go on unless `map` shows the resource is safeshift's to delete: a snapshot it took, or
 * a clone or retired production. A database whose identifier is the production identifier it was
 * made for is production now (a swapped-in clone), whatever its kind says, and is never deleted.
 */
export function assertDeletable(id: string, noun: string, map: TagMap, of: 'snapshot' | 'database'): SafeshiftTags {
  const tags = safeshiftTagsOf(map, of);
  if (!tags) {
    const allowed = of === 'snapshot' ? SNAPSHOT_KINDS : DATABASE_KINDS;
    throw new SafeshiftError(
      'NOT_SAFESHIFT_RESOURCE',
      `${noun} ${id} does not carry safeshift's tags (${SafeshiftTagKeys.kind} = ${allowed.join(' or ')}, ` +
        `with ${SafeshiftTagKeys.runId} and ${SafeshiftTagKeys.database}); safeshift only deletes what it made, so it was left alone`,
      { details: { id, tags: map } },
    );
  }
  if (of === 'database' && tags.database === id) {
    throw new SafeshiftError('NOT_SAFESHIFT_RESOURCE', `${noun} ${id} is the production database now (it was swapped in); it will not be deleted`, {
      details: { id, tags: map },
    });
  }
  return tags;
}

/**
 * Lets a retried create reuse what the first attempt made: the existing resource must carry this
 * run's tags. Otherwise it is someone else's and the message says whose.
 */
export function assertReusable(id: string, noun: string, map: TagMap, want: SafeshiftTags): void {
  const got = { runId: map[SafeshiftTagKeys.runId], database: map[SafeshiftTagKeys.database], kind: map[SafeshiftTagKeys.kind] };
  if (got.runId === want.runId && got.database === want.database && got.kind === want.kind) return;
  if (got.database !== undefined && got.database !== want.database && SNAPSHOT_KINDS.includes(want.kind)) {
    throw new SafeshiftError(
      'SNAPSHOT_FOREIGN',
      `${noun} ${id} already exists but was taken of database ${got.database}, not ${want.database}; choose another snapshot id`,
      { details: { id, tags: map } },
    );
  }
  const whose = got.runId
    ? `safeshift run ${got.runId} (${got.kind ?? 'unknown kind'} of ${got.database ?? '?'})`
    : 'something other than safeshift (it has no safeshift tags)';
  throw new SafeshiftError(
    'ALREADY_EXISTS',
    `${noun} ${id} already exists and belongs to ${whose}, not to run ${want.runId}; it was left alone. Delete it or start the run with another id.`,
    { details: { id, tags: map } },
  );
}
