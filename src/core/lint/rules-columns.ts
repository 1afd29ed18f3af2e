import type { AlterTableCmd, RangeVar } from 'libpg-query';
import { alterCommands, altersTable, columnConstraints, columnDefault, nodeAs, relationName, serialType, stringValues } from './nodes.ts';
import { allowHint, contractFix, tableCommands, type Hit, type LintRule, type RuleContext } from './rule.ts';

/**
 * The rules for column changes that old code cannot live with: a new type, a new NOT NULL, a NOT NULL
 * column old inserts do not fill, and a default old inserts relied on. Each is fine in a contract
 * migration, once no running code depends on the old shape.
 *
 * @example
 * ```ts
 * COLUMN_RULES.every((r) => r.expandOnly); // true
 * ```
 */
export const COLUMN_RULES: readonly LintRule[] = [
  {
    name: 'alter-column-type',
    severity: 'error',
    summary: 'changing a column type breaks code that reads or writes it, and usually rewrites the table',
    expandOnly: true,
    check(ctx) {
      return tableCommands(ctx, 'AT_AlterColumnType', (cmd, table) => {
        const column = cmd.name ?? '?';
        return {
          message:
            `changing the type of ${table}.${column} can break the application version still running (it reads and writes the old type), ` +
            `and most type changes rewrite the whole table under an ACCESS EXCLUSIVE lock that blocks every query on it`,
          fix:
            `add a new column of the new type in an expand migration, keep both filled and backfill it in batches, switch the code to it, ` +
            `then drop ${column} in a contract migration (\`-- safeshift:phase contract\`); or ${allowHint('alter-column-type')} ` +
            `(for example for varchar(n) → text, which needs no rewrite)`,
        };
      });
    },
  },
  {
    name: 'set-not-null',
    severity: 'error',
    summary: 'SET NOT NULL breaks code that leaves the column empty, and scans the table under an exclusive lock',
    expandOnly: true,
    check(ctx) {
      const alter = nodeAs(ctx.statement.node, 'AlterTableStmt');
      if (!alter || !altersTable(alter) || ctx.isNew(alter.relation)) return [];
      const hits: Hit[] = [];
      for (const { cmd, index } of alterCommands(alter)) {
        for (const column of newNotNullColumns(cmd)) {
          if (ctx.model.isNotNull(alter.relation, column)) continue;
          hits.push({ offset: ctx.commandOffset(index), ...setNotNullHit(alter.relation, column) });
        }
      }
      return hits;
    },
  },
  {
    name: 'add-column-not-null-without-default',
    severity: 'error',
    summary: 'a NOT NULL column without a default fails on a non-empty table and breaks inserts by old code',
    expandOnly: true,
    check(ctx) {
      return tableCommands(ctx, 'AT_AddColumn', (cmd, table) => {
        const def = nodeAs(cmd.def, 'ColumnDef');
        const kinds = new Set(columnConstraints(def).map((c) => c.contype));
        const required = kinds.has('CONSTR_NOTNULL') || kinds.has('CONSTR_PRIMARY');
        // Identity, generated and serial columns fill themselves, so old inserts still work.
        const filled = columnDefault(def) !== undefined || serialType(def) !== undefined || kinds.has('CONSTR_IDENTITY') || kinds.has('CONSTR_GENERATED');
        if (!required || filled) return undefined;
        const column = def?.colname ?? '?';
        return {
          message:
            `adding ${table}.${column} as NOT NULL without a DEFAULT fails if ${table} has any rows, ` +
            `and every insert by the application version still running (which does not know ${column}) fails`,
          fix:
            `give it a DEFAULT (\`ADD COLUMN ${column} … NOT NULL DEFAULT …\`; a non-volatile default needs no table rewrite since Postgres 11), ` +
            `or add it nullable now and set it NOT NULL in a contract migration once all running code writes it; ` +
            `or ${allowHint('add-column-not-null-without-default')}`,
        };
      });
    },
  },
  {
    name: 'drop-default-on-not-null',
    severity: 'error',
    summary: 'dropping the default of a NOT NULL column breaks inserts by code that omits the column',
    expandOnly: true,
    check(ctx) {
      const alter = nodeAs(ctx.statement.node, 'AlterTableStmt');
      if (!alter || !altersTable(alter) || ctx.isNew(alter.relation)) return [];
      const cmds = alterCommands(alter);
      const hits: Hit[] = [];
      for (const { cmd, index } of cmds) {
        if (cmd.subtype !== 'AT_ColumnDefault' || cmd.def !== undefined || cmd.name === undefined) continue;
        if (!notNullAt(ctx, alter.relation, cmds.map((c) => c.cmd).slice(0, index), cmd.name)) continue;
        const table = relationName(alter.relation);
        hits.push({
          offset: ctx.commandOffset(index),
          message:
            `dropping the default of NOT NULL column ${table}.${cmd.name} makes every ` +
            `insert by the application version still running that omits ${cmd.name} fail`,
          fix: contractFix('drop-default-on-not-null', `all running code writes ${cmd.name} itself`),
        });
      }
      return hits;
    },
  },
];

/** Columns a command makes NOT NULL on existing rows: SET NOT NULL, or Postgres 18's ADD CONSTRAINT … NOT NULL. */
function newNotNullColumns(cmd: AlterTableCmd): string[] {
  if (cmd.subtype === 'AT_SetNotNull') return cmd.name === undefined ? [] : [cmd.name];
  const constraint = cmd.subtype === 'AT_AddConstraint' ? nodeAs(cmd.def, 'Constraint') : undefined;
  return constraint?.contype === 'CONSTR_NOTNULL' ? stringValues(constraint.keys) : [];
}

function setNotNullHit(rel: RangeVar | undefined, column: string): Omit<Hit, 'offset'> {
  const table = relationName(rel);
  const check = `${rel?.relname ?? 'table'}_${column}_not_null`;
  return {
    message:
      `SET NOT NULL on ${table}.${column} makes every write by the application version still running that leaves ${column} empty fail, ` +
      `and checks every row while holding an ACCESS EXCLUSIVE lock that blocks all queries on ${table}`,
    fix:
      `once all running code writes ${column}, in a contract migration (\`-- safeshift:phase contract\`): ` +
      `\`ALTER TABLE ${table} ADD CONSTRAINT ${check} CHECK (${column} IS NOT NULL) NOT VALID;\`, ` +
      `then \`ALTER TABLE ${table} VALIDATE CONSTRAINT ${check};\` (scans without blocking writes), ` +
      `then \`ALTER TABLE ${table} ALTER COLUMN ${column} SET NOT NULL;\` (Postgres 12+ trusts the valid check and skips the scan) ` +
      `and \`ALTER TABLE ${table} DROP CONSTRAINT ${check};\`; or ${allowHint('set-not-null')}`,
  };
}

/** Whether a column is NOT NULL after the model's state plus the commands that precede it in the statement. */
function notNullAt(ctx: RuleContext, rel: RangeVar | undefined, before: readonly AlterTableCmd[], column: string): boolean {
  let notNull = ctx.model.isNotNull(rel, column);
  for (const cmd of before) {
    if (cmd.subtype === 'AT_AddColumn') {
      const def = nodeAs(cmd.def, 'ColumnDef');
      if (def?.colname === column) {
        notNull = columnConstraints(def).some((c) => c.contype === 'CONSTR_NOTNULL' || c.contype === 'CONSTR_PRIMARY');
      }
    } else if (cmd.subtype === 'AT_DropNotNull' && cmd.name === column) {
      notNull = false;
    } else if (newNotNullColumns(cmd).includes(column)) {
      notNull = true;
    }
  }
  return notNull;
}
