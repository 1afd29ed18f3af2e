import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { LockedError, SafeshiftError } from '../../core/errors.ts';
import type { Ledger, LockRecord, QuiesceRecord, RehearsalRecord, RunRecord, SnapshotRecord } from '../../ports.ts';
import { isAwsError } from './aws-errors.ts';
import { LedgerTableSchema as S } from './ledger-table-schema.ts';

export interface DynamoDbLedgerOptions {
  /** The ledger table, created to LedgerTableSchema (the CDK construct does). */
  readonly tableName: string;
  /**
   * A DynamoDB client (wrapped in a document client here), or a document client of your own, which must
   * be made with `marshallOptions: { removeUndefinedValues: true }` (records have optional fields).
   * @default a new DynamoDBClient
   */
  readonly client?: DynamoDBClient | DynamoDBDocumentClient;
  /** The clock, for lock ages and expiry. @default the system clock */
  readonly now?: () => Date;
}

type Item = Record<string, unknown>;
interface Key {
  readonly pk: string;
  readonly sk: string;
}

/** Attributes of an item that are not part of the record it holds. */
const KEY_ATTRIBUTES = new Set<string>([
  S.partitionKey,
  S.sortKey,
  S.byDatabase.partitionKey,
  S.byDatabase.sortKey,
  S.byType.partitionKey,
  S.byType.sortKey,
  S.entityAttribute,
  S.firstRecordedAttribute,
]);
const CONDITION_FAILED = 'ConditionalCheckFailedException';

const lockKey = (database: string): Key => ({ pk: `DB#${database}`, sk: 'LOCK' });
const runKey = (runId: string): Key => ({ pk: `RUN#${runId}`, sk: 'RUN' });
const quiesceKey = (runId: string, apiId: string): Key => ({ pk: `RUN#${runId}`, sk: `QUIESCE#${apiId}` });
const rehearsalKey = (runId: string): Key => ({ pk: `RUN#${runId}`, sk: 'REHEARSAL' });
const snapshotKey = (snapshotId: string): Key => ({ pk: `SNAP#${snapshotId}`, sk: 'SNAP' });

/**
 * The Ledger in one DynamoDB table (single-table design; the key schema is documented and exported
 * in ledger-table-schema.ts). Reads a step depends on are strongly consistent; lists come from GSIs.
 *
 * - The run lock is one item per database, taken with a conditional write (`attribute_not_exists(pk)
 *   OR owner = :owner`): free or ours succeeds (re-entrant, keeping the first `acquiredAt`), anyone
 *   else's fails and the holder is read back and reported by LockedError with its age, as `stale`
 *   once it has expired. An expired lock is never taken over: `breakLock` removes it on purpose.
 * - `startRun` is a conditional put; a retried start returns the run the first one wrote.
 * - `putQuiesce` keeps the first `prior` recorded for an API in a run (`if_not_exists`), so a retried
 *   quiesce that captured the already-quiesced state can never overwrite what resume must put back.
 *
 * IAM: dynamodb:GetItem, PutItem, UpdateItem, DeleteItem, Query on the table and its indexes.
 *
 * @example
 * ```ts
 * const ledger = new DynamoDbLedger({ tableName: process.env.LEDGER_TABLE! });
 * await ledger.acquireLock('shop', runId, 6 * 3_600_000); // LockedError when another run holds it
 * ```
 */
export class DynamoDbLedger implements Ledger {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly now: () => Date;

  constructor(opts: DynamoDbLedgerOptions) {
    this.table = opts.tableName;
    this.now = opts.now ?? (() => new Date());
    const client = opts.client ?? new DynamoDBClient({});
    this.doc = client instanceof DynamoDBDocumentClient ? client : DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  async acquireLock(database: string, owner: string, ttlMs: number): Promise<LockRecord> {
    // Two tries: the holder may release between our failed write and our read of it.
    for (let attempt = 0; attempt < 2; attempt++) {
      const now = this.now();
      try {
        const out = await this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: lockKey(database),
            ...update(
              { owner, database, expiresAt: new Date(now.getTime() + ttlMs).toISOString(), [S.entityAttribute]: 'LOCK' },
              { acquiredAt: now.toISOString() },
              { expression: 'attribute_not_exists(#pk) OR #owner = :owner', names: { '#pk': S.partitionKey, '#owner': 'owner' }, values: { ':owner': owner } },
            ),
            ReturnValues: 'ALL_NEW',
          }),
        );
        return toLock(out.Attributes ?? {});
      } catch (error) {
        if (!isAwsError(error, CONDITION_FAILED)) throw error;
        const holder = await this.getLock(database);
        if (holder && holder.owner !== owner) throw lockedError(holder, this.now());
      }
    }
    throw new LockedError(`the run lock of ${database} changed hands while ${owner} tried to take it; try again`, { database, owner });
  }

  async releaseLock(database: string, owner: string): Promise<void> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: lockKey(database),
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': owner },
        }),
      );
    } catch (error) {
      // Not held, or held by someone else: either way there is nothing of ours to release.
      if (!isAwsError(error, CONDITION_FAILED)) throw error;
    }
  }

  async getLock(database: string): Promise<LockRecord | undefined> {
    const item = await this.get(lockKey(database));
    return item ? toLock(item) : undefined;
  }

  async breakLock(database: string): Promise<LockRecord | undefined> {
    const out = await this.doc.send(new DeleteCommand({ TableName: this.table, Key: lockKey(database), ReturnValues: 'ALL_OLD' }));
    return out.Attributes ? toLock(out.Attributes) : undefined;
  }

  async startRun(run: RunRecord): Promise<RunRecord> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...runItem(run), ...run },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': S.partitionKey },
        }),
      );
      return run;
    } catch (error) {
      if (!isAwsError(error, CONDITION_FAILED)) throw error;
      const existing = await this.getRun(run.runId);
      if (!existing) throw error;
      if (existing.database !== run.database || existing.kind !== run.kind) {
        throw new SafeshiftError(
          'BAD_OPTION',
          `run id ${run.runId} is already used by a ${existing.kind} run of ${existing.database}; start this ${run.kind} of ${run.database} with another id`,
        );
      }
      return existing;
    }
  }

  async updateRun(runId: string, patch: Partial<Omit<RunRecord, 'runId' | 'database' | 'kind'>>): Promise<RunRecord> {
    const fields: Item = { ...patch };
    // The index sort keys carry startedAt, so they move with it.
    if (patch.startedAt !== undefined)
      Object.assign(fields, { [S.byDatabase.sortKey]: `RUN#${patch.startedAt}#${runId}`, [S.byType.sortKey]: `${patch.startedAt}#${runId}` });
    if (Object.values(fields).every((v) => v === undefined)) {
      const run = await this.getRun(runId);
      if (!run) throw runNotFound(runId);
      return run;
    }
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: runKey(runId),
          ReturnValues: 'ALL_NEW',
          ...update(fields, {}, { expression: 'attribute_exists(#pk)', names: { '#pk': S.partitionKey } }),
        }),
      );
      return fromItem<RunRecord>(out.Attributes ?? {});
    } catch (error) {
      if (isAwsError(error, CONDITION_FAILED)) throw runNotFound(runId);
      throw error;
    }
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const item = await this.get(runKey(runId));
    return item ? fromItem<RunRecord>(item) : undefined;
  }

  /** Newest first. */
  async listRuns(database?: string, limit?: number): Promise<RunRecord[]> {
    return (await this.list('RUN', database, { newestFirst: true, ...(limit === undefined ? {} : { limit }) })).map((i) => fromItem<RunRecord>(i));
  }

  async putSnapshot(snapshot: SnapshotRecord): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          ...snapshotKey(snapshot.snapshotId),
          [S.entityAttribute]: 'SNAP',
          [S.byDatabase.partitionKey]: `DB#${snapshot.database}`,
          [S.byDatabase.sortKey]: `SNAP#${snapshot.createdAt}#${snapshot.snapshotId}`,
          [S.byType.partitionKey]: 'SNAP',
          [S.byType.sortKey]: `${snapshot.createdAt}#${snapshot.snapshotId}`,
          ...snapshot,
        },
      }),
    );
  }

  async getSnapshot(snapshotId: string): Promise<SnapshotRecord | undefined> {
    const item = await this.get(snapshotKey(snapshotId));
    return item ? fromItem<SnapshotRecord>(item) : undefined;
  }

  /** Newest first. */
  async listSnapshots(database?: string): Promise<SnapshotRecord[]> {
    return (await this.list('SNAP', database, { newestFirst: true })).map((i) => fromItem<SnapshotRecord>(i));
  }

  /**
   * Writes the record of a quiesced API. The first `prior` written for (run, API) is kept: it is what
   * the API was before anything changed, and resume must put back exactly that.
   */
  async putQuiesce(record: QuiesceRecord): Promise<void> {
    const { prior, ...rest } = record;
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: quiesceKey(record.runId, record.apiId),
        ...update(
          {
            ...rest,
            [S.entityAttribute]: 'QUIESCE',
            [S.byDatabase.partitionKey]: `DB#${record.database}`,
            [S.byDatabase.sortKey]: `QUIESCE#${record.runId}#${record.apiId}`,
            [S.byType.partitionKey]: 'QUIESCE',
            [S.byType.sortKey]: `${record.runId}#${record.apiId}`,
          },
          { prior, [S.firstRecordedAttribute]: this.now().toISOString() },
        ),
      }),
    );
  }

  /**
   * By run (strongly consistent: what resume reads), else by database, else all; in the order they
   * were first recorded. `active: true`: not yet resumed; `active: false`: resumed.
   */
  async listQuiesced(filter: { readonly database?: string; readonly runId?: string; readonly active?: boolean } = {}): Promise<QuiesceRecord[]> {
    const items =
      filter.runId !== undefined
        ? await this.query({
            KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
            ConsistentRead: true,
            ExpressionAttributeNames: { '#pk': S.partitionKey, '#sk': S.sortKey },
            ExpressionAttributeValues: { ':pk': `RUN#${filter.runId}`, ':prefix': 'QUIESCE#' },
          })
        : await this.list('QUIESCE', filter.database, { newestFirst: false });
    const first = (i: Item) => {
      const at = i[S.firstRecordedAttribute];
      return typeof at === 'string' ? at : '';
    };
    return items
      .sort((a, b) => first(a).localeCompare(first(b)))
      .map((i) => fromItem<QuiesceRecord>(i))
      .filter(
        (r) => (filter.database === undefined || r.database === filter.database) && (filter.active === undefined || (r.status !== 'resumed') === filter.active),
      );
  }

  async putRehearsal(record: RehearsalRecord): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          ...rehearsalKey(record.runId),
          [S.entityAttribute]: 'REHEARSAL',
          [S.byDatabase.partitionKey]: `DB#${record.database}`,
          [S.byDatabase.sortKey]: `REHEARSAL#${record.createdAt}#${record.runId}`,
          [S.byType.partitionKey]: 'REHEARSAL',
          [S.byType.sortKey]: `${record.createdAt}#${record.runId}`,
          ...record,
        },
      }),
    );
  }

  /** Newest first. */
  async listRehearsals(database?: string): Promise<RehearsalRecord[]> {
    return (await this.list('REHEARSAL', database, { newestFirst: true })).map((i) => fromItem<RehearsalRecord>(i));
  }

  private async get(key: Key): Promise<Item | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }));
    return out.Item;
  }

  /** Items of one type, of one database (byDatabase) or of all (byType). */
  private list(entity: string, database: string | undefined, opts: { newestFirst: boolean; limit?: number }): Promise<Item[]> {
    const index = database === undefined ? S.byType : S.byDatabase;
    return this.query(
      {
        IndexName: index.indexName,
        ScanIndexForward: !opts.newestFirst,
        ...(database === undefined
          ? { KeyConditionExpression: '#pk = :pk', ExpressionAttributeNames: { '#pk': index.partitionKey }, ExpressionAttributeValues: { ':pk': entity } }
          : {
              KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
              ExpressionAttributeNames: { '#pk': index.partitionKey, '#sk': index.sortKey },
              ExpressionAttributeValues: { ':pk': `DB#${database}`, ':prefix': `${entity}#` },
            }),
      },
      opts.limit,
    );
  }

  /** Follows LastEvaluatedKey until done or `limit` items. */
  private async query(input: Omit<QueryCommandInput, 'TableName'>, limit?: number): Promise<Item[]> {
    const items: Item[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const remaining = limit === undefined ? undefined : limit - items.length;
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          ...input,
          ...(remaining === undefined ? {} : { Limit: remaining }),
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start && (limit === undefined || items.length < limit));
    return limit === undefined ? items : items.slice(0, limit);
  }
}

/** The key and index attributes of a run item. */
function runItem(run: RunRecord): Item {
  return {
    ...runKey(run.runId),
    [S.entityAttribute]: 'RUN',
    [S.byDatabase.partitionKey]: `DB#${run.database}`,
    [S.byDatabase.sortKey]: `RUN#${run.startedAt}#${run.runId}`,
    [S.byType.partitionKey]: 'RUN',
    [S.byType.sortKey]: `${run.startedAt}#${run.runId}`,
  };
}

interface Condition {
  readonly expression: string;
  readonly names?: Record<string, string>;
  readonly values?: Item;
}

/**
 * An UpdateExpression that SETs `fields` (undefined ones skipped) and sets `keepFirst` only where the
 * item has no value yet, with an optional condition. Every attribute name goes through a placeholder:
 * `owner`, `status` and others are DynamoDB reserved words.
 */
function update(fields: Item, keepFirst: Item = {}, condition?: Condition) {
  const names: Record<string, string> = { ...condition?.names };
  const values: Item = { ...condition?.values };
  const sets: string[] = [];
  let i = 0;
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    names[`#f${i}`] = name;
    values[`:f${i}`] = value;
    sets.push(`#f${i} = :f${i}`);
    i++;
  }
  for (const [name, value] of Object.entries(keepFirst)) {
    names[`#f${i}`] = name;
    values[`:f${i}`] = value;
    sets.push(`#f${i} = if_not_exists(#f${i}, :f${i})`);
    i++;
  }
  return {
    UpdateExpression: `SET ${sets.join(', ')}`,
    ...(condition ? { ConditionExpression: condition.expression } : {}),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

/** The record an item holds: the item without its key attributes. The ledger wrote it from a T (toItem, the updates). */
/* eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters --
   a read of the ledger's own items: each call names the record type it stored there */
function fromItem<T>(item: Item): T {
  return Object.fromEntries(Object.entries(item).filter(([k]) => !KEY_ATTRIBUTES.has(k))) as T;
}

function toLock(item: Item): LockRecord {
  return { database: String(item.database), owner: String(item.owner), acquiredAt: String(item.acquiredAt), expiresAt: String(item.expiresAt) };
}

function runNotFound(runId: string): SafeshiftError {
  return new SafeshiftError('RUN_NOT_FOUND', `run ${runId} is not in the ledger; it was never started, or the ledger table is another one`);
}

/** LOCKED, naming the holder and its age, and saying `stale` (with what to do) once it has expired. */
function lockedError(lock: LockRecord, now: Date): LockedError {
  const ageMs = Math.max(0, now.getTime() - Date.parse(lock.acquiredAt));
  const leftMs = Date.parse(lock.expiresAt) - now.getTime();
  const stale = leftMs <= 0;
  const head = `database ${lock.database} is locked by run ${lock.owner}, which took the lock ${duration(ageMs)} ago (${lock.acquiredAt})`;
  const message = stale
    ? `${head}. The lock is stale: it expired ${duration(-leftMs)} ago, so that run has probably stopped. It is not taken over silently: ` +
      `once you are sure run ${lock.owner} is no longer working on ${lock.database}, break the lock on purpose and start again.`
    : `${head}; it expires in ${duration(leftMs)}. Wait for that run to finish, or stop it first.`;
  return new LockedError(message, { database: lock.database, owner: lock.owner, acquiredAt: lock.acquiredAt, expiresAt: lock.expiresAt, ageMs, stale });
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`;
}
