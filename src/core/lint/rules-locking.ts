import type { AlterTableCmd, ConstrType, Constraint } from 'libpg-query';
import { alterCommands, altersTable, columnConstraints, columnDefault, functionCalls, nodeAs, relationName, serialType } from './nodes.ts';
import { allowHint, type Hit, type LintRule, type RuleContext } from './rule.ts';

/**
 * Functions whose value differs per row, so a DEFAULT calling them must be computed for every existing
 * row: Postgres 11+ only skips the table rewrite for non-volatile defaults. now() and current_timestamp
 * are stable (one value per transaction) and are not listed.
 */
const VOLATILE_FUNCTIONS = new Set([
  'random',
  'random_normal',
  'clock_timestamp',
  'timeofday',
  'nextval',
  'gen_random_uuid',
  'gen_random_bytes',
  'uuidv4',
  'uuidv7',
  'uuid_generate_v1',
  'uuid_generate_v1mc',
  'uuid_generate_v4',
]);

/** Constraints that build an index when added, by the words that add them. */
const INDEX_CONSTRAINTS: Partial<Record<ConstrType, string>> = {
  CONSTR_PRIMARY: 'PRIMARY KEY',
  CONSTR_UNIQUE: 'UNIQUE',
  CONSTR_EXCLUSION: 'EXCLUDE',
};

/**
 * The rules for statements that are compatible with running code but hold a lock that stalls it:
 * a plain CREATE INDEX, constraints validated in the same statement that adds them, and a new column
 * whose default forces a rewrite of every row. They are warnings, in any phase, and never apply to a
 * table created in the same migration (it is empty and nobody queries it yet).
 *
 * @example
 * ```ts
 * LOCKING_RULES.map((r) => r.severity); // ['warning', 'warning', 'warning', 'warning']
 * ```
 */
export const LOCKING_RULES: readonly LintRule[] = [
  {
    name: 'create-index-not-concurrently',
    severity: 'warning',
    summary: 'CREATE INDEX without CONCURRENTLY blocks writes to an existing table while it builds',
    expandOnly: false,
    check(ctx) {
      const index = nodeAs(ctx.statement.node, 'IndexStmt');
      if (index) {
        if (index.concurrent || !index.relation || ctx.isNew(index.relation)) return [];
        const table = relationName(index.relation);
        return [
          {
            message:
              `CREATE INDEX on existing table ${table} holds a SHARE lock that blocks every insert, ` +
              `update and delete on ${table} until the index is built`,
            fix: `use CREATE INDEX CONCURRENTLY in a migration with \`-- safeshift:no-transaction\`, or ${allowHint('create-index-not-concurrently')}`,
          },
        ];
      }
      return addedConstraints(ctx, (constraint, table, column) => {
        const kind = constraint.contype === undefined ? undefined : INDEX_CONSTRAINTS[constraint.contype];
        // USING INDEX adopts an index built beforehand (concurrently, one hopes): nothing is built here.
        if (kind === undefined || constraint.indexname !== undefined) return undefined;
        return {
          message: `adding a ${kind} constraint to existing table ${table} builds its index under an ACCESS EXCLUSIVE lock that blocks every query on ${table}`,
          fix:
            kind === 'EXCLUDE'
              ? `an exclusion constraint cannot be built concurrently: run it when ${table} is quiet and ${allowHint('create-index-not-concurrently')}`
              : `${column === undefined ? '' : `add ${column} without ${kind}, then `}build the index with \`CREATE UNIQUE INDEX CONCURRENTLY\` ` +
                `in a migration with \`-- safeshift:no-transaction\`, ` +
                `then \`ALTER TABLE ${table} ADD CONSTRAINT … ${kind} USING INDEX <index>\`; or ${allowHint('create-index-not-concurrently')}`,
        };
      });
    },
  },
  {
    name: 'foreign-key-without-not-valid',
    severity: 'warning',
    summary: 'a foreign key added without NOT VALID checks every row while blocking writes to both tables',
    expandOnly: false,
    check(ctx) {
      return addedConstraints(ctx, (constraint, table, column) => {
        if (constraint.contype !== 'CONSTR_FOREIGN' || constraint.skip_validation) return undefined;
        const target = relationName(constraint.pktable);
        const message =
          `adding a foreign key from existing table ${table} to ${target} checks every row of ${table} ` +
          `while holding locks that block writes to ${table} and ${target}`;
        return {
          message,
          fix:
            column === undefined
              ? `add it with NOT VALID (\`ALTER TABLE ${table} ADD CONSTRAINT … FOREIGN KEY (…) REFERENCES ${target} NOT VALID\`), ` +
                `then \`ALTER TABLE ${table} VALIDATE CONSTRAINT …\` in a later migration, ` +
                `which does not block writes; or ${allowHint('foreign-key-without-not-valid')}`
              : `add ${column} without REFERENCES, then \`ALTER TABLE ${table} ADD CONSTRAINT … FOREIGN KEY (${column}) REFERENCES ${target} NOT VALID\` ` +
                `and \`VALIDATE CONSTRAINT …\` in a later migration, which does not block writes; or ${allowHint('foreign-key-without-not-valid')}`,
        };
      });
    },
  },
  {
    name: 'check-without-not-valid',
    severity: 'warning',
    summary: 'a CHECK constraint added without NOT VALID scans the table under an ACCESS EXCLUSIVE lock',
    expandOnly: false,
    check(ctx) {
      return addedConstraints(ctx, (constraint, table, column) => {
        if (constraint.contype !== 'CONSTR_CHECK' || constraint.skip_validation) return undefined;
        return {
          message:
            `adding a CHECK constraint to existing table ${table} checks every row ` +
            `while holding an ACCESS EXCLUSIVE lock that blocks every query on ${table}`,
          fix:
            `${column === undefined ? 'add it' : `add ${column} without the CHECK, then add the constraint`} with NOT VALID ` +
            `(\`ALTER TABLE ${table} ADD CONSTRAINT … CHECK (…) NOT VALID\`), then \`ALTER TABLE ${table} VALIDATE CONSTRAINT …\` ` +
            `in a later migration, which does not block reads or writes; or ${allowHint('check-without-not-valid')}`,
        };
      });
    },
  },
  {
    name: 'volatile-default',
    severity: 'warning',
    summary: 'ADD COLUMN with a volatile default (random(), gen_random_uuid(), serial, …) rewrites the whole table',
    expandOnly: false,
    check(ctx) {
      const alter = nodeAs(ctx.statement.node, 'AlterTableStmt');
      if (!alter || !altersTable(alter) || ctx.isNew(alter.relation)) return [];
      const table = relationName(alter.relation);
      const hits: Hit[] = [];
      for (const { cmd, index } of alterCommands(alter)) {
        const def = cmd.subtype === 'AT_AddColumn' ? nodeAs(cmd.def, 'ColumnDef') : undefined;
        if (!def) continue;
        const column = def.colname ?? '?';
        const call = functionCalls(columnDefault(def)?.raw_expr).find((f) => VOLATILE_FUNCTIONS.has(f.name));
        const serial = serialType(def);
        const identity = columnConstraints(def).find((c) => c.contype === 'CONSTR_IDENTITY');
        let what: string;
        let at: number | undefined;
        if (call) {
          what = `the volatile default ${call.name}()`;
          at = call.location;
        } else if (serial) {
          what = `type ${serial} (a default of nextval() on a new sequence)`;
          at = def.typeName?.location;
        } else if (identity) {
          what = 'GENERATED AS IDENTITY (a value from a sequence for every row)';
          at = identity.location;
        } else {
          continue;
        }
        hits.push({
          offset: ctx.offsetOf(at) ?? ctx.commandOffset(index),
          message:
            `adding ${table}.${column} with ${what} computes a value for every existing row, ` +
            `rewriting all of ${table} under an ACCESS EXCLUSIVE lock that blocks every query on it`,
          fix:
            `add ${column} without that default (or with a constant one), then set the default in a separate statement ` +
            `(\`ALTER TABLE ${table} ALTER COLUMN ${column} SET DEFAULT …\` only applies to new rows) and backfill existing rows in batches; ` +
            `or ${allowHint('volatile-default')}`,
        });
      }
      return hits;
    },
  },
];

/**
 * Calls `report` for each constraint an ALTER TABLE on an existing table adds, whether written as
 * `ADD CONSTRAINT …` (pointed at its command) or inline on an added column (pointed at the clause;
 * `column` is then the new column's name).
 */
function addedConstraints(
  ctx: RuleContext,
  report: (constraint: Constraint, table: string, column: string | undefined) => Omit<Hit, 'offset'> | undefined,
): Hit[] {
  const alter = nodeAs(ctx.statement.node, 'AlterTableStmt');
  if (!alter || !altersTable(alter) || ctx.isNew(alter.relation)) return [];
  const table = relationName(alter.relation);
  const hits: Hit[] = [];
  for (const { cmd, index } of alterCommands(alter)) {
    for (const { constraint, column } of constraintsOf(cmd)) {
      const hit = report(constraint, table, column);
      if (!hit) continue;
      const offset = column === undefined ? ctx.commandOffset(index) : (ctx.offsetOf(constraint.location) ?? ctx.commandOffset(index));
      hits.push({ offset, ...hit });
    }
  }
  return hits;
}

function constraintsOf(cmd: AlterTableCmd): { constraint: Constraint; column?: string }[] {
  if (cmd.subtype === 'AT_AddConstraint') {
    const constraint = nodeAs(cmd.def, 'Constraint');
    return constraint ? [{ constraint }] : [];
  }
  if (cmd.subtype === 'AT_AddColumn') {
    const def = nodeAs(cmd.def, 'ColumnDef');
    const column = def?.colname ?? '?';
    return columnConstraints(def).map((constraint) => ({ constraint, column }));
  }
  return [];
}
