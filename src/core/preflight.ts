import type { SqlClient } from '../ports.ts';
import { discoverMigrations, type Discovery } from './discover.ts';
import { SafeshiftError, type Problem } from './errors.ts';
import { HistoryTable, type HistoryLocation } from './history.ts';
import { lintMigrations, type LintReport } from './lint/index.ts';
import { TRANSACTION_CONTROL_RULE } from './lint/rules-transaction-control.ts';
import { planMigrations, type MigrationPlan } from './plan.ts';
import { parseSql, type ParsedSql } from './statements.ts';
import { transactionControl } from './transaction-control.ts';
import type { Version } from './version.ts';

export interface PreflightOptions {
  readonly client: SqlClient;
  /** The migrations folder. */
  readonly dir: string;
  readonly history: HistoryLocation;
  readonly target?: Version;
  readonly outOfOrder?: boolean;
  /** Lint the pending migrations and count unacknowledged errors as problems. @default true */
  readonly lint?: boolean;
  /** The run's default lock_timeout in ms, which the lint rule for missing lock timeouts reads. */
  readonly lockTimeoutMs?: number;
}

/** Everything known before a run changes anything. */
export interface Preflight {
  readonly discovery: Discovery;
  readonly plan: MigrationPlan;
  /** The parse of every pending SQL migration, by script. */
  readonly parsed: ReadonlyMap<string, ParsedSql>;
  readonly lint?: LintReport;
  /** Every problem found; the run must refuse when there is any. */
  readonly problems: readonly Problem[];
}

/**
 * Reads the folder and the history and checks everything a run depends on: names, versions,
 * checksums, missing files, order, failed runs, the target, syntax, transaction control inside a SQL
 * migration (TRANSACTION_CONTROL: safeshift owns the transaction), and (optionally) lint.
 * It changes nothing, so it is safe to call on production at any time.
 *
 * @example
 * ```ts
 * const pf = await preflight({ client, dir: 'migrations', history: DEFAULT_HISTORY });
 * if (pf.problems.length) throw new ValidationError(pf.problems, 'preflight');
 * ```
 */
export async function preflight(options: PreflightOptions): Promise<Preflight> {
  const discovery = await discoverMigrations(options.dir);
  const rows = await new HistoryTable(options.client, options.history).read();
  const plan = planMigrations(discovery.migrations, rows, {
    ...(options.target ? { target: options.target } : {}),
    ...(options.outOfOrder ? { outOfOrder: true } : {}),
  });
  const problems: Problem[] = [...discovery.problems, ...plan.problems];

  const parsed = new Map<string, ParsedSql>();
  for (const file of plan.pending) {
    if (file.language !== 'sql') continue;
    let sql: ParsedSql;
    try {
      sql = await parseSql(file.text, file.script);
    } catch (error) {
      if (!(error instanceof SafeshiftError)) throw error;
      problems.push({ code: error.code, message: error.message, ...error.location });
      continue;
    }
    parsed.set(file.script, sql);
    // A refusal, not a lint finding: no `-- safeshift:allow` makes such a file safe to apply.
    for (const statement of sql.statements) {
      const control = transactionControl(statement, file.directives.transaction);
      if (!control) continue;
      problems.push({
        code: 'TRANSACTION_CONTROL',
        file: file.script,
        line: statement.line,
        column: statement.column,
        statementIndex: statement.index,
        ...(file.version ? { version: file.version.text } : {}),
        message: `${file.script}:${statement.line}:${statement.column}: ${control.message}\n      fix: ${control.fix}`,
      });
    }
  }

  let lint: LintReport | undefined;
  const syntaxOk = problems.every((p) => p.code !== 'SYNTAX_ERROR');
  if (options.lint !== false && syntaxOk && plan.pending.length > 0) {
    const pendingScripts = new Set(plan.pending.map((f) => f.script));
    const applied = new Set(discovery.migrations.filter((f) => !pendingScripts.has(f.script)).map((f) => f.script));
    lint = await lintMigrations(discovery.migrations, {
      parsed,
      applied,
      ...(options.lockTimeoutMs !== undefined ? { defaultLockTimeoutMs: options.lockTimeoutMs } : {}),
    });
    for (const f of lint.findings) {
      // Transaction control is already a TRANSACTION_CONTROL problem above; once is enough.
      if (f.severity !== 'error' || f.allowed || f.rule === TRANSACTION_CONTROL_RULE.name) continue;
      problems.push({
        code: 'LINT_VIOLATION',
        file: f.file,
        line: f.line,
        column: f.column,
        statementIndex: f.statementIndex,
        ...(f.version ? { version: f.version } : {}),
        message: `${f.file}:${f.line}:${f.column} [${f.rule}] ${f.message}\n      fix: ${f.fix}`,
      });
    }
  }
  return { discovery, plan, parsed, ...(lint ? { lint } : {}), problems };
}
