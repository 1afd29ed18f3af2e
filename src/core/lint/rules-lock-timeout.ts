import { blockingLocks, strongerLock, type TableLock } from './locks.ts';
import { relationName } from './nodes.ts';
import { allowHint, type LintRule } from './rule.ts';

/**
 * `missing-lock-timeout`: a statement that takes a write-blocking lock on an existing table while no
 * lock timeout is in force. The danger is the lock queue: if any transaction holds the table, the
 * statement waits, and every later query on the table queues behind it, so a one-millisecond ALTER
 * can stall the application for as long as the longest transaction runs. With a timeout the statement
 * gives up instead and the run can be retried. safeshift sets one per migration (5s unless told
 * otherwise), so this only fires where it was turned off.
 *
 * @example
 * ```ts
 * LOCK_TIMEOUT_RULE.severity; // 'warning'
 * ```
 */
export const LOCK_TIMEOUT_RULE: LintRule = {
  name: 'missing-lock-timeout',
  severity: 'warning',
  summary: 'a statement that blocks writes to an existing table runs with no lock timeout',
  expandOnly: false,
  check(ctx) {
    if (ctx.lockTimeout.ms !== 0) return [];
    let worst: TableLock | undefined;
    for (const lock of blockingLocks(ctx)) {
      if (!ctx.isNew(lock.relation)) worst = strongerLock(worst, lock);
    }
    if (!worst) return [];
    const table = relationName(worst.relation);
    return [
      {
        offset: worst.offset,
        message:
          `this statement takes ${/^[AE]/.test(worst.mode) ? 'an' : 'a'} ${worst.mode} lock on ${table} with no lock timeout (${ctx.lockTimeout.source}): ` +
          `if another transaction holds ${table}, it waits, and every query on ${table} queues behind it until that transaction ends`,
        fix:
          `${ctx.lockTimeout.remedy}, so the statement gives up and can be retried ` +
          `instead of stalling the application; or ${allowHint('missing-lock-timeout')}`,
      },
    ];
  },
};
