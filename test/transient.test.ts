import { describe, expect, it } from 'vitest';
import { ConnectionError, LockedError, MigrationError, OptionError, SafeshiftError, ValidationError } from '../src/core/errors.ts';
import { isTransient } from '../src/core/transient.ts';
import { toStepError } from '../src/steps/step-error.ts';
import { awsError } from './support/aws-errors.ts';

/** What node-postgres raises for an error the server sent: a DatabaseError carrying the SQLSTATE as `code`. */
const pgError = (code: string, message = `server error ${code}`) => Object.assign(new Error(message), { code, severity: 'FATAL' });
/** What node raises for a socket or resolver failure. */
const errno = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, syscall: 'connect' });
/** `error` wrapped `levels` times in plain Errors, as layers of adapters wrap what they catch. */
const wrapped = (error: unknown, levels: number): unknown =>
  Array.from({ length: levels }).reduce<unknown>((inner, _, i) => new Error(`layer ${i}`, { cause: inner }), error);
const migrationError = (outcome: 'rolled-back' | 'needs-operator', cause: unknown, code: 'MIGRATION_FAILED' | 'LOCK_TIMEOUT' = 'MIGRATION_FAILED') =>
  new MigrationError(code, 'V4__x.sql failed', { file: 'V4__x.sql', outcome, cause });
/** An error whose causes go round in a circle. */
function cycle(bottom: object = new Error('no code anywhere')): Error {
  const a = new Error('a');
  const b = new Error('b', { cause: a });
  Object.assign(bottom, { cause: b });
  Object.assign(a, { cause: bottom });
  return a;
}

const TRANSIENT: readonly (readonly [string, unknown])[] = [
  ['ECONNRESET', errno('ECONNRESET')],
  ['ECONNREFUSED', errno('ECONNREFUSED')],
  ['ETIMEDOUT', errno('ETIMEDOUT')],
  ['EPIPE', errno('EPIPE')],
  ['EAI_AGAIN', errno('EAI_AGAIN')],
  ['ENOTFOUND (a renamed RDS endpoint, for a while)', errno('ENOTFOUND')],
  ['an AggregateError of refused addresses (happy eyeballs)', new AggregateError([errno('ECONNREFUSED'), errno('ECONNREFUSED')], 'connect failed')],
  ['SQLSTATE 57P01 admin_shutdown', pgError('57P01')],
  ['SQLSTATE 57P02 crash_shutdown', pgError('57P02')],
  ['SQLSTATE 57P03 cannot_connect_now', pgError('57P03')],
  ['SQLSTATE 08006 connection_failure', pgError('08006')],
  ['SQLSTATE 08001 (any of class 08)', pgError('08001')],
  ['SQLSTATE 40001 serialization_failure', pgError('40001')],
  ['SQLSTATE 40P01 deadlock_detected', pgError('40P01')],
  ['SQLSTATE 55P03 lock_not_available', pgError('55P03')],
  ['SQLSTATE 53300 too_many_connections', pgError('53300')],
  ['node-postgres: connection terminated unexpectedly', new Error('Connection terminated unexpectedly')],
  ['node-postgres: a query on a client whose connection failed', new Error('Client has encountered a connection error and is not queryable')],
  ['a ConnectionError around ECONNRESET', new ConnectionError('could not connect to shop', errno('ECONNRESET'))],
  ['a ConnectionError around 57P01', new ConnectionError('lost the connection to shop', pgError('57P01'))],
  [
    'a ConnectionError whose cause was dropped but whose errno was kept',
    Object.assign(new ConnectionError('could not connect'), { details: { errno: 'ECONNREFUSED' } }),
  ],
  [
    'QUIESCE_FAILED around an Error around a ConnectionError around 57P01',
    new SafeshiftError('QUIESCE_FAILED', 'could not lock the role out', {
      cause: new Error('admin', { cause: new ConnectionError('lost', pgError('57P01')) }),
    }),
  ],
  ['ECONNRESET five plain layers down', wrapped(errno('ECONNRESET'), 5)],
  ['a SafeshiftError around ECONNRESET ten layers down', new SafeshiftError('INTERNAL', 'step failed', { cause: wrapped(errno('ECONNRESET'), 10) })],
  ['fetch failed (undici) around ECONNREFUSED', new TypeError('fetch failed', { cause: errno('ECONNREFUSED') })],
  ['a transactional migration killed by a restart (rolled back by the server)', migrationError('rolled-back', pgError('57P01'))],
  ['a transactional migration whose connection dropped', migrationError('rolled-back', new Error('Connection terminated unexpectedly'))],
  ['AWS ThrottlingException', awsError('ThrottlingException')],
  ['AWS Throttling', awsError('Throttling')],
  ['AWS TooManyRequestsException', awsError('TooManyRequestsException', 429)],
  ['AWS RequestLimitExceeded', awsError('RequestLimitExceeded')],
  ['AWS ProvisionedThroughputExceededException', awsError('ProvisionedThroughputExceededException')],
  ['AWS RequestThrottledException', awsError('RequestThrottledException')],
  ['AWS SlowDown', awsError('SlowDown', 503)],
  ['AWS $retryable {}', Object.assign(awsError('InternalServerError', 400), { $retryable: {} })],
  ['AWS $retryable { throttling: true }', Object.assign(awsError('SomeModelledError'), { $retryable: { throttling: true } })],
  ['AWS HTTP 429 under any name', awsError('UnknownError', 429)],
  ['AWS HTTP 503', awsError('ServiceUnavailable', 503)],
  ['AWS HTTP 500', awsError('InternalFailure', 500)],
  ['AWS request timeout', awsError('RequestTimeoutException')],
  [
    'a quiescer failure around a throttled AWS call',
    new SafeshiftError('QUIESCE_FAILED', 'reading concurrency failed', { cause: awsError('TooManyRequestsException', 429) }),
  ],
  ['a cycle with a dropped connection in it', cycle(errno('ECONNRESET'))],
];

const FINAL: readonly (readonly [string, unknown])[] = [
  ['undefined', undefined],
  ['null', null],
  ['a string naming an errno', 'ECONNRESET'],
  ['a plain Error', new Error('boom')],
  ['an Error whose text names an errno but has no code (text is never read)', new Error('read ECONNRESET')],
  ['node-postgres ending its own connection', new Error('Connection terminated')],
  ["an Error subclass with node-postgres's wording", new TypeError('Connection terminated unexpectedly')],
  ['SQLSTATE 42P01 undefined_table', pgError('42P01')],
  ['SQLSTATE 57014 query_canceled (our own timeout)', pgError('57014')],
  ['a ConnectionError around 28P01 (wrong password)', new ConnectionError('password authentication failed', pgError('28P01'))],
  ['a ConnectionError around 3D000 (no such database)', new ConnectionError('database does not exist', pgError('3D000'))],
  ['a ConnectionError kept 28P01 in details', Object.assign(new ConnectionError('rejected'), { details: { sqlState: '28P01' } })],
  ['a ConnectionError with no cause (a bad URL)', new ConnectionError('not a valid PostgreSQL URL')],
  ['BAD_OPTION, even around ECONNRESET', Object.assign(new OptionError('bad'), { cause: errno('ECONNRESET') })],
  ['CHECKSUM_MISMATCH around ECONNRESET', new SafeshiftError('CHECKSUM_MISMATCH', 'changed', { cause: errno('ECONNRESET') })],
  ['LINT_VIOLATION', new SafeshiftError('LINT_VIOLATION', 'drops a column')],
  [
    'VALIDATION_FAILED',
    new ValidationError([
      { code: 'MISSING_MIGRATION', message: 'x' },
      { code: 'OUT_OF_ORDER', message: 'y' },
    ]),
  ],
  ['LOCKED', new LockedError('locked by run other')],
  ['SWAP_IN_PROGRESS (retried by its own name)', new SafeshiftError('SWAP_IN_PROGRESS', 'swap in progress', { outcome: 'needs-operator' })],
  ['a half-run no-transaction migration around 57P01 (needs-operator)', migrationError('needs-operator', pgError('57P01'))],
  ['a migration failing on its own SQL', migrationError('rolled-back', pgError('42703'))],
  ['LOCK_TIMEOUT around 55P03 (the engine already retried the lock)', migrationError('rolled-back', pgError('55P03'), 'LOCK_TIMEOUT')],
  ['INTERNAL with no cause', new SafeshiftError('INTERNAL', 'the fleet is closed')],
  ['AWS AccessDeniedException', awsError('AccessDeniedException', 403)],
  ['AWS HTTP 501', awsError('NotImplemented', 501)],
  ['an AbortError around ECONNRESET (the abort was asked for)', Object.assign(new Error('aborted', { cause: errno('ECONNRESET') }), { name: 'AbortError' })],
  ['an AggregateError with a wrong password in it', new AggregateError([errno('ECONNREFUSED'), pgError('28P01')], 'both failed')],
  ['ECONNRESET beyond the depth bound', wrapped(errno('ECONNRESET'), 40)],
  ['a cycle with no code anywhere', cycle()],
];

describe('isTransient', () => {
  it.each(TRANSIENT)('transient: %s', (_label, error) => {
    expect(isTransient(error)).toBe(true);
  });

  it.each(FINAL)('final: %s', (_label, error) => {
    expect(isTransient(error)).toBe(false);
  });
});

describe('toStepError', () => {
  it('names a SafeshiftError around a dropped connection Transient and keeps its own code in the document', () => {
    const error = toStepError(new ConnectionError('lost the connection to shop', errno('ECONNRESET')));
    expect(error.name).toBe('Transient');
    expect(JSON.parse(error.message)).toMatchObject({ code: 'CONNECTION_FAILED', transient: true });
  });

  it('names a migration killed by a server restart Transient, and a half-run one by its code', () => {
    expect(toStepError(migrationError('rolled-back', pgError('57P01'))).name).toBe('Transient');
    expect(toStepError(migrationError('needs-operator', pgError('57P01'))).name).toBe('MIGRATION_FAILED');
  });

  it('names a final error by its code', () => {
    const error = toStepError(new ConnectionError('password authentication failed', pgError('28P01')));
    expect(error.name).toBe('CONNECTION_FAILED');
    expect(JSON.parse(error.message)).not.toHaveProperty('transient');
  });
});
