import { DescribeDBClustersCommand, DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { ConnectionError, SafeshiftError, SqlStates, sqlState } from '../../core/errors.ts';
import { endRunSessions, runSessionName } from '../../core/end-sessions.ts';
import type { ConnectOptions, Connector, QueryResult, SqlSession } from '../../ports.ts';
import { countCompletedStatements } from '../pg-statement-count.ts';
import { awsErrorName, isAwsError } from './aws-errors.ts';

/** The slice of `pg.Client` the connector uses; a test may hand in its own. */
export interface PgClientLike {
  connect(): Promise<unknown>;
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

export interface SecretsConnectorOptions {
  /** ARN (or name) of the secret holding the credentials: the RDS secret JSON (username, password, and optionally dbname). */
  readonly secretArn: string;
  /** Whether database ids name DB instances (RDS) or Aurora DB clusters (the writer endpoint is used). @default 'instance' */
  readonly target?: 'instance' | 'cluster';
  /** The PostgreSQL database to open. @default the secret's `dbname`, else `postgres` */
  readonly databaseName?: string;
  /**
   * Certificates to trust for TLS, e.g. the RDS CA bundle (global-bundle.pem). The server's certificate
   * is always verified; without `ca` Node's trust store is used (set NODE_EXTRA_CA_CERTS to the bundle).
   */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** How long fetched credentials are reused before Secrets Manager is asked again (rotation). @default 300000 */
  readonly cacheTtlMs?: number;
  /** @default 10000 */
  readonly connectTimeoutMs?: number;
  /** Shown in pg_stat_activity. @default 'safeshift' */
  readonly applicationName?: string;
  readonly rds?: RDSClient;
  readonly secrets?: SecretsManagerClient;
  /** Makes the driver client. @default `new pg.Client(config)` */
  readonly clientFactory?: (config: pg.ClientConfig) => PgClientLike;
  readonly now?: () => number;
}

interface Credentials {
  readonly username: string;
  readonly password: string;
  readonly dbname?: string;
}

/**
 * Opens sessions to the databases of an AWS fleet: credentials from Secrets Manager (never from the
 * state machine's input), the endpoint of the identifier asked for from RDS, so a clone is reached at
 * its own endpoint with production's credentials (a restore keeps the users and passwords). Always
 * TLS, with the server certificate verified. The password is never part of a message or log line.
 *
 * Credentials are cached in memory for `cacheTtlMs` (a warm Lambda does not call Secrets Manager
 * per step); a password rejected by the server drops the cache and is fetched once more, in case the
 * secret was just rotated.
 *
 * IAM: secretsmanager:GetSecretValue on the secret (and kms:Decrypt when it uses its own key);
 * rds:DescribeDBInstances (target `instance`) or rds:DescribeDBClusters (target `cluster`).
 *
 * @example
 * ```ts
 * const connector = new SecretsConnector({ secretArn: process.env.DB_SECRET_ARN!, target: 'cluster' });
 * const session = await connector.connect('ss-rc-shop-1a2b');
 * try { await session.query('select 1'); } finally { await session.close(); }
 * ```
 */
export class SecretsConnector implements Connector {
  private readonly opts: SecretsConnectorOptions;
  private readonly rds: RDSClient;
  private readonly secrets: SecretsManagerClient;
  private readonly now: () => number;
  private cached: { readonly credentials: Credentials; readonly fetchedAt: number } | undefined;

  constructor(opts: SecretsConnectorOptions) {
    this.opts = opts;
    this.rds = opts.rds ?? new RDSClient({});
    this.secrets = opts.secrets ?? new SecretsManagerClient({});
    this.now = opts.now ?? Date.now;
  }

  async connect(databaseId: string, options: ConnectOptions = {}): Promise<SqlSession> {
    const endpoint = await this.endpoint(databaseId);
    const wasCached = this.cached !== undefined && this.now() - this.cached.fetchedAt < (this.opts.cacheTtlMs ?? 300_000);
    const applicationName = options.runId ? runSessionName(options.runId) : (this.opts.applicationName ?? 'safeshift');
    try {
      return await this.open(await this.credentials(), endpoint, databaseId, applicationName);
    } catch (error) {
      if (!(wasCached && error instanceof ConnectionError && error.details.sqlState === SqlStates.invalidPassword)) throw error;
      this.cached = undefined;
      return this.open(await this.credentials(), endpoint, databaseId, applicationName);
    }
  }

  /**
   * Ends the run's sessions on the database's instance or cluster (a timed-out or killed Lambda's SQL
   * may still run there), as the same database user, which PostgreSQL allows without superuser.
   */
  async endRunSessions(databaseId: string, runId: string): Promise<number> {
    const session = await this.connect(databaseId);
    try {
      return await endRunSessions(session, runId);
    } finally {
      await session.close();
    }
  }

  /**
   * A no-op on AWS. Locally a snapshot or swap needs the database to itself; here an RDS snapshot
   * is taken from storage while the database runs, a rename restarts the instance (ending every
   * session anyway), and the APIs were quiesced before either.
   */
  async disconnectAll(_databaseId: string): Promise<void> {
    // Nothing to end: see above.
  }

  private async credentials(): Promise<Credentials> {
    const ttl = this.opts.cacheTtlMs ?? 300_000;
    if (this.cached && this.now() - this.cached.fetchedAt < ttl) return this.cached.credentials;
    const arn = this.opts.secretArn;
    let text: string | undefined;
    try {
      text = (await this.secrets.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString;
    } catch (error) {
      const name = awsErrorName(error);
      const why =
        name === 'ResourceNotFoundException'
          ? 'it does not exist in this account and region'
          : name === 'AccessDeniedException'
            ? "safeshift's role may not read it (secretsmanager:GetSecretValue)"
            : name === 'DecryptionFailure'
              ? "its KMS key cannot be used by safeshift's role (kms:Decrypt)"
              : (name ?? 'error');
      throw new ConnectionError(`could not read the database secret ${arn}: ${why}`, error);
    }
    // Never echo the secret text: a JSON.parse message quotes the input it choked on.
    let parsed: object | undefined;
    try {
      const value: unknown = text === undefined ? undefined : JSON.parse(text);
      if (value && typeof value === 'object') parsed = value;
    } catch {
      /* reported below, without the text */
    }
    if (!parsed) {
      throw new ConnectionError(`the database secret ${arn} is not a JSON object; expected the RDS secret format {"username": …, "password": …}`);
    }
    const username = 'username' in parsed ? parsed.username : undefined;
    const password = 'password' in parsed ? parsed.password : undefined;
    const dbname = 'dbname' in parsed ? parsed.dbname : undefined;
    if (typeof username !== 'string' || typeof password !== 'string') {
      const missing = [typeof username === 'string' ? undefined : 'username', typeof password === 'string' ? undefined : 'password'].filter(Boolean);
      throw new ConnectionError(`the database secret ${arn} has no ${missing.join(' or ')} field; expected the RDS secret format`);
    }
    const credentials: Credentials = { username, password, ...(typeof dbname === 'string' ? { dbname } : {}) };
    this.cached = { credentials, fetchedAt: this.now() };
    return credentials;
  }

  private async endpoint(databaseId: string): Promise<{ host: string; port: number }> {
    const cluster = this.opts.target === 'cluster';
    let address: string | undefined;
    let port: number | undefined;
    let status: string | undefined;
    try {
      if (cluster) {
        const found = (await this.rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: databaseId }))).DBClusters?.[0];
        [address, port, status] = [found?.Endpoint, found?.Port, found?.Status];
      } else {
        const found = (await this.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: databaseId }))).DBInstances?.[0];
        [address, port, status] = [found?.Endpoint?.Address, found?.Endpoint?.Port, found?.DBInstanceStatus];
      }
    } catch (error) {
      if (isAwsError(error, 'DBInstanceNotFoundFault', 'DBInstanceNotFound', 'DBClusterNotFoundFault')) {
        throw new SafeshiftError('DATABASE_NOT_FOUND', `DB ${cluster ? 'cluster' : 'instance'} ${databaseId} does not exist in this account and region`, {
          cause: error,
        });
      }
      throw error;
    }
    if (!address)
      throw new ConnectionError(
        `DB ${cluster ? 'cluster' : 'instance'} ${databaseId} has no endpoint yet (it is ${status ?? 'unknown'}); wait until it is available`,
      );
    return { host: address, port: port ?? 5432 };
  }

  private async open(credentials: Credentials, endpoint: { host: string; port: number }, databaseId: string, applicationName: string): Promise<SqlSession> {
    const database = this.opts.databaseName ?? credentials.dbname ?? 'postgres';
    const timeout = this.opts.connectTimeoutMs ?? 10_000;
    const config: pg.ClientConfig = {
      host: endpoint.host,
      port: endpoint.port,
      user: credentials.username,
      password: credentials.password,
      database,
      connectionTimeoutMillis: timeout,
      application_name: applicationName,
      ssl: { rejectUnauthorized: true, servername: endpoint.host, ...(this.opts.ca ? { ca: this.opts.ca as string | Buffer | (string | Buffer)[] } : {}) },
    };
    const client = this.opts.clientFactory ? this.opts.clientFactory(config) : countCompletedStatements(new pg.Client(config));
    client.on('error', () => {
      // An idle session dropped by the server must not crash the Lambda; the next query reports it.
    });
    const where = `${credentials.username}@${endpoint.host}:${endpoint.port}/${database} (${databaseId})`;
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {
        // The failed connect is what is reported.
      });
      throw connectionError(error, where, credentials.password, timeout);
    }
    return {
      query: async <R>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>> => {
        const out = await client.query(text, values === undefined ? undefined : [...values]);
        return { rows: out.rows as R[], rowCount: out.rowCount };
      },
      close: () => client.end(),
    };
  }
}

/** What went wrong connecting, said without the password, whatever the driver's text holds. */
function connectionError(error: unknown, where: string, password: string, timeoutMs: number): ConnectionError {
  const state = sqlState(error);
  const errno = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  const said = error instanceof Error ? error.message : String(error);
  const scrubbed = password ? said.split(password).join('***') : said;
  let why: string;
  if (state === SqlStates.invalidPassword) why = 'the server rejected the password in the secret (rotated but not applied?)';
  else if (errno === 'ETIMEDOUT' || /timeout/i.test(scrubbed))
    why = `no answer within ${timeoutMs / 1000} s; check that the Lambda's security group may reach the database's port`;
  else if (errno === 'ENOTFOUND' || errno === 'EAI_AGAIN') why = 'the endpoint does not resolve (yet); a renamed database needs a few minutes for its DNS name';
  else if (errno === 'ECONNREFUSED') why = 'connection refused';
  else if (/certificate/i.test(scrubbed)) why = `TLS verification failed (${scrubbed}); give the RDS CA bundle as \`ca\` or in NODE_EXTRA_CA_CERTS`;
  else why = state ? `${scrubbed} (SQLSTATE ${state})` : scrubbed;
  const out = new ConnectionError(`could not connect to ${where}: ${why}`, scrubbed === said ? error : undefined);
  Object.assign(out.details, { ...(state ? { sqlState: state } : {}), ...(typeof errno === 'string' ? { errno } : {}) });
  return out;
}
