/**
 * The name an AWS SDK v3 error carries (`error.name`, e.g. `DBSnapshotNotFoundFault`), or undefined
 * for anything that is not an error object. Adapters decide by this name, never by message text:
 * the name is part of the service's API, the message is not.
 *
 * @example
 * ```ts
 * try { await rds.send(cmd); } catch (e) { if (awsErrorName(e) === 'DBInstanceNotFoundFault') return 'missing'; throw e; }
 * ```
 */
export function awsErrorName(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('name' in error)) return undefined;
  const name = error.name;
  return typeof name === 'string' ? name : undefined;
}

/**
 * True when the error's name is one of `names`. Pass both the SDK's exception name and the wire code
 * where they differ (`InsufficientDBInstanceCapacityFault` / `InsufficientDBInstanceCapacity`): the
 * SDK names a modelled error after its class, but an error it does not know keeps the wire code.
 *
 * @example
 * ```ts
 * if (isAwsError(e, 'ConditionalCheckFailedException')) return readHolder();
 * ```
 */
export function isAwsError(error: unknown, ...names: readonly string[]): boolean {
  const name = awsErrorName(error);
  return name !== undefined && names.includes(name);
}
