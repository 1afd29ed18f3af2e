import type { SqlClient } from '../ports.ts';
import { SafeshiftError } from './errors.ts';
import { DEFAULT_HISTORY, HistoryTable, type HistoryLocation, type HistoryRow } from './history.ts';
import { compareVersions, parseVersion, type Version } from './version.ts';

/** The database's compatibility record. */
export interface CompatibilityRecord {
  /** The highest applied version, or null for a database without history. */
  readonly schemaVersion: string | null;
  /** The oldest application schema version that can still run here, or null without history. */
  readonly compatibleFrom: string | null;
  /** The contract migration that set `compatibleFrom`, when one did. */
  readonly raisedBy: string | null;
}

/**
 * Derives the compatibility record from the history: an expand migration keeps `compatibleFrom`,
 * a contract migration raises it to its own version (code older than it may use what it removed).
 * Without any contract migration, every version since the first applied one is compatible.
 */
export function compatibilityOf(history: readonly HistoryRow[]): CompatibilityRecord {
  let schema: Version | undefined;
  let lowest: Version | undefined;
  let contract: { version: Version; script: string } | undefined;
  for (const row of history) {
    if (!row.success || row.version === null) continue;
    const v = parseVersion(row.version);
    if (!v) continue;
    if (!schema || compareVersions(v, schema) > 0) schema = v;
    if (!lowest || compareVersions(v, lowest) < 0) lowest = v;
    if (row.phase === 'contract' && (!contract || compareVersions(v, contract.version) > 0)) contract = { version: v, script: row.script };
  }
  return {
    schemaVersion: schema?.text ?? null,
    compatibleFrom: (contract?.version ?? lowest)?.text ?? null,
    raisedBy: contract?.script ?? null,
  };
}

/** The answer to "may an app built for version N run on this database?". */
export interface CompatibilityVerdict extends CompatibilityRecord {
  readonly appVersion: string;
  readonly compatible: boolean;
  /** Why, in a sentence a person can act on. */
  readonly reason: string;
}

/** Decides compatibility of an app version against a compatibility record. */
export function judgeCompatibility(record: CompatibilityRecord, appVersion: Version): CompatibilityVerdict {
  const base = { ...record, appVersion: appVersion.text };
  const schema = record.schemaVersion ? parseVersion(record.schemaVersion) : undefined;
  const from = record.compatibleFrom ? parseVersion(record.compatibleFrom) : undefined;
  if (!schema || !from) {
    return { ...base, compatible: false, reason: 'the database has no safeshift history yet; run `safeshift migrate` (or `baseline`) first' };
  }
  if (compareVersions(appVersion, schema) > 0) {
    return {
      ...base,
      compatible: false,
      reason: `the app needs schema ${appVersion.text} but the database is at ${schema.text}; migrate the database before starting this app`,
    };
  }
  if (compareVersions(appVersion, from) < 0) {
    return {
      ...base,
      compatible: false,
      reason:
        `the contract migration ${record.raisedBy ?? from.text} removed what apps older than ${from.text} use; ` +
        `roll the code back no further than ${from.text}, or restore a snapshot taken before it`,
    };
  }
  return { ...base, compatible: true, reason: `schema ${schema.text} still serves apps built for ${from.text} up to ${schema.text}` };
}

export interface CompatibilityOptions {
  readonly client: SqlClient;
  readonly appVersion: Version;
  readonly history?: HistoryLocation;
}

/**
 * Reads the history and tells whether an app built for `appVersion` may run on this database.
 *
 * @example
 * ```ts
 * const verdict = await checkCompatibility({ client, appVersion: requireVersion('41', 'app version') });
 * if (!verdict.compatible) console.error(verdict.reason);
 * ```
 */
export async function checkCompatibility(options: CompatibilityOptions): Promise<CompatibilityVerdict> {
  const rows = await new HistoryTable(options.client, options.history ?? DEFAULT_HISTORY).read();
  return judgeCompatibility(compatibilityOf(rows), options.appVersion);
}

/**
 * For an app's start-up: throws INCOMPATIBLE when the app must not run on this database.
 *
 * @example
 * ```ts
 * await assertCompatible({ client: pool, appVersion: requireVersion(process.env.SCHEMA_VERSION ?? '', 'SCHEMA_VERSION') });
 * ```
 */
export async function assertCompatible(options: CompatibilityOptions): Promise<CompatibilityVerdict> {
  const verdict = await checkCompatibility(options);
  if (!verdict.compatible) {
    throw new SafeshiftError('INCOMPATIBLE', `app version ${verdict.appVersion} may not run on this database: ${verdict.reason}`, { details: { ...verdict } });
  }
  return verdict;
}
