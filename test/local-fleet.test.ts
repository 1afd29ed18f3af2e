import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalConnector } from '../src/adapters/local/local-connector.ts';
import { connectPg, withDatabase } from '../src/adapters/local/pg-connection.ts';
import { TemplateFleet } from '../src/adapters/local/template-fleet.ts';
import { SafeshiftError } from '../src/core/errors.ts';
import { escapeIdentifier as ident } from '../src/core/identifiers.ts';
import { testServerUrl } from './support/database.ts';
import { scenario } from './support/scenario.ts';

const { setup, onCleanup } = scenario();
let admin: pg.Client;
let fleet: TemplateFleet;

beforeAll(async () => {
  admin = await connectPg(testServerUrl(), { applicationName: 'safeshift-test-admin' });
  fleet = new TemplateFleet(testServerUrl());
});
afterAll(async () => {
  await fleet.close();
  await admin.end();
});

/** A fresh database with a few rows, and names for what the test will make from it (all dropped afterwards). */
async function source() {
  const db = await setup({});
  await db.client.query(`create table item (id int primary key, name text); insert into item values (1, 'one'), (2, 'two')`);
  const name = (suffix: string) => {
    const n = `${db.name}_${suffix}`;
    onCleanup(() => dropAny(n));
    return n;
  };
  return { ...db, name: db.name, made: name, tags: (kind: 'pre-upgrade' | 'clone') => ({ runId: 'run-1', database: db.name, kind }) };
}

async function dropAny(name: string): Promise<void> {
  await admin.query(`alter database ${ident(name)} with is_template false`).catch(() => undefined);
  await admin.query(`drop database if exists ${ident(name)} with (force)`);
}

async function rowsOf(database: string): Promise<unknown[]> {
  const client = await connectPg(withDatabase(testServerUrl(), database));
  try {
    return (await client.query<Record<string, unknown>>('select id, name from item order by id')).rows;
  } finally {
    await client.end();
  }
}

async function catalog(database: string) {
  const { rows } = await admin.query(
    `select d.datistemplate, d.datallowconn, d.datconnlimit, pg_get_userbyid(d.datdba) as owner, d.datacl::text as acl,
            array(select coalesce(pg_get_userbyid(nullif(s.setrole, 0)), '') || ':' || array_to_string(s.setconfig, '|')
                    from pg_db_role_setting s where s.setdatabase = d.oid order by 1) as settings
       from pg_database d where d.datname = $1`,
    [database],
  );
  return rows[0] as { datistemplate: boolean; datallowconn: boolean; datconnlimit: number; owner: string; acl: string | null; settings: string[] } | undefined;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SafeshiftError);
  return (error as SafeshiftError).code;
}

describe('TemplateFleet', () => {
  it('snapshots a database that another client is using, and lets that client back in afterwards', async () => {
    const db = await source();
    const other = await connectPg(db.url, { applicationName: 'the-app' });
    other.on('error', () => undefined);
    const snapshot = db.made('snap');

    await fleet.startSnapshot(db.name, snapshot, db.tags('pre-upgrade'));

    expect(await fleet.snapshotStatus(snapshot)).toBe('available');
    expect(await fleet.snapshotTags(snapshot)).toEqual(db.tags('pre-upgrade'));
    expect(await catalog(snapshot)).toMatchObject({ datistemplate: true, datallowconn: false });
    // The app's session was ended for the copy; the database takes connections again.
    await expect(other.query('select 1')).rejects.toThrow();
    await other.end().catch(() => undefined);
    expect(await catalog(db.name)).toMatchObject({ datallowconn: true });
    expect(await rowsOf(db.name)).toHaveLength(2);

    // Its content, seen through a clone (a template takes no connections).
    const clone = db.made('clone');
    await fleet.startClone(snapshot, clone, db.tags('clone'));
    expect(await fleet.databaseStatus(clone)).toBe('available');
    expect(await rowsOf(clone)).toEqual([
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ]);

    // Repeated calls reuse what exists.
    await fleet.startSnapshot(db.name, snapshot, db.tags('pre-upgrade'));
    await fleet.startClone(snapshot, clone, db.tags('clone'));
    expect(await fleet.snapshotStatus(db.made('never'))).toBe('missing');
  });

  it('gives a clone the owner, privileges and settings production had', async () => {
    // Roles are cluster-wide: unique names, dropped after the databases that name them (cleanups run newest first).
    const suffix = randomBytes(3).toString('hex');
    const [owner, app, other] = [`own_${suffix}`, `app_${suffix}`, `oth_${suffix}`];
    await admin.query(`create role ${owner}; create role ${app} login; create role ${other}`);
    onCleanup(() => admin.query(`drop role if exists ${owner}; drop role if exists ${app}; drop role if exists ${other}`));
    const db = await source();
    await admin.query(`
      alter database ${ident(db.name)} owner to ${owner};
      revoke all on database ${ident(db.name)} from public;
      grant connect, temporary on database ${ident(db.name)} to ${app};
      grant create on database ${ident(db.name)} to ${app} with grant option;
      set role ${app}; grant create on database ${ident(db.name)} to ${other}; reset role;
      alter database ${ident(db.name)} with connection limit 42;
      alter database ${ident(db.name)} set work_mem = '8MB';
      alter database ${ident(db.name)} set search_path = "$user", public, "My Schema";
      alter role ${app} in database ${ident(db.name)} set statement_timeout = '5s'`);
    const before = await catalog(db.name);

    const snapshot = db.made('snap');
    const clone = db.made('clone');
    await fleet.startSnapshot(db.name, snapshot, db.tags('pre-upgrade'));
    await fleet.startClone(snapshot, clone, db.tags('clone'));

    const after = await catalog(clone);
    expect(before?.acl).toContain(`${other}=C/${app}`);
    expect(before?.settings).toHaveLength(2);
    expect(after).toEqual(before);
    expect(await catalog(db.name)).toEqual(before);
  });

  it('swaps a clone in for production, keeps the old one as retired, and does nothing when repeated', async () => {
    const db = await source();
    const [snapshot, clone, retired] = [db.made('snap'), db.made('new'), db.made('old')];
    await fleet.startSnapshot(db.name, snapshot, db.tags('pre-upgrade'));
    await fleet.startClone(snapshot, clone, db.tags('clone'));
    const connector = new LocalConnector(testServerUrl());
    const session = await connector.connect(clone);
    await session.query(`insert into item values (3, 'three')`);
    await session.close();

    await fleet.swap(db.name, clone, retired);
    expect(await rowsOf(db.name)).toHaveLength(3);
    expect(await rowsOf(retired)).toHaveLength(2);
    expect(await fleet.databaseStatus(clone)).toBe('missing');

    await fleet.swap(db.name, clone, retired);
    expect(await rowsOf(db.name)).toHaveLength(3);

    // Production now carries the clone's tags, but is never deletable as a clone.
    expect(await codeOf(fleet.deleteDatabase(db.name))).toBe('NOT_SAFESHIFT_RESOURCE');
    await fleet.deleteDatabase(retired);
    expect(await fleet.databaseStatus(retired)).toBe('missing');
    await fleet.swap(db.name, clone, retired); // still done, even with the retired one gone
  });

  it('refuses to delete what it did not make; deleting what is missing is success', async () => {
    const db = await source();
    expect(await codeOf(fleet.deleteDatabase(db.name))).toBe('NOT_SAFESHIFT_RESOURCE');
    expect(await codeOf(fleet.deleteSnapshot(db.name))).toBe('NOT_SAFESHIFT_RESOURCE');
    expect(await fleet.databaseStatus(db.name)).toBe('available');
    await fleet.deleteDatabase(db.made('missing'));
    await fleet.deleteSnapshot(db.made('missing2'));

    const snapshot = db.made('snap');
    const clone = db.made('clone');
    await fleet.startSnapshot(db.name, snapshot, db.tags('pre-upgrade'));
    await fleet.startClone(snapshot, clone, db.tags('clone'));
    expect(await codeOf(fleet.deleteDatabase(snapshot))).toBe('NOT_SAFESHIFT_RESOURCE');
    expect(await codeOf(fleet.deleteSnapshot(clone))).toBe('NOT_SAFESHIFT_RESOURCE');
    await fleet.deleteDatabase(clone);
    await fleet.deleteSnapshot(snapshot);
    await fleet.deleteSnapshot(snapshot);
    expect(await fleet.snapshotStatus(snapshot)).toBe('missing');
    expect(await fleet.snapshotTags(snapshot)).toBeUndefined();
  });

  it('repairs a snapshot that crashed with the source blocked', async () => {
    const db = await source();
    const snapshot = db.made('snap');
    await db.client.end();
    // What a crash right after blocking connections leaves behind: the marker, and no connections allowed.
    await admin.query(`alter database ${ident(db.name)} set safeshift.snapshot_in_progress = '{"snapshotId":"${snapshot}","allowConnections":true}'`);
    await admin.query(`alter database ${ident(db.name)} with allow_connections false`);
    await admin.query(`create database ${ident(snapshot)} template ${ident(db.name)}`); // the half-made copy, untagged

    await fleet.startSnapshot(db.name, snapshot, db.tags('pre-upgrade'));
    expect(await catalog(db.name)).toMatchObject({ datallowconn: true, settings: [] });
    expect(await fleet.snapshotTags(snapshot)).toEqual(db.tags('pre-upgrade'));
  });

  it('makes a snapshot and a clone of the same moment at once, and finishes either after a crash', async () => {
    const suffix = randomBytes(3).toString('hex');
    const owner = `own_${suffix}`;
    await admin.query(`create role ${owner}`);
    onCleanup(() => admin.query(`drop role if exists ${owner}`));
    const db = await source();
    await admin.query(`alter database ${ident(db.name)} owner to ${owner}; alter database ${ident(db.name)} set work_mem = '8MB'`);
    const other = await connectPg(db.url, { applicationName: 'the-app' });
    other.on('error', () => undefined);
    const [snapshot, clone] = [db.made('snap'), db.made('clone')];

    await fleet.startSnapshotAndClone(db.name, snapshot, clone, db.tags('pre-upgrade'));

    expect(await fleet.snapshotTags(snapshot)).toEqual(db.tags('pre-upgrade'));
    expect(await catalog(snapshot)).toMatchObject({ datistemplate: true, datallowconn: false });
    expect(await rowsOf(clone)).toEqual([
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ]);
    // The clone serves the app as production did, and production takes connections again.
    expect(await catalog(clone)).toEqual(await catalog(db.name));
    expect(await catalog(db.name)).toMatchObject({ datallowconn: true, owner, settings: [':work_mem=8MB'] });
    await expect(other.query('select 1')).rejects.toThrow();
    await other.end().catch(() => undefined);
    // The clone is the snapshot's moment: cloning the snapshot again finds it made and reuses it.
    await fleet.startClone(snapshot, clone, db.tags('clone'));
    await fleet.startSnapshotAndClone(db.name, snapshot, clone, db.tags('pre-upgrade'));
    expect(await rowsOf(clone)).toHaveLength(2);

    // A crash after the snapshot alone was made: a retry clones the snapshot, not production as it is now.
    await fleet.deleteDatabase(clone);
    const writer = await connectPg(db.url);
    await writer.query(`insert into item values (3, 'three')`);
    await writer.end();
    await fleet.startSnapshotAndClone(db.name, snapshot, clone, db.tags('pre-upgrade'));
    expect(await rowsOf(clone)).toHaveLength(2);

    // A crash after both copies were made, before either was tagged: the retry drops both and makes them anew.
    await fleet.deleteDatabase(clone);
    await fleet.deleteSnapshot(snapshot);
    await admin.query(
      `alter database ${ident(db.name)} set safeshift.snapshot_in_progress = ` +
        `'${JSON.stringify({ snapshotId: snapshot, cloneId: clone, allowConnections: true })}'`,
    );
    await admin.query(`alter database ${ident(db.name)} with allow_connections false`);
    for (const half of [snapshot, clone]) await admin.query(`create database ${ident(half)} template ${ident(db.name)}`);
    await fleet.startSnapshotAndClone(db.name, snapshot, clone, db.tags('pre-upgrade'));
    expect(await catalog(db.name)).toMatchObject({ datallowconn: true, settings: [':work_mem=8MB'] });
    expect(await rowsOf(clone)).toHaveLength(3);
    expect(await catalog(clone)).toEqual(await catalog(db.name));
  });

  it('LocalConnector ends every session on a database except its own', async () => {
    const db = await source();
    const connector = new LocalConnector(testServerUrl());
    const own = await connector.connect(db.name);
    const other = await connectPg(db.url, { applicationName: 'the-app' });
    other.on('error', () => undefined);
    db.client.on('error', () => undefined);

    await connector.disconnectAll(db.name);

    await expect(other.query('select 1')).rejects.toThrow();
    await expect(db.client.query('select 1')).rejects.toThrow();
    expect((await own.query<{ n: number }>('select count(*)::int as n from item')).rows).toEqual([{ n: 2 }]);
    await own.close();
    await other.end().catch(() => undefined);
  });

  it('rejects names PostgreSQL would truncate and unknown sources', async () => {
    const db = await source();
    expect(await codeOf(fleet.startSnapshot(db.name, 's'.repeat(64), db.tags('pre-upgrade')))).toBe('BAD_OPTION');
    expect(await codeOf(fleet.startSnapshot(db.made('nope'), db.made('snap'), db.tags('pre-upgrade')))).toBe('DATABASE_NOT_FOUND');
    expect(await codeOf(fleet.startClone(db.made('nosnap'), db.made('clone'), db.tags('clone')))).toBe('SNAPSHOT_NOT_FOUND');
    expect(await codeOf(fleet.startClone(db.name, db.made('clone2'), db.tags('clone')))).toBe('SNAPSHOT_FOREIGN');
  });

  it('reuses only what this run made: a name taken by anything else is left alone', async () => {
    const db = await source();
    const plain = db.made('plain');
    await admin.query(`create database ${ident(plain)}`);
    const snapshot = db.made('snap');
    expect(await codeOf(fleet.startSnapshot(db.name, plain, db.tags('pre-upgrade')))).toBe('ALREADY_EXISTS');
    await fleet.startSnapshot(db.name, snapshot, db.tags('pre-upgrade'));
    expect(await codeOf(fleet.startSnapshot(db.name, snapshot, { ...db.tags('pre-upgrade'), runId: 'run-2' }))).toBe('ALREADY_EXISTS');
    expect(await codeOf(fleet.startSnapshot(plain, snapshot, { ...db.tags('pre-upgrade'), database: plain }))).toBe('SNAPSHOT_FOREIGN');
    expect(await codeOf(fleet.startClone(snapshot, plain, db.tags('clone')))).toBe('ALREADY_EXISTS');
    const clone = db.made('clone');
    await fleet.startClone(snapshot, clone, db.tags('clone'));
    expect(await codeOf(fleet.swap(db.name, clone, plain))).toBe('ALREADY_EXISTS');
    expect(await codeOf(fleet.swap(db.name, plain, db.made('old')))).toBe('NOT_SAFESHIFT_RESOURCE');
    expect(await rowsOf(db.name)).toHaveLength(2);
  });
});
