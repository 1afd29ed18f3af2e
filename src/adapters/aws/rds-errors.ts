import { SafeshiftError, type ErrorCode } from '../../core/errors.ts';
import { awsErrorName } from './aws-errors.ts';

interface Translation {
  readonly code: ErrorCode;
  readonly advice: (what: string) => string;
}

const quotaAdvice = (quota: string) => (what: string) =>
  `${what}: the account's "${quota}" quota is used up in this region. Delete what is no longer needed ` +
  `or ask AWS for a higher quota (Service Quotas, Amazon RDS), then run again; nothing was created.`;

const capacity: Translation = {
  code: 'INSUFFICIENT_CAPACITY',
  advice: (what) =>
    `${what}: AWS has no capacity for this instance class in the availability zone right now. ` +
    `Run again later, or give the subnet group more availability zones; nothing was created.`,
};

const kms: Translation = {
  code: 'KMS_KEY_NOT_ACCESSIBLE',
  advice: (what) =>
    `${what}: the KMS key that encrypts the database cannot be used. It is disabled or pending deletion, ` +
    `or safeshift's role lacks kms:CreateGrant and kms:DescribeKey on it. Enable the key or grant the role access, then run again.`,
};

const invalidState: Translation = {
  code: 'INVALID_STATE',
  advice: (what) =>
    `${what}: it is busy (being created, backed up, modified, renamed or deleted) and RDS refused the request. Wait until it is "available" and run again.`,
};

/**
 * RDS error names (the SDK's exception name and the wire code, where they differ) and what an
 * operator can do about each. Not-found errors are not here: what "not found" means depends on the
 * call (missing is success on delete, a refusal on snapshot), so each call site decides.
 */
const TRANSLATIONS: Readonly<Record<string, Translation>> = {
  SnapshotQuotaExceededFault: { code: 'SNAPSHOT_QUOTA_EXCEEDED', advice: quotaAdvice('Manual DB snapshots') },
  SnapshotQuotaExceeded: { code: 'SNAPSHOT_QUOTA_EXCEEDED', advice: quotaAdvice('Manual DB snapshots') },
  KMSKeyNotAccessibleFault: kms,
  InsufficientDBInstanceCapacityFault: capacity,
  InsufficientDBInstanceCapacity: capacity,
  InsufficientDBClusterCapacityFault: capacity,
  InsufficientStorageClusterCapacityFault: capacity,
  InsufficientStorageClusterCapacity: capacity,
  InstanceQuotaExceededFault: { code: 'INSUFFICIENT_CAPACITY', advice: quotaAdvice('DB instances') },
  InstanceQuotaExceeded: { code: 'INSUFFICIENT_CAPACITY', advice: quotaAdvice('DB instances') },
  DBClusterQuotaExceededFault: { code: 'INSUFFICIENT_CAPACITY', advice: quotaAdvice('DB clusters') },
  StorageQuotaExceededFault: { code: 'INSUFFICIENT_CAPACITY', advice: quotaAdvice('Total storage for all DB instances') },
  StorageQuotaExceeded: { code: 'INSUFFICIENT_CAPACITY', advice: quotaAdvice('Total storage for all DB instances') },
  InvalidDBInstanceStateFault: invalidState,
  InvalidDBInstanceState: invalidState,
  InvalidDBSnapshotStateFault: invalidState,
  InvalidDBSnapshotState: invalidState,
  InvalidDBClusterStateFault: invalidState,
  InvalidDBClusterSnapshotStateFault: invalidState,
};

/**
 * Turns a known RDS error into a SafeshiftError with a stable code and a message that says what to
 * do; anything else comes back unchanged (its AWS name intact, so a state machine can still match
 * it). `what` names the operation and resource, e.g. `creating snapshot ss-pre-shop-1a2b`.
 *
 * @example
 * ```ts
 * try { await rds.send(new CreateDBSnapshotCommand(input)); }
 * catch (e) { throw translateRdsError(e, `creating snapshot ${id}`); }
 * ```
 */
export function translateRdsError(error: unknown, what: string): unknown {
  const name = awsErrorName(error);
  const translation = name === undefined ? undefined : TRANSLATIONS[name];
  if (!translation) return error;
  return new SafeshiftError(translation.code, translation.advice(what), { cause: error, details: { awsError: name } });
}
