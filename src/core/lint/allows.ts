import type { MigrationFile } from '../discover.ts';
import type { SqlText } from '../sql-text.ts';
import { LINT_RULES, RULES, UNKNOWN_RULE } from './catalog.ts';
import type { LintFinding } from './types.ts';

const KNOWN = new Set(LINT_RULES.map((r) => r.name));
/** Rules whose findings stand whatever an allow says (their files are refused by preflight anyway). */
const BINDING = new Set(RULES.filter((r) => r.acknowledgeable === false).map((r) => r.name));

/**
 * Applies a migration's `-- safeshift:allow <rule> <reason>` directives to its findings. One in the
 * file's leading comments covers every finding of that rule in the file; one anywhere else covers the
 * first statement that ends after it (the next statement, or the one it sits inside). Acknowledged
 * findings stay in the list, marked `allowed`, so a reviewer still sees them. An allow naming no rule
 * becomes an `unknown-rule` finding: a typo must not silently acknowledge nothing. Findings of a rule
 * that is not `acknowledgeable` (transaction-control) are never marked allowed.
 *
 * @example
 * ```ts
 * const all = acknowledge(findings, file, source, statementEndLines);
 * all.filter((f) => !f.allowed && f.severity === 'error').length; // what fails the lint
 * ```
 */
export function acknowledge(findings: readonly LintFinding[], file: MigrationFile, source: SqlText, statementEndLines: readonly number[]): LintFinding[] {
  const fileWide = new Map<string, string>();
  const perStatement = new Map<string, string>();
  const unknown: LintFinding[] = [];
  for (const allow of file.directives.allows) {
    const covered = allow.fileWide ? -1 : statementEndLines.findIndex((end) => end > allow.line);
    if (!KNOWN.has(allow.rule)) {
      unknown.push(unknownRule(allow.rule, allow.line, covered, file, source));
      continue;
    }
    // The first directive's reason wins when two cover the same finding.
    if (allow.fileWide) {
      if (!fileWide.has(allow.rule)) fileWide.set(allow.rule, allow.reason);
    } else if (covered >= 0 && !perStatement.has(`${covered}:${allow.rule}`)) {
      perStatement.set(`${covered}:${allow.rule}`, allow.reason);
    }
  }
  const out = findings.map((finding) => {
    if (BINDING.has(finding.rule)) return finding;
    const reason = fileWide.get(finding.rule) ?? perStatement.get(`${finding.statementIndex}:${finding.rule}`);
    return reason === undefined ? finding : { ...finding, allowed: { reason } };
  });
  return [...out, ...unknown];
}

function unknownRule(rule: string, line: number, statementIndex: number, file: MigrationFile, source: SqlText): LintFinding {
  const text = source.line(line);
  const at = text.indexOf(rule, text.indexOf('safeshift:allow'));
  const guess = closest(rule);
  return {
    rule: UNKNOWN_RULE.name,
    severity: UNKNOWN_RULE.severity,
    file: file.script,
    ...(file.version ? { version: file.version.text } : {}),
    line,
    column: at < 0 ? 1 : at + 1,
    statementIndex,
    message: `\`-- safeshift:allow ${rule}\` names no lint rule, so it acknowledges nothing${guess ? ` (did you mean ${guess}?)` : ''}`,
    fix: `name one of the rules: ${LINT_RULES.filter((r) => r.name !== UNKNOWN_RULE.name)
      .map((r) => r.name)
      .join(', ')}`,
    sql: text.trim(),
  };
}

/** The known rule nearest to a misspelt one, if any is near enough to be a likely typo. */
function closest(rule: string): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const { name } of LINT_RULES) {
    const distance = editDistance(rule, name);
    if (distance <= 3 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
