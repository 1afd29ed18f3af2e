import { transactionControl } from '../transaction-control.ts';
import type { LintRule } from './rule.ts';

/**
 * `transaction-control`: BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION and the other
 * transaction-control statements, in any SQL migration (see {@link transactionControl} for why
 * no-transaction migrations are included). safeshift owns the transaction, so preflight refuses such a
 * file with TRANSACTION_CONTROL whatever `-- safeshift:allow` says; lint reports it the same way, and
 * an allow does not acknowledge it, so a green lint never hides a file that migrate will refuse.
 *
 * @example
 * ```ts
 * TRANSACTION_CONTROL_RULE.name; // 'transaction-control'
 * ```
 */
export const TRANSACTION_CONTROL_RULE: LintRule = {
  name: 'transaction-control',
  severity: 'error',
  summary: 'BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION … in a migration: safeshift owns the transaction (cannot be allowed)',
  expandOnly: false,
  acknowledgeable: false,
  check(ctx) {
    const control = transactionControl(ctx.statement, ctx.file.directives.transaction);
    if (!control) return [];
    return [{ message: control.message, fix: `${control.fix} (\`-- safeshift:allow\` cannot acknowledge this: migrate refuses the file)` }];
  },
};
