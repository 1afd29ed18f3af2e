import type { LintRule, LintSeverity } from './rule.ts';
import { COLUMN_RULES } from './rules-columns.ts';
import { LOCK_TIMEOUT_RULE } from './rules-lock-timeout.ts';
import { LOCKING_RULES } from './rules-locking.ts';
import { REMOVAL_RULES } from './rules-removal.ts';
import { TRANSACTION_CONTROL_RULE } from './rules-transaction-control.ts';
import { TRANSACTION_RULE } from './rules-transaction.ts';

/** The rule reported for a `-- safeshift:allow` that names no rule (a typo would otherwise silence nothing). */
export const UNKNOWN_RULE = {
  name: 'unknown-rule',
  severity: 'error',
  summary: '`-- safeshift:allow` names a rule that does not exist',
} as const satisfies { name: string; severity: LintSeverity; summary: string };

/** Every rule that checks statements, in the order their findings are listed for one statement. */
export const RULES: readonly LintRule[] = [...REMOVAL_RULES, ...COLUMN_RULES, TRANSACTION_CONTROL_RULE, TRANSACTION_RULE, ...LOCKING_RULES, LOCK_TIMEOUT_RULE];

/**
 * The lint rules safeshift knows: their names (what `-- safeshift:allow <rule> <reason>` takes),
 * severities and one-line summaries, for `safeshift lint --json` and documentation.
 *
 * @example
 * ```ts
 * LINT_RULES.filter((r) => r.severity === 'error').map((r) => r.name);
 * ```
 */
export const LINT_RULES: readonly { name: string; severity: LintSeverity; summary: string }[] = [
  ...RULES.map(({ name, severity, summary }) => ({ name, severity, summary })),
  { ...UNKNOWN_RULE },
];
