import type { Node, ReindexObjectType } from 'libpg-query';
import { alterCommands, hasOption, nodeAs, optionOn } from './nodes.ts';
import type { LintRule, RuleContext } from './rule.ts';

/**
 * `concurrently-in-transaction`: statements Postgres refuses inside a transaction block (SQLSTATE
 * 25001) in a migration safeshift would run in one. Such a migration fails on every attempt, in the
 * rehearsal at best, so this is an error in any phase and for new tables too.
 *
 * @example
 * ```ts
 * TRANSACTION_RULE.name; // 'concurrently-in-transaction'
 * ```
 */
export const TRANSACTION_RULE: LintRule = {
  name: 'concurrently-in-transaction',
  severity: 'error',
  summary: 'CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY, VACUUM and the like cannot run in a transaction',
  expandOnly: false,
  check(ctx) {
    if (!ctx.file.directives.transaction) return [];
    return refusedInTransaction(ctx).map(({ what, offset }) => ({
      offset,
      message: `Postgres refuses ${what} inside a transaction block (SQLSTATE 25001), and safeshift runs this migration in one, so it fails on every run`,
      fix:
        `add \`-- safeshift:no-transaction\` to the migration's leading comments, and keep the statement in a migration of its own ` +
        `(without a transaction, statements that ran before a failure stay applied)`,
    }));
  },
};

/** REINDEX over many tables at once is refused in a transaction even without CONCURRENTLY. */
const REINDEX_SCOPES: Partial<Record<ReindexObjectType, string>> = {
  REINDEX_OBJECT_SCHEMA: 'SCHEMA',
  REINDEX_OBJECT_SYSTEM: 'SYSTEM',
  REINDEX_OBJECT_DATABASE: 'DATABASE',
};

/** Statements refused in a transaction whatever their options, by parse-tree node type. */
const NEVER_IN_TRANSACTION: Partial<Record<string, string>> = {
  CreatedbStmt: 'CREATE DATABASE',
  DropdbStmt: 'DROP DATABASE',
  AlterSystemStmt: 'ALTER SYSTEM',
  CreateTableSpaceStmt: 'CREATE TABLESPACE',
  DropTableSpaceStmt: 'DROP TABLESPACE',
};

/** The part of the statement Postgres will not run in a transaction, named as a person writes it. */
function refusedInTransaction(ctx: RuleContext): { what: string; offset?: number | undefined }[] {
  const node: Node = ctx.statement.node;
  if (nodeAs(node, 'IndexStmt')?.concurrent) return [{ what: 'CREATE INDEX CONCURRENTLY' }];
  if (nodeAs(node, 'DropStmt')?.concurrent) return [{ what: 'DROP INDEX CONCURRENTLY' }];
  const reindex = nodeAs(node, 'ReindexStmt');
  if (reindex) {
    if (optionOn(reindex.params, 'concurrently')) return [{ what: 'REINDEX CONCURRENTLY' }];
    const kind = reindex.kind === undefined ? undefined : REINDEX_SCOPES[reindex.kind];
    return kind === undefined ? [] : [{ what: `REINDEX ${kind}` }];
  }
  // ANALYZE is a VacuumStmt too, and is allowed in a transaction.
  if (nodeAs(node, 'VacuumStmt')?.is_vacuumcmd) return [{ what: 'VACUUM' }];
  for (const key of Object.keys(node)) {
    const what = NEVER_IN_TRANSACTION[key];
    if (what !== undefined) return [{ what }];
  }
  const cluster = nodeAs(node, 'ClusterStmt');
  if (cluster) return cluster.relation ? [] : [{ what: 'CLUSTER without a table name' }];
  if (hasOption(nodeAs(node, 'AlterDatabaseStmt')?.options, 'tablespace')) return [{ what: 'ALTER DATABASE … SET TABLESPACE' }];
  const subscription = nodeAs(node, 'CreateSubscriptionStmt');
  if (subscription) {
    // Without a connection or a new slot, CREATE SUBSCRIPTION is allowed in a transaction.
    const offline =
      (hasOption(subscription.options, 'connect') && !optionOn(subscription.options, 'connect')) ||
      (hasOption(subscription.options, 'create_slot') && !optionOn(subscription.options, 'create_slot'));
    return offline ? [] : [{ what: 'CREATE SUBSCRIPTION (which creates a replication slot)' }];
  }
  const alter = nodeAs(node, 'AlterTableStmt');
  if (alter) {
    const out: { what: string; offset?: number | undefined }[] = [];
    for (const { cmd, index } of alterCommands(alter)) {
      if (cmd.subtype === 'AT_DetachPartition' && nodeAs(cmd.def, 'PartitionCmd')?.concurrent) {
        out.push({ what: 'DETACH PARTITION … CONCURRENTLY', offset: ctx.commandOffset(index) });
      }
    }
    return out;
  }
  return [];
}
