import { DescribeDBClustersCommand, DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import type pg from 'pg';
import { beforeEach, describe, expect, it } from 'vitest';
import { SecretsConnector, type PgClientLike } from '../src/adapters/aws/secrets-connector.ts';
import { SafeshiftError } from '../src/core/errors.ts';
import { rejection } from './support/aws-errors.ts';

/** What a promise rejected with; fails the test when it resolves. */
const rds = mockClient(RDSClient);
const secrets = mockClient(SecretsManagerClient);
const PASSWORD = 'Tr0ub4dor&3-s3cr3t';
const SECRET = JSON.stringify({
  engine: 'postgres',
  host: 'shop.abc.rds.amazonaws.com',
  port: 5432,
  username: 'safeshift',
  password: PASSWORD,
  dbname: 'shop',
});
const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-db-AbCdEf';

beforeEach(() => {
  rds.reset();
  secrets.reset();
  secrets.on(GetSecretValueCommand).resolves({ SecretString: SECRET });
  rds
    .on(DescribeDBInstancesCommand)
    .resolves({ DBInstances: [{ DBInstanceStatus: 'available', Endpoint: { Address: 'clone.abc.rds.amazonaws.com', Port: 6432 } }] });
});

interface Fake {
  configs: pg.ClientConfig[];
  queries: unknown[][];
  ended: number;
}

/** A driver that records what it was given and fails to connect the way `failures` says, in turn. */
function fakeDriver(failures: (Error | undefined)[] = []): { fake: Fake; factory: (config: pg.ClientConfig) => PgClientLike } {
  const fake: Fake = { configs: [], queries: [], ended: 0 };
  return {
    fake,
    factory: (config) => {
      fake.configs.push(config);
      const failure = failures.shift();
      return {
        connect: () => (failure ? Promise.reject(failure) : Promise.resolve()),
        query: (text, values) => {
          fake.queries.push([text, values]);
          return Promise.resolve({ rows: [{ ok: true }], rowCount: 1 });
        },
        end: () => {
          fake.ended++;
          return Promise.resolve();
        },
        on: () => undefined,
      };
    },
  };
}

const connector = (factory: (config: pg.ClientConfig) => PgClientLike, extra: Partial<ConstructorParameters<typeof SecretsConnector>[0]> = {}) =>
  new SecretsConnector({
    secretArn: ARN,
    rds: new RDSClient({ region: 'eu-west-1' }),
    secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
    clientFactory: factory,
    ...extra,
  });

function pgError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Everything a person or a log could see of an error, its causes included. */
function everythingIn(error: unknown): string {
  const parts: string[] = [];
  for (let e = error as { message?: unknown; cause?: unknown; toJSON?: () => unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    parts.push(String(e.message), String((e as Error).stack), JSON.stringify(typeof e.toJSON === 'function' ? e.toJSON() : e));
  }
  return parts.join('\n');
}

describe('SecretsConnector', () => {
  it("connects to the endpoint of the database asked for with the secret's credentials, over verified TLS", async () => {
    const { fake, factory } = fakeDriver();
    const session = await connector(factory).connect('ss-rc-shop-run1');
    expect(rds.commandCalls(DescribeDBInstancesCommand)[0]?.args[0].input).toEqual({ DBInstanceIdentifier: 'ss-rc-shop-run1' });
    expect(secrets.commandCalls(GetSecretValueCommand)[0]?.args[0].input).toEqual({ SecretId: ARN });
    expect(fake.configs[0]).toMatchObject({
      host: 'clone.abc.rds.amazonaws.com',
      port: 6432,
      user: 'safeshift',
      password: PASSWORD,
      database: 'shop',
      ssl: { rejectUnauthorized: true, servername: 'clone.abc.rds.amazonaws.com' },
    });
    expect(await session.query('select $1::int', [1])).toEqual({ rows: [{ ok: true }], rowCount: 1 });
    expect(fake.queries).toEqual([['select $1::int', [1]]]);
    await session.close();
    expect(fake.ended).toBe(1);
  });

  it('reaches an Aurora cluster at its writer endpoint', async () => {
    rds.on(DescribeDBClustersCommand).resolves({ DBClusters: [{ Status: 'available', Endpoint: 'shop.cluster-abc.rds.amazonaws.com', Port: 5432 }] });
    const { fake, factory } = fakeDriver();
    await connector(factory, { target: 'cluster', databaseName: 'app', ca: 'PEM' }).connect('shop');
    expect(rds.commandCalls(DescribeDBClustersCommand)[0]?.args[0].input).toEqual({ DBClusterIdentifier: 'shop' });
    expect(fake.configs[0]).toMatchObject({ host: 'shop.cluster-abc.rds.amazonaws.com', database: 'app', ssl: { ca: 'PEM', rejectUnauthorized: true } });
  });

  it('caches the credentials in memory between connections', async () => {
    const { factory } = fakeDriver();
    const c = connector(factory);
    await c.connect('a');
    await c.connect('b');
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(rds.commandCalls(DescribeDBInstancesCommand)).toHaveLength(2);
  });

  it('fetches the secret again once when the server rejects a cached password (rotation)', async () => {
    const { fake, factory } = fakeDriver([undefined, pgError('password authentication failed for user "safeshift"', '28P01')]);
    const c = connector(factory);
    await c.connect('a');
    await c.connect('a');
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
    expect(fake.configs).toHaveLength(3);
  });

  it.each([
    ['a rejected password', pgError(`password authentication failed for user "safeshift"`, '28P01')],
    ['a driver message that quotes the password', pgError(`connect failed: ${PASSWORD} rejected`, 'XX000')],
    ['an unknown host', pgError(`getaddrinfo ENOTFOUND clone.abc.rds.amazonaws.com`, 'ENOTFOUND')],
    ['a bad certificate', pgError('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN')],
  ])('never shows the password in the error for %s', async (_what, failure) => {
    const { factory } = fakeDriver([failure, failure]);
    const error = await rejection(connector(factory).connect('a'));
    expect(error).toBeInstanceOf(SafeshiftError);
    expect(error.code).toBe('CONNECTION_FAILED');
    expect((error as Error).message).toMatch(/safeshift@clone\.abc\.rds\.amazonaws\.com:6432\/shop/);
    expect(everythingIn(error)).not.toContain(PASSWORD);
  });

  it('never shows the secret text when it is not the JSON it should be', async () => {
    secrets.on(GetSecretValueCommand).resolves({ SecretString: `{"username":"safeshift","password":"${PASSWORD}"` });
    const error = await rejection(connector(fakeDriver().factory).connect('a'));
    expect(error).toMatchObject({ code: 'CONNECTION_FAILED' });
    expect(everythingIn(error)).not.toContain(PASSWORD);
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ user: 'x', password: PASSWORD }) });
    const missing = await rejection(connector(fakeDriver().factory).connect('a'));
    expect((missing as Error).message).toMatch(/no username field/);
    expect(everythingIn(missing)).not.toContain(PASSWORD);
  });

  it.each([
    ['ResourceNotFoundException', /does not exist/],
    ['AccessDeniedException', /secretsmanager:GetSecretValue/],
    ['DecryptionFailure', /kms:Decrypt/],
  ])('explains %s from Secrets Manager', async (name, said) => {
    secrets.on(GetSecretValueCommand).rejects(Object.assign(new Error('x'), { name, $metadata: {} }));
    const error = await rejection<Error>(connector(fakeDriver().factory).connect('a'));
    expect(error).toMatchObject({ code: 'CONNECTION_FAILED' });
    expect(error.message).toContain(ARN);
    expect(error.message).toMatch(said);
  });

  it('says when the database does not exist or has no endpoint yet', async () => {
    rds.on(DescribeDBInstancesCommand).rejects(Object.assign(new Error('x'), { name: 'DBInstanceNotFoundFault', $metadata: {} }));
    await expect(connector(fakeDriver().factory).connect('gone')).rejects.toMatchObject({ code: 'DATABASE_NOT_FOUND' });
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceStatus: 'creating' }] });
    const error = await rejection<Error>(connector(fakeDriver().factory).connect('new'));
    expect(error).toMatchObject({ code: 'CONNECTION_FAILED' });
    expect(error.message).toMatch(/no endpoint yet \(it is creating\)/);
  });

  it('disconnectAll is a no-op on AWS', async () => {
    await connector(fakeDriver().factory).disconnectAll('shop');
    expect(rds.calls()).toHaveLength(0);
    expect(secrets.calls()).toHaveLength(0);
  });
});
