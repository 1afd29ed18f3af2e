import type { AlterTableCmd, AlterTableType, RangeVar } from 'libpg-query';
import type { MigrationFile } from '../discover.ts';
import type { SqlStatement } from '../statements.ts';
import { alterCommands, altersTable, nodeAs, relationName } from './nodes.ts';
import type { SchemaModel } from './schema-model.ts';

/** How bad a finding is: an `error` fails the lint, a `warning` is reported and does not. */
export type LintSeverity = 'error' | 'warning';

/** The lock timeout in force at a statement, and what set it (for the message when it is 0). */
export interface LockTimeout {
  readonly ms: number;
  /** Why this is the timeout, e.g. "`SET lock_timeout = 0` on line 3 turns it off". */
  readonly source: string;
  /** What to change so a timeout is in force. */
  readonly remedy: string;
}

/** What a rule sees of one statement. */
export interface RuleContext {
  readonly file: MigrationFile;
  readonly statement: SqlStatement;
  /** The schema as it stands before this statement runs. */
  readonly model: SchemaModel;
  readonly lockTimeout: LockTimeout;
  /** True when the relation was created earlier in this same migration: nobody can be using it yet. */
  isNew(rel: RangeVar | undefined): boolean;
  /** String offset of the n-th command of this ALTER TABLE statement, when it can be found. */
  commandOffset(index: number): number | undefined;
  /** String offset of a parse-tree location (UTF-8 bytes). */
  offsetOf(byteLocation: number | undefined): number | undefined;
}

/** One problem a rule found in a statement. Without an offset it is reported at the statement. */
export interface Hit {
  readonly offset?: number | undefined;
  readonly message: string;
  readonly fix: string;
}

/**
 * A lint rule: a name (part of the contract: `-- safeshift:allow <name>` and CI output use it),
 * a severity, a one-line summary and a check over one statement's parse tree.
 *
 * @example
 * ```ts
 * const noTruncate: LintRule = {
 *   name: 'truncate', severity: 'warning', summary: 'TRUNCATE empties a table', expandOnly: false,
 *   check: (ctx) => (nodeAs(ctx.statement.node, 'TruncateStmt') ? [{ message: 'empties the table', fix: 'delete in batches' }] : []),
 * };
 * ```
 */
export interface LintRule {
  readonly name: string;
  readonly severity: LintSeverity;
  readonly summary: string;
  /**
   * True for changes that break code still running on the old schema: they are what a contract
   * migration is for, so they are only checked in expand migrations.
   */
  readonly expandOnly: boolean;
  /**
   * False for a rule whose finding makes the file impossible to apply safely, so preflight refuses it
   * on its own terms: `-- safeshift:allow` does not acknowledge its findings. @default true
   */
  readonly acknowledgeable?: false;
  check(ctx: RuleContext): Hit[];
}

/** The closing words of every fix: how to acknowledge the finding instead. */
export function allowHint(rule: string): string {
  return `acknowledge with \`-- safeshift:allow ${rule} <reason>\``;
}

/** The fix for a change that is only safe once no running code depends on what it removes. */
export function contractFix(rule: string, untilWhen: string): string {
  return `move it to a contract migration (\`-- safeshift:phase contract\`) released after ${untilWhen}, or ${allowHint(rule)}`;
}

/**
 * Runs `report` for each command of the given kind in an ALTER TABLE on an existing table, pointing
 * each hit at its own command.
 */
export function tableCommands(ctx: RuleContext, subtype: AlterTableType, report: (cmd: AlterTableCmd, table: string, index: number) => Hit | undefined): Hit[] {
  const alter = nodeAs(ctx.statement.node, 'AlterTableStmt');
  if (!alter || !altersTable(alter) || ctx.isNew(alter.relation)) return [];
  const hits: Hit[] = [];
  for (const { cmd, index } of alterCommands(alter)) {
    if (cmd.subtype !== subtype) continue;
    const hit = report(cmd, relationName(alter.relation), index);
    if (hit) hits.push({ offset: ctx.commandOffset(index), ...hit });
  }
  return hits;
}
