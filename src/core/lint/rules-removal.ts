import { nodeAs, rangeVarOf, relationName, stringValues } from './nodes.ts';
import { allowHint, contractFix, tableCommands, type Hit, type LintRule } from './rule.ts';

/**
 * The rules for changes that take away something running code uses: dropping or renaming a table or
 * a column. The application version still serving traffic was built against the old names, so its
 * queries fail the moment such a migration commits. They belong in a contract migration.
 *
 * @example
 * ```ts
 * REMOVAL_RULES.map((r) => r.name); // ['drop-table', 'drop-column', 'rename-table', 'rename-column']
 * ```
 */
export const REMOVAL_RULES: readonly LintRule[] = [
  {
    name: 'drop-table',
    severity: 'error',
    summary: 'DROP TABLE in an expand migration breaks code that still uses the table',
    expandOnly: true,
    check(ctx) {
      const drop = nodeAs(ctx.statement.node, 'DropStmt');
      if (drop?.removeType !== 'OBJECT_TABLE') return [];
      const hits: Hit[] = [];
      for (const object of drop.objects ?? []) {
        const table = rangeVarOf(stringValues(nodeAs(object, 'List')?.items));
        if (ctx.isNew(table)) continue;
        const name = relationName(table);
        hits.push({
          message:
            `DROP TABLE ${name} removes a table that the application version still running may read or write; ` +
            `its queries fail as soon as this migration commits`,
          fix: contractFix('drop-table', `no running code uses ${name}`),
        });
      }
      return hits;
    },
  },
  {
    name: 'drop-column',
    severity: 'error',
    summary: 'DROP COLUMN in an expand migration breaks code that still reads or writes the column',
    expandOnly: true,
    check(ctx) {
      return tableCommands(ctx, 'AT_DropColumn', (cmd, table) => ({
        message:
          `dropping column ${table}.${cmd.name ?? '?'} breaks the application version still running: ` +
          `every query that reads or writes ${cmd.name ?? '?'} fails as soon as this migration commits`,
        fix: contractFix('drop-column', `no running code reads the column`),
      }));
    },
  },
  {
    name: 'rename-table',
    severity: 'error',
    summary: 'renaming a table (or moving it to another schema) breaks code that uses the old name',
    expandOnly: true,
    check(ctx) {
      const rename = nodeAs(ctx.statement.node, 'RenameStmt');
      if (rename?.renameType === 'OBJECT_TABLE' && rename.relation && !ctx.isNew(rename.relation)) {
        const name = relationName(rename.relation);
        return [
          {
            message: `renaming table ${name} to ${rename.newname ?? '?'} breaks the application version still running: every query that names ${name} fails`,
            fix: renameTableFix(name, rename.newname ?? 'new_name'),
          },
        ];
      }
      const move = nodeAs(ctx.statement.node, 'AlterObjectSchemaStmt');
      if (move?.objectType === 'OBJECT_TABLE' && move.relation && !ctx.isNew(move.relation)) {
        const name = relationName(move.relation);
        return [
          {
            message:
              `moving table ${name} to schema ${move.newschema ?? '?'} breaks the application version still running: ` +
              `every query that finds it by its old schema fails`,
            fix: renameTableFix(name, `${move.newschema ?? 'new_schema'}.${move.relation.relname ?? ''}`),
          },
        ];
      }
      return [];
    },
  },
  {
    name: 'rename-column',
    severity: 'error',
    summary: 'renaming a column breaks code that uses the old name',
    expandOnly: true,
    check(ctx) {
      const rename = nodeAs(ctx.statement.node, 'RenameStmt');
      if (rename?.renameType !== 'OBJECT_COLUMN' || rename.relationType !== 'OBJECT_TABLE') return [];
      if (!rename.relation || ctx.isNew(rename.relation)) return [];
      const table = relationName(rename.relation);
      const from = rename.subname ?? '?';
      const to = rename.newname ?? '?';
      return [
        {
          message: `renaming column ${table}.${from} to ${to} breaks the application version still running: every query that reads or writes ${from} fails`,
          fix:
            `add ${to} as a new column in an expand migration and keep both filled (the application or a trigger writes both), backfill it, ` +
            `switch the code to ${to}, then drop ${from} in a contract migration (\`-- safeshift:phase contract\`); or ${allowHint('rename-column')}`,
        },
      ];
    },
  },
];

function renameTableFix(from: string, to: string): string {
  return (
    `keep ${from} working while old code runs: rename it in a contract migration (\`-- safeshift:phase contract\`) ` +
    `released after all running code uses ${to} ` +
    `(a view \`CREATE VIEW ${to} AS SELECT * FROM ${from}\` lets new code use the new name meanwhile), or ${allowHint('rename-table')}`
  );
}
