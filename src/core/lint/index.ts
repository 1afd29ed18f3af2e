import type { MigrationFile } from '../discover.ts';
import { SafeshiftError } from '../errors.ts';
import { parseSql, type ParsedSql } from '../statements.ts';
import { lintFile } from './lint-file.ts';
import { SchemaModel } from './schema-model.ts';
import type { LintFinding, LintOptions, LintReport } from './types.ts';

export { LINT_RULES } from './catalog.ts';
export type { LintFinding, LintOptions, LintReport, LintSeverity } from './types.ts';

/**
 * Lints migrations for changes that would break the application version still running, or lock
 * production tables for longer than a request can wait. Files are given in apply order; every SQL
 * migration (applied ones too) feeds a small schema model, so a rule can tell a table created in the
 * migration it checks (exempt: nobody uses it yet) from an existing one. Only pending SQL migrations
 * are reported; .ts/.js migrations are not analysed. A syntax error in a pending migration is thrown
 * as SYNTAX_ERROR for the caller to report.
 *
 * @example
 * ```ts
 * const { migrations } = await discoverMigrations('migrations');
 * const report = await lintMigrations(migrations, { applied: new Set(history.map((h) => h.script)) });
 * for (const f of report.findings) console.error(`${f.file}:${f.line}:${f.column} ${f.severity} ${f.rule}: ${f.message}\n  fix: ${f.fix}`);
 * if (report.errors > 0) throw new SafeshiftError('LINT_VIOLATION', `${report.errors} lint errors`);
 * ```
 */
export async function lintMigrations(files: readonly MigrationFile[], options: LintOptions = {}): Promise<LintReport> {
  const model = new SchemaModel();
  const findings: LintFinding[] = [];
  for (const file of files) {
    if (file.language !== 'sql') continue;
    const applied = options.applied?.has(file.script) ?? false;
    const parsed = options.parsed?.get(file.script) ?? (await parse(file, applied));
    if (!parsed) continue;
    if (applied) {
      for (const statement of parsed.statements) model.apply(statement.node, file.script);
      continue;
    }
    findings.push(...(await lintFile(file, parsed, model, options)));
  }
  const open = findings.filter((f) => !f.allowed);
  return {
    findings,
    errors: open.filter((f) => f.severity === 'error').length,
    warnings: open.filter((f) => f.severity === 'warning').length,
  };
}

async function parse(file: MigrationFile, applied: boolean): Promise<ParsedSql | undefined> {
  try {
    return await parseSql(file.text, file.script);
  } catch (error) {
    // An applied migration already ran on a real server; if this parser cannot read it (syntax older
    // servers accepted), linting the pending ones must not be blocked. The model just knows less,
    // and an unknown table is treated as existing, the safe side.
    if (applied && error instanceof SafeshiftError && error.code === 'SYNTAX_ERROR') return undefined;
    throw error;
  }
}
