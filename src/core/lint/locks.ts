import type { AlterTableCmd, AlterTableType, Node, RangeVar } from 'libpg-query';
import { alterCommands, altersTable, nodeAs, optionOn, rangeVarOf, stringValues } from './nodes.ts';
import type { RuleContext } from './rule.ts';

/** The table lock modes that conflict with writes (ROW EXCLUSIVE), weakest first. */
export type BlockingLockMode = 'SHARE' | 'SHARE ROW EXCLUSIVE' | 'EXCLUSIVE' | 'ACCESS EXCLUSIVE';

const RANK: Record<BlockingLockMode, number> = { SHARE: 1, 'SHARE ROW EXCLUSIVE': 2, EXCLUSIVE: 3, 'ACCESS EXCLUSIVE': 4 };

/** LOCK TABLE's numeric modes (Postgres's lockdefs.h) that block writes. */
const LOCK_STMT_MODES: Partial<Record<number, BlockingLockMode>> = {
  5: 'SHARE',
  6: 'SHARE ROW EXCLUSIVE',
  7: 'EXCLUSIVE',
  8: 'ACCESS EXCLUSIVE',
};

/** ALTER TABLE subcommands that take less than ACCESS EXCLUSIVE (Postgres's AlterTableGetLockLevel). */
const WEAKER_ALTERS: Partial<Record<AlterTableType, BlockingLockMode | 'none'>> = {
  AT_ValidateConstraint: 'none',
  AT_SetStatistics: 'none',
  AT_ClusterOn: 'none',
  AT_DropCluster: 'none',
  AT_SetOptions: 'none',
  AT_ResetOptions: 'none',
  AT_SetRelOptions: 'none',
  AT_ResetRelOptions: 'none',
  AT_AttachPartition: 'none',
  AT_DetachPartitionFinalize: 'none',
  AT_EnableTrig: 'SHARE ROW EXCLUSIVE',
  AT_EnableAlwaysTrig: 'SHARE ROW EXCLUSIVE',
  AT_EnableReplicaTrig: 'SHARE ROW EXCLUSIVE',
  AT_DisableTrig: 'SHARE ROW EXCLUSIVE',
  AT_EnableTrigAll: 'SHARE ROW EXCLUSIVE',
  AT_DisableTrigAll: 'SHARE ROW EXCLUSIVE',
  AT_EnableTrigUser: 'SHARE ROW EXCLUSIVE',
  AT_DisableTrigUser: 'SHARE ROW EXCLUSIVE',
};

/** A lock a statement takes on a table that blocks the application's writes while it is held or awaited. */
export interface TableLock {
  readonly relation: RangeVar;
  readonly mode: BlockingLockMode;
  /** String offset of the clause that takes it, when narrower than the statement. */
  readonly offset?: number | undefined;
}

/**
 * The write-blocking table locks a statement takes, as far as the parse tree tells (locks on a table
 * reached only through an index name, such as DROP INDEX, cannot be named and are left out).
 *
 * @example
 * ```ts
 * blockingLocks(ctx); // [{ relation: { relname: 'orders' }, mode: 'SHARE' }] for `create index on orders (id)`
 * ```
 */
export function blockingLocks(ctx: RuleContext): TableLock[] {
  const node: Node = ctx.statement.node;
  const alter = nodeAs(node, 'AlterTableStmt');
  if (alter) {
    if (!altersTable(alter) || !alter.relation) return [];
    let strongest: TableLock | undefined;
    for (const { cmd, index } of alterCommands(alter)) {
      const mode = alterLock(cmd);
      if (mode && (!strongest || RANK[mode] > RANK[strongest.mode])) {
        strongest = { relation: alter.relation, mode, offset: ctx.commandOffset(index) };
      }
    }
    return strongest ? [strongest] : [];
  }
  const index = nodeAs(node, 'IndexStmt');
  if (index) return index.relation && !index.concurrent ? [{ relation: index.relation, mode: 'SHARE' }] : [];
  const rename = nodeAs(node, 'RenameStmt');
  if (rename?.relation) {
    const onTable =
      rename.renameType === 'OBJECT_TABLE' ||
      rename.renameType === 'OBJECT_TABCONSTRAINT' ||
      (rename.renameType === 'OBJECT_COLUMN' && rename.relationType === 'OBJECT_TABLE');
    return onTable ? [{ relation: rename.relation, mode: 'ACCESS EXCLUSIVE' }] : [];
  }
  const move = nodeAs(node, 'AlterObjectSchemaStmt');
  if (move?.relation) return move.objectType === 'OBJECT_TABLE' ? [{ relation: move.relation, mode: 'ACCESS EXCLUSIVE' }] : [];
  const drop = nodeAs(node, 'DropStmt');
  if (drop) {
    if (drop.removeType !== 'OBJECT_TABLE') return [];
    return (drop.objects ?? []).map((o) => ({ relation: rangeVarOf(stringValues(nodeAs(o, 'List')?.items)), mode: 'ACCESS EXCLUSIVE' }));
  }
  const truncate = nodeAs(node, 'TruncateStmt');
  if (truncate) return rangeVars(truncate.relations).map((relation) => ({ relation, mode: 'ACCESS EXCLUSIVE' }));
  const lock = nodeAs(node, 'LockStmt');
  if (lock) {
    const mode = LOCK_STMT_MODES[lock.mode ?? 0];
    return mode ? rangeVars(lock.relations).map((relation) => ({ relation, mode })) : [];
  }
  const trigger = nodeAs(node, 'CreateTrigStmt');
  if (trigger?.relation) return [{ relation: trigger.relation, mode: 'SHARE ROW EXCLUSIVE' }];
  const policy = nodeAs(node, 'CreatePolicyStmt');
  if (policy?.table) return [{ relation: policy.table, mode: 'ACCESS EXCLUSIVE' }];
  const refresh = nodeAs(node, 'RefreshMatViewStmt');
  if (refresh?.relation) return refresh.concurrent ? [] : [{ relation: refresh.relation, mode: 'ACCESS EXCLUSIVE' }];
  const cluster = nodeAs(node, 'ClusterStmt');
  if (cluster?.relation) return [{ relation: cluster.relation, mode: 'ACCESS EXCLUSIVE' }];
  const vacuum = nodeAs(node, 'VacuumStmt');
  if (vacuum?.is_vacuumcmd && optionOn(vacuum.options, 'full')) {
    const relations = (vacuum.rels ?? []).map((r) => nodeAs(r, 'VacuumRelation')?.relation).filter((r) => r !== undefined);
    return relations.map((relation) => ({ relation, mode: 'ACCESS EXCLUSIVE' }));
  }
  const reindex = nodeAs(node, 'ReindexStmt');
  if (reindex?.relation && reindex.kind === 'REINDEX_OBJECT_TABLE' && !optionOn(reindex.params, 'concurrently')) {
    return [{ relation: reindex.relation, mode: 'SHARE' }];
  }
  return [];
}

/** The stronger of two locks, for picking the one to report. */
export function strongerLock(a: TableLock | undefined, b: TableLock): TableLock {
  return a && RANK[a.mode] >= RANK[b.mode] ? a : b;
}

function alterLock(cmd: AlterTableCmd): BlockingLockMode | undefined {
  if (cmd.subtype === undefined) return 'ACCESS EXCLUSIVE';
  if (cmd.subtype === 'AT_DetachPartition' && nodeAs(cmd.def, 'PartitionCmd')?.concurrent) return undefined;
  if (cmd.subtype === 'AT_AddConstraint' && nodeAs(cmd.def, 'Constraint')?.contype === 'CONSTR_FOREIGN') return 'SHARE ROW EXCLUSIVE';
  const weaker = WEAKER_ALTERS[cmd.subtype];
  if (weaker === 'none') return undefined;
  return weaker ?? 'ACCESS EXCLUSIVE';
}

function rangeVars(list: readonly Node[] | undefined): RangeVar[] {
  return (list ?? []).map((n) => nodeAs(n, 'RangeVar')).filter((r) => r !== undefined);
}
