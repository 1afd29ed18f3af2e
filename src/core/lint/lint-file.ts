import type { MigrationFile } from '../discover.ts';
import type { ParsedSql } from '../statements.ts';
import { acknowledge } from './allows.ts';
import { RULES } from './catalog.ts';
import { LockTimeoutTracker } from './lock-timeout.ts';
import { FilePositions } from './positions.ts';
import type { RuleContext } from './rule.ts';
import type { SchemaModel } from './schema-model.ts';
import type { LintFinding, LintOptions } from './types.ts';

/** How much of a statement a finding quotes: enough to recognise it in a CI log. */
const SQL_PREVIEW_CHARS = 120;

/**
 * Lints one parsed SQL migration against the schema model, statement by statement, and feeds each
 * statement to the model after checking it (so a rule sees the schema as it is when the statement
 * runs). Returns the findings, allow directives applied, in the order they appear in the file.
 *
 * @example
 * ```ts
 * const model = new SchemaModel();
 * const findings = await lintFile(file, await parseSql(file.text, file.script), model, {});
 * ```
 */
export async function lintFile(file: MigrationFile, parsed: ParsedSql, model: SchemaModel, options: LintOptions): Promise<LintFinding[]> {
  const positions = await FilePositions.of(parsed);
  const timeout = new LockTimeoutTracker(file, options);
  // In a contract migration, breaking old code is the point: those rules stay quiet.
  const rules = RULES.filter((rule) => !rule.expandOnly || file.directives.phase === 'expand');
  const findings: LintFinding[] = [];
  for (const statement of parsed.statements) {
    let commands: number[] | undefined | null = null;
    const ctx: RuleContext = {
      file,
      statement,
      model,
      lockTimeout: timeout.current,
      isNew: (rel) => rel !== undefined && model.createdIn(rel) === file.script,
      commandOffset: (index) => {
        commands ??= positions.alterCommandOffsets(statement);
        return commands?.[index];
      },
      offsetOf: (byteLocation) => positions.charOffset(byteLocation),
    };
    const sql = preview(statement.sql);
    for (const rule of rules) {
      for (const hit of rule.check(ctx)) {
        const { line, column } = hit.offset === undefined ? statement : positions.lineColumn(hit.offset);
        findings.push({
          rule: rule.name,
          severity: rule.severity,
          file: file.script,
          ...(file.version ? { version: file.version.text } : {}),
          line,
          column,
          statementIndex: statement.index,
          message: hit.message,
          fix: hit.fix,
          sql,
        });
      }
    }
    model.apply(statement.node, file.script);
    timeout.after(statement);
  }
  const endLines = parsed.statements.map((statement) => positions.endLine(statement));
  return acknowledge(findings, file, parsed.source, endLines).sort((a, b) => a.line - b.line || a.column - b.column);
}

/** The statement on one line, cut to a readable length. */
function preview(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length <= SQL_PREVIEW_CHARS ? flat : `${flat.slice(0, SQL_PREVIEW_CHARS - 1)}…`;
}
