import type { AlterTableCmd, AlterTableStmt, ColumnDef, Constraint, Node, RangeVar } from 'libpg-query';

type KeysOfUnion<T> = T extends unknown ? keyof T : never;

/** The name of a parse-tree node type (`AlterTableStmt`, `ColumnDef`, …). */
export type NodeKind = KeysOfUnion<Node>;

/** The payload of a parse-tree node of one kind. */
export type NodeOf<K extends NodeKind> = Extract<Node, Record<K, unknown>>[K];

/**
 * Unwraps a parse-tree node when it is of the given kind. libpg-query wraps every node in an object
 * with a single key naming its type, so this is the one place that knows that shape.
 *
 * @example
 * ```ts
 * const alter = nodeAs(statement.node, 'AlterTableStmt');
 * if (alter) for (const cmd of alterCommands(alter)) console.log(cmd.subtype);
 * ```
 */
export function nodeAs<K extends NodeKind>(node: Node | undefined, kind: K): NodeOf<K> | undefined {
  if (node === undefined || !(kind in node)) return undefined;
  return (node as unknown as Record<K, NodeOf<K>>)[kind];
}

/** The `sval`s of a list of String nodes (qualified names, column lists). */
export function stringValues(list: readonly Node[] | undefined): string[] {
  const out: string[] = [];
  for (const item of list ?? []) {
    const s = nodeAs(item, 'String');
    if (s?.sval !== undefined) out.push(s.sval);
  }
  return out;
}

/**
 * The key a relation is known by in the schema model. Unqualified names and `public.` names are the
 * same key, because migrations almost always run with the default search_path.
 */
export function relationKey(rel: RangeVar): string {
  const schema = rel.schemaname && rel.schemaname !== 'public' ? `${rel.schemaname}.` : '';
  return `${schema}${rel.relname ?? ''}`;
}

/** A relation's name as a person would write it in a message. */
export function relationName(rel: RangeVar | undefined): string {
  if (!rel) return 'the table';
  return rel.schemaname ? `${rel.schemaname}.${rel.relname ?? ''}` : (rel.relname ?? '');
}

/** Builds a RangeVar from a qualified name list, as DROP TABLE spells its targets. */
export function rangeVarOf(names: readonly string[]): RangeVar {
  const relname = names[names.length - 1] ?? '';
  const schemaname = names.length > 1 ? names[names.length - 2] : undefined;
  return schemaname === undefined ? { relname } : { schemaname, relname };
}

/** The commands of an ALTER TABLE, unwrapped, with their position in the statement. */
export function alterCommands(alter: AlterTableStmt): { cmd: AlterTableCmd; index: number }[] {
  const out: { cmd: AlterTableCmd; index: number }[] = [];
  (alter.cmds ?? []).forEach((node, index) => {
    const cmd = nodeAs(node, 'AlterTableCmd');
    if (cmd) out.push({ cmd, index });
  });
  return out;
}

/** True for an ALTER TABLE that targets a table (not ALTER INDEX/VIEW/SEQUENCE written the same way). */
export function altersTable(alter: AlterTableStmt): boolean {
  return alter.objtype === 'OBJECT_TABLE' && alter.relation !== undefined;
}

/** The constraints attached to a column definition. */
export function columnConstraints(def: ColumnDef | undefined): Constraint[] {
  const out: Constraint[] = [];
  for (const node of def?.constraints ?? []) {
    const c = nodeAs(node, 'Constraint');
    if (c) out.push(c);
  }
  return out;
}

const SERIAL_TYPES = new Set(['serial', 'serial4', 'bigserial', 'serial8', 'smallserial', 'serial2']);

/** The serial pseudo-type a column is declared with (`bigserial`, …), if any. */
export function serialType(def: ColumnDef | undefined): string | undefined {
  const names = stringValues(def?.typeName?.names);
  // A qualified name (pg_catalog.int4) is a real type; serial only exists unqualified.
  const only = names.length === 1 ? names[0] : undefined;
  return only !== undefined && SERIAL_TYPES.has(only) ? only : undefined;
}

/** The column's DEFAULT expression, unless it is absent or a literal NULL (which is no default at all). */
export function columnDefault(def: ColumnDef | undefined): Constraint | undefined {
  const found = columnConstraints(def).find((c) => c.contype === 'CONSTR_DEFAULT');
  if (!found) return undefined;
  return nodeAs(found.raw_expr, 'A_Const')?.isnull ? undefined : found;
}

/** Whether a new column is NOT NULL: declared so, a primary key, an identity or a serial. */
export function columnIsNotNull(def: ColumnDef | undefined): boolean {
  if (serialType(def)) return true;
  return columnConstraints(def).some((c) => c.contype === 'CONSTR_NOTNULL' || c.contype === 'CONSTR_PRIMARY' || c.contype === 'CONSTR_IDENTITY');
}

/**
 * Every function called anywhere inside an expression, by its unqualified name and location.
 * The walk is generic so that a call nested in a cast, CASE or operator is still seen.
 */
export function functionCalls(expr: unknown): { name: string; location?: number }[] {
  const out: { name: string; location?: number }[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    const call = (value as { FuncCall?: { funcname?: Node[]; location?: number } }).FuncCall;
    if (call) {
      const name = stringValues(call.funcname).pop();
      if (name !== undefined) out.push(call.location === undefined ? { name } : { name, location: call.location });
    }
    for (const child of Object.values(value)) visit(child);
  };
  visit(expr);
  return out;
}

/** True when a DefElem list switches an option on (`(CONCURRENTLY)`, `(CONCURRENTLY true)`, `(FULL)`). */
export function optionOn(options: readonly Node[] | undefined, name: string): boolean {
  for (const node of options ?? []) {
    const def = nodeAs(node, 'DefElem');
    if (def?.defname !== name) continue;
    if (def.arg === undefined) return true;
    const bool = nodeAs(def.arg, 'Boolean');
    if (bool) return bool.boolval === true;
    const str = nodeAs(def.arg, 'String')?.sval?.toLowerCase();
    if (str !== undefined) return !['false', 'off', '0', 'no'].includes(str);
    const int = nodeAs(def.arg, 'Integer');
    if (int) return (int.ival ?? 0) !== 0;
    return true;
  }
  return false;
}

/** True when a DefElem list names the option at all, whatever its value. */
export function hasOption(options: readonly Node[] | undefined, name: string): boolean {
  return (options ?? []).some((node) => nodeAs(node, 'DefElem')?.defname === name);
}
