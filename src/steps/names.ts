/**
 * Names of what a run creates, derived from the run id so a retried step finds what the first attempt
 * made. They are valid as PostgreSQL database names (≤ 63 bytes) and as RDS identifiers (a letter
 * first, letters, digits and single hyphens).
 */
/**
 * `new`: a clone migrated for a swap; `restored`: a database made from a snapshot to replace production;
 * `retired`: the production a forward swap replaced; `failed`: the production a rollback replaced.
 */
export type ResourceRole = 'rehearsal-snapshot' | 'rehearsal-clone' | 'pre-upgrade' | 'safety' | 'new' | 'retired' | 'restored' | 'failed';

const PREFIX: Record<ResourceRole, string> = {
  'rehearsal-snapshot': 'rs',
  'rehearsal-clone': 'rc',
  'pre-upgrade': 'pre',
  safety: 'safe',
  new: 'new',
  retired: 'old',
  restored: 'rst',
  failed: 'bad',
};

/**
 * @example
 * ```ts
 * resourceName('pre-upgrade', 'shop', '6f1c…') // 'ss-pre-shop-6f1c2a9b04d1'
 * ```
 */
export function resourceName(role: ResourceRole, database: string, runId: string): string {
  const slug =
    database
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 24) || 'db';
  const short = runId
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(0, 12);
  return `ss-${PREFIX[role]}-${slug}-${short}`.replace(/-+/g, '-').replace(/-$/, '');
}
