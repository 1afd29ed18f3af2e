import { SafeshiftError } from '../src/core/errors.ts';
import { DEFAULT_HISTORY, type HistoryLocation } from '../src/core/history.ts';

/**
 * The environment variables a step Lambda is configured with. The SafeUpgrade construct sets them
 * and the handlers read them, so both import the names from here. None of them holds a secret: the
 * database credentials are fetched at run time from the secret whose ARN is given.
 */
export const StepEnvironment = {
  /** The ledger's DynamoDB table. */
  ledgerTable: 'SAFESHIFT_LEDGER_TABLE',
  /** ARN of the Secrets Manager secret with the database's username and password. */
  secretArn: 'SAFESHIFT_DB_SECRET_ARN',
  /** `instance` (RDS DB instance) or `cluster` (Aurora DB cluster). */
  databaseKind: 'SAFESHIFT_DB_KIND',
  /** The production database's identifier: the only one this deployment may upgrade. */
  databaseId: 'SAFESHIFT_DB_ID',
  /** The PostgreSQL database to open; empty means the secret's `dbname`, else `postgres`. */
  databaseName: 'SAFESHIFT_DB_NAME',
  historySchema: 'SAFESHIFT_HISTORY_SCHEMA',
  historyTable: 'SAFESHIFT_HISTORY_TABLE',
  /** JSON array of the quiescer specs this deployment may stop and resume (`lambda:NAME`). */
  quiesce: 'SAFESHIFT_QUIESCE',
  /** Checksum of the migrations and verify checks bundled with the function (see sfn-migrations-checksum.ts). */
  migrationsChecksum: 'SAFESHIFT_MIGRATIONS_CHECKSUM',
} as const;

/** Folders next to the handler in a step's bundle. */
export const BundleFolders = {
  migrations: 'migrations',
  verify: 'verify',
  /**
   * Inside the migrations folder: each `.ts` migration compiled to ESM at bundle time. Discovery
   * skips dot-folders, so the compiled copies are never mistaken for migrations of their own.
   */
  compiled: '.compiled',
} as const;

/** What a step Lambda knows about its deployment, read once per cold start. */
export interface StepSettings {
  readonly ledgerTable: string;
  readonly secretArn: string;
  readonly databaseKind: 'instance' | 'cluster';
  readonly databaseId: string;
  readonly databaseName?: string;
  readonly history: HistoryLocation;
  readonly quiesce: readonly string[];
  readonly migrationsChecksum?: string;
}

/**
 * Reads and checks the step settings. A missing or malformed variable is a deployment mistake,
 * reported with the variable's name so it can be fixed where it was made.
 *
 * @example
 * ```ts
 * const settings = readStepSettings(process.env);
 * settings.databaseKind; // 'instance'
 * ```
 */
export function readStepSettings(env: NodeJS.ProcessEnv): StepSettings {
  const required = (name: string): string => {
    const value = env[name];
    if (!value) throw misconfigured(`${name} is not set`);
    return value;
  };
  /** Unset and empty alike mean the default. */
  const optional = (name: string): string | undefined => {
    const value = env[name];
    return value === '' ? undefined : value;
  };
  const kind = required(StepEnvironment.databaseKind);
  if (kind !== 'instance' && kind !== 'cluster') throw misconfigured(`${StepEnvironment.databaseKind} is "${kind}"; expected instance or cluster`);
  let quiesce: unknown = [];
  const quiesceText = env[StepEnvironment.quiesce];
  if (quiesceText) {
    try {
      quiesce = JSON.parse(quiesceText);
    } catch {
      throw misconfigured(`${StepEnvironment.quiesce} is not JSON; expected an array of quiescer specs`);
    }
  }
  if (!isStringArray(quiesce)) {
    throw misconfigured(`${StepEnvironment.quiesce} must be a JSON array of strings such as ["lambda:orders-api"]`);
  }
  const databaseName = env[StepEnvironment.databaseName];
  const checksum = env[StepEnvironment.migrationsChecksum];
  return {
    ledgerTable: required(StepEnvironment.ledgerTable),
    secretArn: required(StepEnvironment.secretArn),
    databaseKind: kind,
    databaseId: required(StepEnvironment.databaseId),
    ...(databaseName ? { databaseName } : {}),
    history: {
      schema: optional(StepEnvironment.historySchema) ?? DEFAULT_HISTORY.schema,
      table: optional(StepEnvironment.historyTable) ?? DEFAULT_HISTORY.table,
    },
    quiesce,
    ...(checksum ? { migrationsChecksum: checksum } : {}),
  };
}

const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((s) => typeof s === 'string');

function misconfigured(what: string): SafeshiftError {
  return new SafeshiftError('BAD_OPTION', `this safeshift step is misconfigured: ${what}. Redeploy the SafeUpgrade construct, which sets it.`);
}
