import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbRoleQuiescer } from '../src/adapters/local/db-role-quiescer.ts';
import { HttpQuiescer } from '../src/adapters/local/http-quiescer.ts';
import { LocalQuiescerFactory } from '../src/adapters/local/local-quiescers.ts';
import { connectPg } from '../src/adapters/local/pg-connection.ts';
import { TemplateFleet } from '../src/adapters/local/template-fleet.ts';
import { SafeshiftError } from '../src/core/errors.ts';
import { escapeIdentifier as ident } from '../src/core/identifiers.ts';
import { testServerUrl } from './support/database.ts';
import { scenario } from './support/scenario.ts';

const { setup, onCleanup } = scenario();
let admin: pg.Client;
beforeAll(async () => {
  admin = await connectPg(testServerUrl(), { applicationName: 'safeshift-test-admin' });
});
afterAll(() => admin.end());

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SafeshiftError);
  return (error as SafeshiftError).code;
}

describe('DbRoleQuiescer', () => {
  const PASSWORD = 'app-pw';

  /** A unique role (roles are cluster-wide and files run in parallel), dropped after the test's databases. */
  async function role(attributes: string): Promise<string> {
    const name = `q_${randomBytes(4).toString('hex')}`;
    await admin.query(`create role ${name} ${attributes} password '${PASSWORD}'`);
    onCleanup(() => admin.query(`drop role if exists ${name}`));
    return name;
  }

  function asRole(url: string, name: string): Promise<pg.Client> {
    const u = new URL(url);
    u.username = name;
    u.password = PASSWORD;
    return connectPg(u.toString(), { applicationName: 'the-app' });
  }

  async function rights(name: string, database: string) {
    const { rows } = await admin.query(
      `select r.rolcanlogin, r.rolconnlimit, (select datacl::text from pg_database where datname = $2) as acl from pg_roles r where r.rolname = $1`,
      [name, database],
    );
    return rows[0] as { rolcanlogin: boolean; rolconnlimit: number; acl: string | null };
  }

  it('locks a role with login and an explicit CONNECT out, ends its session, and puts back exactly what it had', async () => {
    const app = await role('login connection limit 7');
    const db = await setup({});
    await admin.query(`revoke connect on database ${ident(db.name)} from public; grant connect on database ${ident(db.name)} to ${app}`);
    const session = await asRole(db.url, app);
    session.on('error', () => undefined);
    const before = await rights(app, db.name);
    expect(before.acl).toContain(`${app}=c/`);

    const q = new DbRoleQuiescer(testServerUrl(), db.name, app);
    expect(q.id).toBe(`db-role:${app}`);
    const prior = await q.capture();
    expect(prior).toMatchObject({ kind: 'db-role', role: app, canLogin: true, connectionLimit: 7 });
    await q.quiesce();
    await q.quiesce(); // idempotent

    await expect(session.query('select 1')).rejects.toThrow();
    await session.end().catch(() => undefined);
    await expect(asRole(db.url, app)).rejects.toThrow(/not permitted to log in|permission denied/);
    expect(await rights(app, db.name)).toMatchObject({ rolcanlogin: false });
    expect((await rights(app, db.name)).acl).not.toContain(`${app}=`);

    await q.resume(prior);
    await q.resume(prior); // idempotent
    expect(await rights(app, db.name)).toEqual(before);
    const back = await asRole(db.url, app);
    await back.end();
  });

  it('leaves a role that could not log in unable to log in, and an untouched ACL untouched', async () => {
    const app = await role('nologin');
    const db = await setup({});
    const before = await rights(app, db.name);
    expect(before.acl).toBeNull();
    const q = new DbRoleQuiescer(testServerUrl(), db.name, app);
    const prior = await q.capture();
    await q.quiesce();
    await q.resume(prior);
    expect(await rights(app, db.name)).toEqual(before);
  });

  it('resumes on the database that has the name at resume time, such as a swapped-in clone', async () => {
    const app = await role('login');
    const db = await setup({});
    await db.client.end();
    await admin.query(`revoke connect on database ${ident(db.name)} from public; grant connect on database ${ident(db.name)} to ${app}`);
    const q = new DbRoleQuiescer(testServerUrl(), db.name, app);
    const prior = await q.capture();
    await q.quiesce();

    // The pre-upgrade snapshot is taken while quiesced, so the clone starts without the role's CONNECT.
    const fleet = new TemplateFleet(testServerUrl());
    const [snap, clone, retired] = ['s', 'c', 'r'].map((s) => `${db.name}_${s}`) as [string, string, string];
    for (const name of [snap, clone, retired]) {
      onCleanup(async () => {
        await admin.query(`alter database ${ident(name)} with is_template false`).catch(() => undefined);
        await admin.query(`drop database if exists ${ident(name)} with (force)`);
      });
    }
    await fleet.startSnapshot(db.name, snap, { runId: 'r', database: db.name, kind: 'pre-upgrade' });
    await fleet.startClone(snap, clone, { runId: 'r', database: db.name, kind: 'clone' });
    await fleet.swap(db.name, clone, retired);
    await fleet.close();

    await q.resume(prior);
    const back = await asRole(db.url, app);
    await back.end();
    expect((await rights(app, db.name)).acl).toContain(`${app}=c/`);
  });

  it('says so when the role does not exist, or is the one safeshift logs in as', async () => {
    const db = await setup({});
    const q = new DbRoleQuiescer(testServerUrl(), db.name, `no_such_role_${randomBytes(3).toString('hex')}`);
    expect(await codeOf(q.capture())).toBe('BAD_OPTION');
    expect(await codeOf(q.quiesce())).toBe('BAD_OPTION');
    expect(await codeOf(q.resume({ nonsense: true }))).toBe('QUIESCE_FAILED');
    const self = new DbRoleQuiescer(testServerUrl(), db.name, new URL(testServerUrl()).username);
    expect(await codeOf(self.quiesce())).toBe('BAD_OPTION');
  });
});

describe('HttpQuiescer', () => {
  /** A tiny API speaking the maintenance protocol, with one slow write to drain and scripted failures. */
  let server: http.Server;
  let base: string;
  let mode: 'normal' | 'maintenance' = 'normal';
  let write: Promise<void> | undefined;
  let writeDone = false;
  const failNext: number[] = [];
  const seen: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
        const send = (status: number, value: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(value));
        };
        const status = failNext.shift();
        if (status) return send(status, { error: 'scripted' });
        if (req.url !== '/maintenance') return send(404, { error: 'not found' });
        if (req.method === 'GET') return send(200, { mode, inFlight: write && !writeDone ? 1 : 0 });
        const wanted = (JSON.parse(body) as { mode: 'normal' | 'maintenance' }).mode;
        mode = wanted;
        if (wanted !== 'maintenance') return send(200, { mode, inFlight: 0 });
        // Into maintenance: answered once the write in flight is done.
        void Promise.resolve(write).then(() => send(200, { mode, inFlight: 0 }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('captures the mode, returns from quiesce only after writes in flight finished, and resumes', async () => {
    mode = 'normal';
    writeDone = false;
    write = new Promise<void>((resolve) =>
      setTimeout(() => {
        writeDone = true;
        resolve();
      }, 200),
    );
    const q = new HttpQuiescer(`${base}/maintenance`);
    expect(q.id).toBe(`http:${base}/maintenance`);
    const prior = await q.capture();
    expect(prior).toEqual({ mode: 'normal' });
    await q.quiesce();
    expect(writeDone).toBe(true);
    expect(mode).toBe('maintenance');
    await q.resume(prior);
    expect(mode).toBe('normal');
  });

  it('sends the user and password of the URL as Basic auth', async () => {
    mode = 'normal';
    write = undefined;
    const url = new URL(`${base}/maintenance`);
    url.username = 'ops';
    url.password = 'p@ss';
    const q = new HttpQuiescer(url.toString());
    expect(await q.capture()).toEqual({ mode: 'normal' });
    expect(seen.at(-1)).toBe(`GET /maintenance Basic ${Buffer.from('ops:p@ss').toString('base64')}`);
  });

  it('keeps an API that was already in maintenance in maintenance', async () => {
    mode = 'maintenance';
    write = undefined;
    const q = new HttpQuiescer(`${base}/maintenance`);
    const prior = await q.capture();
    await q.quiesce();
    await q.resume(prior);
    expect(mode).toBe('maintenance');
  });

  it('retries a 503 and fails clearly on other errors and unreachable endpoints', async () => {
    mode = 'normal';
    write = undefined;
    failNext.push(503);
    const q = new HttpQuiescer(`${base}/maintenance`, { retries: 2 });
    await q.quiesce();
    expect(mode).toBe('maintenance');

    failNext.push(500);
    const error = (await q.resume({ mode: 'normal' }).catch((e: unknown) => e)) as SafeshiftError;
    expect(error.code).toBe('QUIESCE_FAILED');
    expect(error.message).toContain(`${base}/maintenance`);
    expect(error.message).toContain('500');

    expect(await codeOf(new HttpQuiescer(`${base}/elsewhere`).capture())).toBe('QUIESCE_FAILED');
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = (await new HttpQuiescer(`http://user:secret@127.0.0.1:${port}/maintenance`, { retries: 1 })
      .capture()
      .catch((e: unknown) => e)) as SafeshiftError;
    expect(unreachable.code).toBe('QUIESCE_FAILED');
    expect(unreachable.message).toMatch(/connection refused/);
    expect(unreachable.message).toContain(`127.0.0.1:${port}/maintenance`);
    expect(unreachable.message).not.toContain('secret');
  });
});

describe('LocalQuiescerFactory', () => {
  const factory = new LocalQuiescerFactory('postgres://postgres:pw@127.0.0.1:5432/postgres');

  it('makes db-role and http quiescers whose ids are their specs', () => {
    expect(factory.create('db-role:shop_app', 'shop')).toBeInstanceOf(DbRoleQuiescer);
    expect(factory.create('db-role:shop_app', 'shop').id).toBe('db-role:shop_app');
    const q = factory.create('http:http://127.0.0.1:8080/maintenance', 'shop');
    expect(q).toBeInstanceOf(HttpQuiescer);
    expect(q.id).toBe('http:http://127.0.0.1:8080/maintenance');
  });

  it.each(['lambda:orders', 'ftp:x', 'db-role:', 'http:not a url', 'app'])('refuses %s with BAD_OPTION naming the accepted forms', (spec) => {
    let error: unknown;
    try {
      factory.create(spec, 'shop');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SafeshiftError);
    expect((error as SafeshiftError).code).toBe('BAD_OPTION');
    expect((error as SafeshiftError).message).toMatch(/db-role:|http/);
  });
});
