import type { ResourceStatus } from '../../ports.ts';

/**
 * States in which a DB instance or cluster accepts connections and migrations although RDS is doing
 * some housekeeping: a fresh restore goes `creating` → `backing-up` → `available`, and there is no
 * reason to wait for its first automated backup before rehearsing on it.
 */
const USABLE = new Set([
  'available',
  'backing-up',
  'storage-optimization',
  'configuring-enhanced-monitoring',
  'configuring-log-exports',
  'configuring-iam-database-auth',
  'configuring-activity-stream',
]);

/**
 * States from which a resource will not become available without a person: safeshift stops waiting
 * and reports. `deleting` is here too: something being deleted will never be ready to use.
 */
const STUCK = new Set([
  'failed',
  'error',
  'deleting',
  'deleted',
  'stopped',
  'stopping',
  'restore-error',
  'storage-full',
  'incompatible-network',
  'incompatible-option-group',
  'incompatible-parameters',
  'incompatible-restore',
  'incompatible-credentials',
  'inaccessible-encryption-credentials',
  'inaccessible-encryption-credentials-recoverable',
  'insufficient-capacity',
  'cannot-upgrade',
]);

/**
 * Maps an RDS status string (of a DB instance, Aurora cluster, or either kind of snapshot) to the
 * port's four states. A snapshot is available only when `available`; everything not known to be
 * usable or stuck (`creating`, `modifying`, `renaming`, `rebooting`, `copying`, …) is in transition
 * and reported as `creating`, so a poller keeps waiting.
 *
 * @example
 * ```ts
 * toResourceStatus('backing-up')            // 'available'
 * toResourceStatus('backing-up', 'snapshot') // 'creating'
 * toResourceStatus(undefined)              // 'creating'
 * ```
 */
export function toResourceStatus(status: string | undefined, of: 'database' | 'snapshot' = 'database'): ResourceStatus {
  const s = (status ?? '').toLowerCase();
  if (of === 'snapshot' ? s === 'available' : USABLE.has(s)) return 'available';
  if (STUCK.has(s)) return 'failed';
  return 'creating';
}
