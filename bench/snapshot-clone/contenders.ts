import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { TemplateFleet } from '../../src/adapters/local/template-fleet.ts';
import { connectPg, withDatabase } from '../../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../../src/core/identifiers.ts';
import { fingerprint, sameFingerprint, type Fingerprint } from './build.ts';
import { mustRun, runProgram } from './exec.ts';
import type { PgBinDir } from './installations.ts';
import { tapPg } from '../workflow/pg-tap.ts';

/** The server and files every contender works on. */
export interface CopyTarget {
  /** Superuser URL on the server's maintenance database. */
  readonly serverUrl: string;
  /** The database to copy. */
  readonly database: string;
  /** Its folder, `<data_directory>/base/<oid>`. */
  readonly sourceDir: string;
  /** A folder on the same filesystem as `sourceDir`, for the file copies. */
  readonly copyRoot: string;
  /** Client programs of the server's version (or newer). */
  readonly bin: PgBinDir;
  readonly fingerprint: Fingerprint;
  /** Total bytes of the files under `sourceDir` once built, for the report. */
  readonly sourceBytes: number;
}

/** One timed run: the total and, where the contender has parts, each part's ms. */
export interface CopyTiming {
  readonly ms: number;
  readonly parts?: Readonly<Record<string, number>>;
}

/** One way of getting a second copy of the database; `run` is timed inside, checked and cleaned up after. */
export interface CopyContender {
  readonly name: string;
  /** How it was run, printed under the table. */
  readonly how: string;
  /** Why it cannot run here (a missing program), or undefined. */
  unavailable?(target: CopyTarget): Promise<string | undefined>;
  run(target: CopyTarget, round: number): Promise<CopyTiming>;
}

/** safeshift's local fleet: a pre-upgrade snapshot (template database, FILE_COPY) and a clone restored from it. */
export const fleetContender: CopyContender = {
  name: 'safeshift TemplateFleet: snapshot + clone',
  how: 'TemplateFleet.startSnapshot (CREATE DATABASE … TEMPLATE <db> STRATEGY FILE_COPY, tagged, sealed) then startClone from it (the same from the snapshot, then owner/ACL/settings copied), both timed together; '
    + 'each fsyncs its files and checkpoints, as CREATE DATABASE does. "fleet own" is the fleet\'s time outside its two CREATE DATABASE statements (connections, tags, blocking sessions, ACL copy), measured in the same run',
  async run(target, round) {
    const fleet = new TemplateFleet(target.serverUrl);
    const snapshotId = `ss-bench-snap-${round}`;
    const cloneId = `ss-bench-clone-${round}`;
    const tags = { runId: `bench-${round}`, database: target.database } as const;
    let copyMs = 0;
    // Same run, same disk moment: the fleet's own share is not blurred by the noise between runs.
    const untap = tapPg({ query: (text, ms) => { if (/^\s*create database/i.test(text)) copyMs += ms; } });
    try {
      const began = performance.now();
      await fleet.startSnapshot(target.database, snapshotId, { ...tags, kind: 'pre-upgrade' });
      const snapshotted = performance.now();
      await fleet.startClone(snapshotId, cloneId, { ...tags, kind: 'clone' });
      const ended = performance.now();
      untap();
      await checkDatabase(target, cloneId, 'the clone');
      return { ms: ended - began, parts: { snapshot: snapshotted - began, clone: ended - snapshotted, 'fleet own': ended - began - copyMs } };
    } finally {
      untap();
      await fleet.deleteDatabase(cloneId).catch(() => undefined);
      await fleet.deleteSnapshot(snapshotId).catch(() => undefined);
      await fleet.close();
    }
  },
};

/** The fleet's two copies as two bare statements: what the snapshot and the clone cost PostgreSQL alone. */
export const bareCopyContender: CopyContender = {
  name: 'bare CREATE DATABASE … FILE_COPY x2',
  how: 'the same two copies as the fleet (source -> a, a -> b) as two bare CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY on one open session: no tags, no blocking or ending of sessions, no ACL copy, no connections opened',
  async run(target, round) {
    const [a, b] = [`bench_bare_a_${round}`, `bench_bare_b_${round}`];
    const admin = await connectPg(target.serverUrl);
    try {
      for (const d of [b, a]) await admin.query(`drop database if exists ${escapeIdentifier(d)} with (force)`);
      const began = performance.now();
      await admin.query(`create database ${escapeIdentifier(a)} template ${escapeIdentifier(target.database)} strategy file_copy`);
      const first = performance.now();
      await admin.query(`create database ${escapeIdentifier(b)} template ${escapeIdentifier(a)} strategy file_copy`);
      const ended = performance.now();
      await checkDatabase(target, b, 'the second bare copy');
      return { ms: ended - began, parts: { first: first - began, second: ended - first } };
    } finally {
      for (const d of [b, a]) await admin.query(`drop database if exists ${escapeIdentifier(d)} with (force)`).catch(() => undefined);
      await admin.end();
    }
  },
};

/** What an operator types: a new database, then `pg_dump -Fc <db> | pg_restore -d <new>` with default settings. */
export const dumpRestoreContender: CopyContender = {
  name: 'pg_dump -Fc | pg_restore',
  how: 'CREATE DATABASE <new>, then `pg_dump -Fc <db> | pg_restore -d <new>` in bash with pipefail, default settings (custom format, default compression, one job: a pipe allows no -j); '
    + 'timed until pg_restore exits (its data is committed; the data files are flushed by a later checkpoint, which is not timed, so this favours it)',
  async unavailable() {
    const bash = await runProgram('bash', ['-c', 'exit 0']).catch(() => undefined);
    return bash?.code === 0 ? undefined : 'bash is needed for the pipe (set -o pipefail) and was not found';
  },
  async run(target, round) {
    const restored = `bench_restored_${round}`;
    const admin = await connectPg(target.serverUrl);
    try {
      await admin.query(`drop database if exists ${escapeIdentifier(restored)} with (force)`);
      const began = performance.now();
      await admin.query(`create database ${escapeIdentifier(restored)}`);
      const created = performance.now();
      // The programs and names are arguments ($0…$3), never spliced into the script; the password travels in the environment.
      await mustRun('bash', ['-c', 'set -o pipefail; "$0" -Fc -d "$2" | "$1" -d "$3"',
        path.join(target.bin.dir, 'pg_dump'), path.join(target.bin.dir, 'pg_restore'), target.database, restored], { env: toolEnv(target.serverUrl) });
      const ended = performance.now();
      await checkDatabase(target, restored, 'the restored database');
      return { ms: ended - began, parts: { createdb: created - began, 'dump | restore': ended - created } };
    } finally {
      await admin.query(`drop database if exists ${escapeIdentifier(restored)} with (force)`).catch(() => undefined);
      await admin.end();
    }
  },
};

/**
 * The physical limit: the database's folder copied with `cp -r` to another folder on the same
 * filesystem, then `sync` of every copied file (the fsync CREATE DATABASE also does), after a CHECKPOINT.
 * `copies: 2` copies the copy once more: the same bytes moved as a snapshot plus a clone of it.
 */
export function fileCopyContender(copies: 1 | 2): CopyContender {
  return {
    name: copies === 1 ? 'file copy: cp -r base/<oid> + sync (limit)' : 'file copy x2: cp -r twice + sync (same bytes as snapshot + clone)',
    how: copies === 1
      ? '`cp -r <data>/base/<oid> <dir>` then `sync <dir> <dir>/*` (fsync of each file, as CREATE DATABASE does); no catalog entry, so not a usable database: the floor for copying its bytes'
      : 'the same, then the copy copied again the same way: the bytes a snapshot and a clone made from it must move',
    async unavailable() {
      for (const program of ['cp', 'sync']) {
        const ran = await runProgram(program, ['--version']).catch(() => undefined);
        if (!ran) return `${program} (coreutils) was not found`;
      }
      return undefined;
    },
    async run(target, round) {
      const dirs = [path.join(target.copyRoot, `copy-${round}-a`), path.join(target.copyRoot, `copy-${round}-b`)].slice(0, copies);
      try {
        await mkdir(target.copyRoot, { recursive: true });
        // Listed just before the clock starts: autovacuum may have grown a map file since the database was built.
        const source = await folderListing(target.sourceDir);
        const began = performance.now();
        let from = target.sourceDir;
        for (const dir of dirs) {
          await mustRun('cp', ['-r', from, dir]);
          const files = (await readdir(dir)).map((f) => path.join(dir, f));
          await mustRun('sync', [dir, ...files]);
          from = dir;
        }
        const ended = performance.now();
        for (const dir of dirs) {
          const copy = await folderListing(dir);
          const differ = [...new Set([...copy.keys(), ...source.keys()])].filter((f) => copy.get(f) !== source.get(f));
          if (differ.length > 0) throw new Error(`the copy in ${dir} differs from the source in ${differ.length} file(s), e.g. ${differ[0]}: ${copy.get(differ[0]!)} vs ${source.get(differ[0]!)} bytes`);
        }
        return { ms: ended - began };
      } finally {
        for (const dir of dirs) await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Name and size of every file in a folder (a database folder has no subfolders). */
async function folderListing(dir: string): Promise<Map<string, number>> {
  const listing = new Map<string, number>();
  for (const f of await readdir(dir)) listing.set(f, (await stat(path.join(dir, f))).size);
  return listing;
}

/** Total size of the regular files in a folder (a database folder has no subfolders). */
export async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const size of (await folderListing(dir)).values()) total += size;
  return total;
}

/** libpq's environment for the server in `url`: the password never appears in a command line. */
function toolEnv(url: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  return {
    ...process.env,
    PGHOST: u.hostname, PGPORT: u.port || '5432', PGUSER: decodeURIComponent(u.username), PGPASSWORD: decodeURIComponent(u.password),
    PGCONNECT_TIMEOUT: '10', PGAPPNAME: 'safeshift bench',
  };
}

async function checkDatabase(target: CopyTarget, database: string, what: string): Promise<void> {
  const c = await connectPg(withDatabase(target.serverUrl, database));
  try {
    sameFingerprint(what, await fingerprint(c), target.fingerprint);
  } finally {
    await c.end();
  }
}
