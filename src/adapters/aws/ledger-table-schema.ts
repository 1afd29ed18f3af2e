/**
 * The key schema of the DynamoDB ledger table, shared by DynamoDbLedger and the CDK construct that
 * creates the table (so the two cannot drift). Every key attribute is a string (`S`); both indexes
 * project ALL attributes. The table has no TTL attribute on purpose: a run lock must never vanish
 * by expiry, because an expired lock is reported as stale and broken on purpose, never silently.
 *
 * | item      | pk                  | sk                | gsi1pk (byDatabase) | gsi1sk                          | gsi2pk (byType) | gsi2sk
 * |-----------|---------------------|-------------------|---------------------|---------------------------------|-----------------|----------------------------
 * | run lock  | `DB#<database>`     | `LOCK`            | –                   | –                               | –               | –
 * | run       | `RUN#<runId>`       | `RUN`             | `DB#<database>`     | `RUN#<startedAt>#<runId>`       | `RUN`           | `<startedAt>#<runId>`
 * | quiesced  | `RUN#<runId>`       | `QUIESCE#<apiId>` | `DB#<database>`     | `QUIESCE#<runId>#<apiId>`       | `QUIESCE`       | `<runId>#<apiId>`
 * | rehearsal | `RUN#<runId>`       | `REHEARSAL`       | `DB#<database>`     | `REHEARSAL#<createdAt>#<runId>` | `REHEARSAL`     | `<createdAt>#<runId>`
 * | snapshot  | `SNAP#<snapshotId>` | `SNAP`            | `DB#<database>`     | `SNAP#<createdAt>#<snapshotId>` | `SNAP`          | `<createdAt>#<snapshotId>`
 *
 * Why this shape: everything a running step reads back by id (a run, its quiesced APIs, a snapshot,
 * the lock) is under its own partition key and read with strong consistency; the lists a person asks
 * for (runs of a database, newest first; all snapshots) come from the indexes, where a second of lag
 * does not matter. byType's partitions are few and hot in principle, but a ledger holds a handful of
 * items per run.
 *
 * @example
 * ```ts
 * new dynamodb.Table(this, 'Ledger', {
 *   partitionKey: { name: LedgerTableSchema.partitionKey, type: AttributeType.STRING },
 *   sortKey: { name: LedgerTableSchema.sortKey, type: AttributeType.STRING },
 * }).addGlobalSecondaryIndex({
 *   indexName: LedgerTableSchema.byDatabase.indexName,
 *   partitionKey: { name: LedgerTableSchema.byDatabase.partitionKey, type: AttributeType.STRING },
 *   sortKey: { name: LedgerTableSchema.byDatabase.sortKey, type: AttributeType.STRING },
 * });
 * ```
 */
export const LedgerTableSchema = {
  partitionKey: 'pk',
  sortKey: 'sk',
  byDatabase: { indexName: 'byDatabase', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
  byType: { indexName: 'byType', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
  /** Not a key: what an item is (`LOCK`, `RUN`, `QUIESCE`, `REHEARSAL`, `SNAP`), for a person reading the table. */
  entityAttribute: 'entity',
  /** Not a key: when a quiesced API was first recorded (listQuiesced keeps that order). */
  firstRecordedAttribute: 'firstRecordedAt',
} as const;
