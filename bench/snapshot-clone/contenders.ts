import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import type pg from 'pg';
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

/**
 * safeshift's local fleet as `upgrade --strategy swap` and a rehearsal-free restore use it: a
 * snapshot and a clone of the same moment, both copied from the database at once.
 */
export const fleetContender: CopyContender = fleetRun(
  'safeshift TemplateFleet: snapshot + clone, at once',
  'TemplateFleet.startSnapshotAndClone (the source blocked once, then CREATE DATABASE … TEMPLATE <db> STRATEGY FILE_COPY into the ' +
    'snapshot and into the clone on two sessions at the same time; the snapshot tagged and sealed, the clone given owner/ACL/settings), ' +
    "as the upgrade's swap strategy takes its pre-upgrade snapshot and new clone; each copy fsyncs its files and checkpoints, as CREATE DATABASE does",
  async (fleet, target, snapshotId, cloneId, tags) => {
    await fleet.startSnapshotAndClone(target.database, snapshotId, cloneId, { ...tags, kind: 'pre-upgrade' });
  },
);

/** The fleet the other way round: a snapshot, then a clone made from it (a copy of the copy), as fleets without the at-once path do. */
export const fleetSequentialContender: CopyContender = fleetRun(
  'safeshift TemplateFleet: snapshot, then clone of it',
  'TemplateFleet.startSnapshot then startClone from that snapshot: the clone copies the snapshot after it is made (the order an RDS fleet must follow)',
  async (fleet, target, snapshotId, cloneId, tags) => {
    await fleet.startSnapshot(target.database, snapshotId, { ...tags, kind: 'pre-upgrade' });
    await fleet.startClone(snapshotId, cloneId, { ...tags, kind: 'clone' });
  },
);

type FleetWork = (fleet: TemplateFleet, target: CopyTarget, snapshotId: string, cloneId: string, tags: { runId: string; database: string }) => Promise<void>;

/** A timed fleet contender; "fleet own" is its time outside its CREATE DATABASE statements (those overlapping counted once). */
function fleetRun(name: string, how: string, work: FleetWork): CopyContender {
  return {
    name,
    how:
      `${how}. "fleet own" is the fleet's time outside its CREATE DATABASE statements (connections, ` +
      `tags, blocking sessions, ACL copy), measured in the same run`,
    async run(target, round) {
      const fleet = new TemplateFleet(target.serverUrl);
      const snapshotId = `ss-bench-snap-${round}`;
      const cloneId = `ss-bench-clone-${round}`;
      const copying = new CopyClock();
      // Same run, same disk moment: the fleet's own share is not blurred by the noise between runs.
      const untap = tapPg({
        query: (text, ms) => {
          if (/^\s*create database/i.test(text)) copying.add(performance.now() - ms, performance.now());
        },
      });
      try {
        const began = performance.now();
        await work(fleet, target, snapshotId, cloneId, { runId: `bench-${round}`, database: target.database });
        const ended = performance.now();
        untap();
        await checkDatabase(target, cloneId, 'the clone');
        return { ms: ended - began, parts: { copying: copying.ms, 'fleet own': ended - began - copying.ms } };
      } finally {
        untap();
        await fleet.deleteDatabase(cloneId).catch(() => undefined);
        await fleet.deleteSnapshot(snapshotId).catch(() => undefined);
        await fleet.close();
      }
    },
  };
}

/** Wall time during which at least one copy was running: the union of their intervals. */
class CopyClock {
  private readonly spans: [number, number][] = [];
  add(from: number, to: number): void {
    this.spans.push([from, to]);
  }
  get ms(): number {
    let total = 0;
    let reach = Number.NEGATIVE_INFINITY;
    for (const [from, to] of [...this.spans].sort((a, b) => a[0] - b[0])) {
      total += Math.max(0, to - Math.max(from, reach));
      reach = Math.max(reach, to);
    }
    return total;
  }
}

/** The fleet's two copies at once as two bare statements: what the snapshot and the clone cost PostgreSQL alone. */
export const bareCopyContender: CopyContender = {
  name: 'bare CREATE DATABASE … FILE_COPY x2 at once',
  how:
    'the same two copies as the at-once fleet (source -> a and source -> b, concurrently) as two bare CREATE DATABASE … TEMPLATE ' +
    '… STRATEGY FILE_COPY on two open sessions: no tags, no blocking or ending of sessions, no ACL copy, no connections opened',
  async run(target, round) {
    const [a, b] = [`bench_bare_a_${round}`, `bench_bare_b_${round}`];
    const sessions: readonly [pg.Client, pg.Client] = [await connectPg(target.serverUrl), await connectPg(target.serverUrl)];
    const [admin, other] = sessions;
    try {
      for (const d of [b, a]) await admin.query(`drop database if exists ${escapeIdentifier(d)} with (force)`);
      const began = performance.now();
      await Promise.all(
        (
          [
            [a, admin],
            [b, other],
          ] as const
        ).map(([d, session]) => session.query(`create database ${escapeIdentifier(d)} template ${escapeIdentifier(target.database)} strategy file_copy`)),
      );
      const ended = performance.now();
      await checkDatabase(target, b, 'the second bare copy');
      return { ms: ended - began };
    } finally {
      for (const d of [b, a]) await admin.query(`drop database if exists ${escapeIdentifier(d)} with (force)`).catch(() => undefined);
      await Promise.all(sessions.map((c) => c.end()));
    }
  },
};

/** What an operator types: a new database, then `pg_dump -Fc <db> | pg_restore -d <new>` with default settings. */
export const dumpRestoreContender: CopyContender = {
  name: 'pg_dump -Fc | pg_restore',
  how:
    'CREATE DATABASE <new>, then `pg_dump -Fc <db> | pg_restore -d <new>` in bash with pipefail, ' +
    'default settings (custom format, default compression, one job: a pipe allows no -j); ' +
    'timed until pg_restore exits (its data is committed; the data files are flushed by a later checkpoint, which is not timed, so this favours it)',
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
      await mustRun(
        'bash',
        [
          '-c',
          'set -o pipefail; "$0" -Fc -d "$2" | "$1" -d "$3"',
          path.join(target.bin.dir, 'pg_dump'),
          path.join(target.bin.dir, 'pg_restore'),
          target.database,
          restored,
        ],
        { env: toolEnv(target.serverUrl) },
      );
      const ended = performance.now();
      await checkDatabase(target, restored, 'the restored database');
      return { ms: ended - began, parts: { createdb: created - began, 'dump | restore': ended - created } };
    } finally {
      await admin.query(`drop database if exists ${escapeIdentifier(restored)} with (force)`).catch(() => undefined);
      await admin.end();
    }
  },
};

/** How a file-copy contender moves the bytes. */
export type FileCopyMode = 'one' | 'copy-of-copy' | 'two-at-once';

const FILE_COPY_NAMES: Record<FileCopyMode, string> = {
  one: 'file copy: cp -r base/<oid> + sync (limit)',
  'copy-of-copy': 'file copy x2: cp -r, then cp -r of the copy, + sync',
  'two-at-once': 'file copy x2 at once: two cp -r of base/<oid> + sync',
};

const FILE_COPY_HOWS: Record<FileCopyMode, string> = {
  one:
    '`cp -r <data>/base/<oid> <dir>` then `sync <dir> <dir>/*` (fsync of each file, as CREATE DATABASE does); ' +
    'no catalog entry, so not a usable database: the floor for copying its bytes',
  'copy-of-copy': 'the same, then the copy copied again the same way: the bytes a snapshot and then a clone made from it move',
  'two-at-once':
    'two such copies of the source running at the same time: the bytes a snapshot and a clone of the same moment move, moved as the fleet moves them',
};

/**
 * The physical limit: the database's folder copied with `cp -r` to another folder on the same
 * filesystem, then `sync` of every copied file (the fsync CREATE DATABASE also does), after a CHECKPOINT.
 * The two-copy modes move the bytes of a snapshot plus a clone, one after the other or at once.
 */
export function fileCopyContender(mode: FileCopyMode): CopyContender {
  return {
    name: FILE_COPY_NAMES[mode],
    how: FILE_COPY_HOWS[mode],
    async unavailable() {
      for (const program of ['cp', 'sync']) {
        const ran = await runProgram(program, ['--version']).catch(() => undefined);
        if (!ran) return `${program} (coreutils) was not found`;
      }
      return undefined;
    },
    async run(target, round) {
      const dirs = [path.join(target.copyRoot, `copy-${round}-a`), path.join(target.copyRoot, `copy-${round}-b`)].slice(0, mode === 'one' ? 1 : 2);
      const copy = async (from: string, dir: string) => {
        await mustRun('cp', ['-r', from, dir]);
        const files = (await readdir(dir)).map((f) => path.join(dir, f));
        await mustRun('sync', [dir, ...files]);
      };
      try {
        await mkdir(target.copyRoot, { recursive: true });
        // Listed just before the clock starts: autovacuum may have grown a map file since the database was built.
        const source = await folderListing(target.sourceDir);
        const began = performance.now();
        if (mode === 'two-at-once') {
          await Promise.all(dirs.map((dir) => copy(target.sourceDir, dir)));
        } else {
          let from = target.sourceDir;
          for (const dir of dirs) {
            await copy(from, dir);
            from = dir;
          }
        }
        const ended = performance.now();
        for (const dir of dirs) {
          const listing = await folderListing(dir);
          const differ = [...new Set([...listing.keys(), ...source.keys()])].filter((f) => listing.get(f) !== source.get(f));
          const [first] = differ;
          if (first !== undefined)
            throw new Error(
              `the copy in ${dir} differs from the source in ${differ.length} file(s), e.g. ${first}: ${listing.get(first)} vs ${source.get(first)} bytes`,
            );
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
    PGHOST: u.hostname,
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGCONNECT_TIMEOUT: '10',
    PGAPPNAME: 'safeshift bench',
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
