import type { AlterTableStmt, Constraint, CreateStmt, Node, RangeVar } from 'libpg-query';
import { alterCommands, altersTable, columnIsNotNull, nodeAs, rangeVarOf, relationKey, stringValues } from './nodes.ts';

interface TableState {
  /** The script whose CREATE made the table; undefined for a table only seen being altered. */
  createdIn?: string;
  readonly notNull: Set<string>;
}

/**
 * The little the linter needs to know about the schema the migrations build: which tables exist,
 * which migration created each, and which of their columns are NOT NULL. It is fed every statement
 * of every migration in apply order (applied ones too), so a rule can tell a table created in the
 * migration it is looking at (nobody uses it yet, so no lock or compatibility risk) from an existing one.
 *
 * Tables the migrations never created (made by hand, or before the first migration) are unknown; rules
 * treat them as existing, which is the safe side.
 *
 * @example
 * ```ts
 * const model = new SchemaModel();
 * for (const s of (await parseSql('create table a (id int not null);', 'V1__a.sql')).statements) model.apply(s.node, 'V1__a.sql');
 * model.createdIn({ relname: 'a' }); // 'V1__a.sql'
 * model.isNotNull({ relname: 'a' }, 'id'); // true
 * ```
 */
export class SchemaModel {
  private readonly tables = new Map<string, TableState>();

  /** The script that created the table, if a migration did. */
  createdIn(rel: RangeVar | undefined): string | undefined {
    return rel ? this.tables.get(relationKey(rel))?.createdIn : undefined;
  }

  /** Whether the model knows the column to be NOT NULL (false when it does not know). */
  isNotNull(rel: RangeVar | undefined, column: string): boolean {
    return rel ? (this.tables.get(relationKey(rel))?.notNull.has(column) ?? false) : false;
  }

  /** Records what one statement of `script` does to the schema. Statements it does not model are ignored. */
  apply(node: Node, script: string): void {
    const create = nodeAs(node, 'CreateStmt');
    if (create) return this.create(create, script);
    const createAs = nodeAs(node, 'CreateTableAsStmt');
    if (createAs?.into?.rel) return this.created(createAs.into.rel, script, createAs.if_not_exists);
    const selectInto = nodeAs(node, 'SelectStmt')?.intoClause?.rel;
    if (selectInto) return this.created(selectInto, script, false);
    const alter = nodeAs(node, 'AlterTableStmt');
    if (alter) return this.alter(alter);
    const drop = nodeAs(node, 'DropStmt');
    if (drop && (drop.removeType === 'OBJECT_TABLE' || drop.removeType === 'OBJECT_MATVIEW')) {
      for (const object of drop.objects ?? []) {
        this.tables.delete(relationKey(rangeVarOf(stringValues(nodeAs(object, 'List')?.items))));
      }
      return;
    }
    const rename = nodeAs(node, 'RenameStmt');
    if (rename?.relation && rename.newname !== undefined) {
      if (rename.renameType === 'OBJECT_TABLE') {
        this.move(rename.relation, { ...rename.relation, relname: rename.newname });
      } else if (rename.renameType === 'OBJECT_COLUMN' && rename.subname !== undefined) {
        const state = this.tables.get(relationKey(rename.relation));
        if (state?.notNull.delete(rename.subname)) state.notNull.add(rename.newname);
      }
      return;
    }
    const setSchema = nodeAs(node, 'AlterObjectSchemaStmt');
    if (setSchema?.objectType === 'OBJECT_TABLE' && setSchema.relation && setSchema.newschema !== undefined) {
      this.move(setSchema.relation, { ...setSchema.relation, schemaname: setSchema.newschema });
    }
  }

  private create(stmt: CreateStmt, script: string): void {
    if (!stmt.relation) return;
    const key = relationKey(stmt.relation);
    // CREATE TABLE IF NOT EXISTS on a table the model knows is a no-op in Postgres too.
    if (stmt.if_not_exists && this.tables.has(key)) return;
    const notNull = new Set<string>();
    for (const element of stmt.tableElts ?? []) {
      const column = nodeAs(element, 'ColumnDef');
      if (column?.colname !== undefined && columnIsNotNull(column)) notNull.add(column.colname);
      const constraint = nodeAs(element, 'Constraint');
      if (constraint) for (const name of notNullKeys(constraint)) notNull.add(name);
    }
    this.tables.set(key, { createdIn: script, notNull });
  }

  private created(rel: RangeVar, script: string, ifNotExists: boolean | undefined): void {
    const key = relationKey(rel);
    if (ifNotExists && this.tables.has(key)) return;
    this.tables.set(key, { createdIn: script, notNull: new Set() });
  }

  private alter(stmt: AlterTableStmt): void {
    if (!altersTable(stmt) || !stmt.relation) return;
    const key = relationKey(stmt.relation);
    let state = this.tables.get(key);
    if (!state) {
      // A table made outside the migrations: remember what the migrations say about its columns.
      state = { notNull: new Set() };
      this.tables.set(key, state);
    }
    for (const { cmd } of alterCommands(stmt)) {
      const name = cmd.name;
      switch (cmd.subtype) {
        case 'AT_AddColumn': {
          const def = nodeAs(cmd.def, 'ColumnDef');
          if (def?.colname !== undefined && columnIsNotNull(def)) state.notNull.add(def.colname);
          break;
        }
        case 'AT_SetNotNull':
          if (name !== undefined) state.notNull.add(name);
          break;
        case 'AT_DropNotNull':
        case 'AT_DropColumn':
          if (name !== undefined) state.notNull.delete(name);
          break;
        case 'AT_AddConstraint': {
          const constraint = nodeAs(cmd.def, 'Constraint');
          if (constraint) for (const column of notNullKeys(constraint)) state.notNull.add(column);
          break;
        }
        default:
          break;
      }
    }
  }

  private move(from: RangeVar, to: RangeVar): void {
    const state = this.tables.get(relationKey(from));
    if (!state) return;
    this.tables.delete(relationKey(from));
    this.tables.set(relationKey(to), state);
  }
}

/** Columns a table-level constraint makes NOT NULL: a primary key's, or a Postgres 18 `NOT NULL col`. */
function notNullKeys(constraint: Constraint): string[] {
  if (constraint.contype !== 'CONSTR_PRIMARY' && constraint.contype !== 'CONSTR_NOTNULL') return [];
  return stringValues(constraint.keys);
}
