import { connectPg } from '../../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../../src/core/identifiers.ts';

export interface DropShopOptions {
  /** A superuser URL on the maintenance database, as given to `seedShop`. */
  readonly serverUrl: string;
  readonly database: string;
  /** The app role `seedShop` created; dropped after the database. */
  readonly appRole: string;
}

/**
 * Undoes `seedShop`: drops the shop's database (ending its sessions) and then the app role. The order
 * matters: the role's privileges live in that database, and a role with privileges cannot be dropped.
 * Safe to call twice, or after a seed that failed half-way.
 *
 * @example
 * ```ts
 * await dropShop({ serverUrl, database: 'shop', appRole: 'shop_app' });
 * ```
 */
export async function dropShop(opts: DropShopOptions): Promise<void> {
  const admin = await connectPg(opts.serverUrl, { applicationName: 'shop seed' });
  try {
    await admin.query(`drop database if exists ${escapeIdentifier(opts.database)} with (force)`);
    await admin.query(`drop role if exists ${escapeIdentifier(opts.appRole)}`);
  } finally {
    await admin.end().catch(() => undefined);
  }
}
