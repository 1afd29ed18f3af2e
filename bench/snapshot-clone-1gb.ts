import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectPg } from '../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../src/core/identifiers.ts';
import { defined } from './defined.ts';
import { buildDatabase } from './snapshot-clone/build.ts';
import {
  bareCopyContender,
  dumpRestoreContender,
  fileCopyContender,
  fleetContender,
  fleetSequentialContender,
  folderBytes,
  type CopyContender,
  type CopyTarget,
  type CopyTiming,
} from './snapshot-clone/contenders.ts';
import { mustRun } from './snapshot-clone/exec.ts';
import { findPgBinDirs, programVersion, type PgBinDir } from './snapshot-clone/installations.ts';
import { startPrivateCluster } from './snapshot-clone/private-cluster.ts';
import { median } from './stats.ts';
import { formatTable, ms } from './table.ts';
import type { BenchContext, BenchReport, Benchmark, Goal } from './types.ts';

/** snapshot + clone must be at least this many times faster than dump/restore. */
const DUMP_RATIO_GOAL = 10;
/** …and take at most this many times the plain file copy. */
const COPY_RATIO_GOAL = 1.5;
/** The oldest server the TemplateFleet supports (CREATE DATABASE … STRATEGY FILE_COPY). */
const MIN_SERVER_MAJOR = 15;
const SOURCE_DATABASE = 'bench_copy_source';
const MB = 1024 * 1024;

/** The server the three contenders share, and how it came to be. */
interface Server {
  readonly url: string;
  readonly bin: PgBinDir;
  /** How it was chosen, for the report. */
  readonly how: string;
  /** Where the file copies go: beside the data directory, on the same filesystem. */
  makeCopyRoot(dataDir: string): Promise<string>;
  stop(): Promise<void>;
}

interface Outcome {
  readonly contender: CopyContender;
  readonly timings: CopyTiming[];
  readonly skipped?: string;
  readonly failure?: string;
}

/**
 * A snapshot plus a clone of a 1 GB database with the local fleet, against `pg_dump | pg_restore`
 * into a new database and against copying the database's files, all on one server whose version
 * the dump tools support. That is the bench's embedded server when a new enough `pg_dump` is
 * installed, else a private cluster of an installed PostgreSQL (≥ 15) with its own tools.
 */
export const snapshotClone1gb: Benchmark = {
  name: 'snapshot-clone-1gb',
  keywords: ['snapshot', 'clone', 'fleet', 'pg_dump', 'restore', 'copy'],
  description: 'snapshot + clone of a 1 GB database with the local fleet vs pg_dump | pg_restore and vs copying its files',
  async run(ctx) {
    const chosen = await chooseServer(ctx);
    if (typeof chosen === 'string') return { title: 'snapshot + clone of a 1 GB database', lines: [`skipped: ${chosen}`], goals: [] };
    const server = chosen;
    let copyRoot: string | undefined;
    try {
      const targetBytes = ctx.quick ? 50 * MB : 1024 * MB;
      // Seven rounds: the figures ride on the disk's write speed, which on a shared VM varies 2x from one copy to the next.
      const rounds = ctx.quick ? 1 : 7;
      ctx.progress(
        `snapshot-clone-1gb: building a ${Math.round(targetBytes / MB)} MB database (generate_series into 2 indexed tables, then VACUUM FREEZE ANALYZE)…`,
      );
      const buildBegan = performance.now();
      const built = await buildDatabase(server.url, SOURCE_DATABASE, targetBytes);
      ctx.progress(
        `snapshot-clone-1gb: built ${SOURCE_DATABASE}: ${(built.bytes / MB).toFixed(0)} MB (pg_database_size), ` +
          `${built.rowsPerTable.toLocaleString('en-US')} rows per table, in ${ms(performance.now() - buildBegan)} ms`,
      );
      const { dataDir, sourceDir, settings } = await locate(server.url);
      copyRoot = await server.makeCopyRoot(dataDir);
      const sameFs = (await stat(sourceDir)).dev === (await stat(copyRoot)).dev;
      const target: CopyTarget = {
        serverUrl: server.url,
        database: SOURCE_DATABASE,
        sourceDir,
        copyRoot,
        bin: server.bin,
        fingerprint: built.fingerprint,
        sourceBytes: await folderBytes(sourceDir),
      };
      const outcomes = await measure(ctx, target, rounds);
      const lines = await describe(server, built, target, settings, sameFs);
      return report(outcomes, lines, built.bytes, rounds);
    } finally {
      const admin = await connectPg(server.url).catch(() => undefined);
      await admin?.query(`drop database if exists ${escapeIdentifier(SOURCE_DATABASE)} with (force)`).catch(() => undefined);
      await admin?.end();
      if (copyRoot) await rm(copyRoot, { recursive: true, force: true });
      await server.stop();
    }
  },
};

/**
 * The bench's own server when pg_dump/pg_restore of its version or newer are installed (pg_dump
 * refuses a newer server); else the newest installed PostgreSQL ≥ 15 with server and tools, in a
 * private cluster; else why this cannot run and what to install.
 */
async function chooseServer(ctx: BenchContext): Promise<Server | string> {
  const c = await ctx.connect(ctx.serverUrl);
  let benchMajor: number;
  try {
    const { rows } = await c.query<{ n: number }>(`select current_setting('server_version_num')::int / 10000 as n`);
    benchMajor = rows[0]?.n ?? 0;
  } finally {
    await c.end();
  }
  const dirs = await findPgBinDirs();
  ctx.progress(
    `snapshot-clone-1gb: bench server is PostgreSQL ${benchMajor}; ` +
      `pg_dump found: ${dirs.map((d) => `${d.major} in ${d.dir}${d.hasServer ? ' (with server)' : ''}`).join(', ') || 'none'}`,
  );
  const tools = dirs.find((d) => d.major >= benchMajor);
  if (tools) {
    return {
      url: ctx.serverUrl,
      bin: tools,
      how: `the bench's embedded PostgreSQL ${benchMajor} (pg_dump ${tools.major} found in ${tools.dir})`,
      makeCopyRoot: (dataDir) => mkdtemp(path.join(path.dirname(dataDir), 'file-copy-')),
      stop: () => Promise.resolve(),
    };
  }
  const local = dirs.find((d) => d.hasServer && d.major >= MIN_SERVER_MAJOR);
  if (local) {
    const cluster = await startPrivateCluster(local, ctx.progress);
    return {
      url: cluster.url,
      bin: local,
      how:
        `a private PostgreSQL ${local.major} cluster (initdb from ${local.dir}, temp folder, 127.0.0.1:${cluster.port}, default settings), because ` +
        `pg_dump ${dirs.map((d) => d.major).join('/') || '(none)'} cannot dump the embedded PostgreSQL ${benchMajor}: all three contenders run on it`,
      makeCopyRoot: async () => {
        const dir = path.join(cluster.root, 'copies');
        await mkdir(dir);
        return dir;
      },
      stop: () => cluster.stop(),
    };
  }
  return (
    `no pg_dump/pg_restore of version ${benchMajor} or newer (for the embedded PostgreSQL ${benchMajor}) ` +
    `and no PostgreSQL ≥ ${MIN_SERVER_MAJOR} server with its tools to run all three contenders on ` +
    `(found: ${dirs.map((d) => `pg_dump ${d.major} in ${d.dir}${d.hasServer ? '' : ' without server'}`).join(', ') || 'nothing'}). ` +
    `Install one: on Debian/Ubuntu \`apt-get install -y postgresql-15\` (or any postgresql-NN ≥ ${MIN_SERVER_MAJOR}; ` +
    `server and tools, run in a private temp cluster), ` +
    `or postgresql-client-${benchMajor} from apt.postgresql.org to run against the embedded server itself.`
  );
}

/** The database's folder, the data directory, and the settings that decide what copying costs. */
async function locate(url: string): Promise<{ dataDir: string; sourceDir: string; settings: string }> {
  const c = await connectPg(url);
  try {
    const { rows } = await c.query<{
      oid: string;
      data_directory: string;
      version: string;
      fsync: string;
      shared_buffers: string;
      wal_level: string;
      checksums: string;
    }>(
      `select d.oid::text as oid, current_setting('data_directory') as data_directory, version() as version, current_setting('fsync') as fsync,
              current_setting('shared_buffers') as shared_buffers, current_setting('wal_level') as wal_level, current_setting('data_checksums') as checksums
         from pg_database d where d.datname = $1`,
      [SOURCE_DATABASE],
    );
    const r = rows[0];
    if (!r) throw new Error(`${SOURCE_DATABASE} vanished`);
    return {
      dataDir: r.data_directory,
      sourceDir: path.join(r.data_directory, 'base', r.oid),
      settings: `${r.version}; fsync=${r.fsync}, shared_buffers=${r.shared_buffers}, wal_level=${r.wal_level}, data_checksums=${r.checksums}`,
    };
  } finally {
    await c.end();
  }
}

const [ONE_COPY, COPY_OF_COPY, TWO_AT_ONCE] = [fileCopyContender('one'), fileCopyContender('copy-of-copy'), fileCopyContender('two-at-once')];
/** The first is safeshift's figure; the report finds the others by identity. */
const CONTENDERS: readonly CopyContender[] = [
  fleetContender,
  fleetSequentialContender,
  bareCopyContender,
  dumpRestoreContender,
  ONE_COPY,
  COPY_OF_COPY,
  TWO_AT_ONCE,
];

/** `rounds` rounds, the order rotated each round, a CHECKPOINT before every timed run. */
async function measure(ctx: BenchContext, target: CopyTarget, rounds: number): Promise<Outcome[]> {
  const contenders = CONTENDERS;
  const outcomes = new Map<CopyContender, Outcome>();
  for (const c of contenders) {
    const skipped = await c.unavailable?.(target);
    if (skipped) ctx.progress(`snapshot-clone-1gb: ${c.name}: skipped: ${skipped}`);
    outcomes.set(c, { contender: c, timings: [], ...(skipped ? { skipped } : {}) });
  }
  const admin = await connectPg(target.serverUrl);
  try {
    for (let round = 0; round < rounds; round++) {
      const shift = round % contenders.length;
      const order = [...contenders.slice(shift), ...contenders.slice(0, shift)];
      for (const c of order) {
        const o = defined(outcomes.get(c), `outcome for ${c.name}`);
        if (o.skipped || o.failure) continue;
        try {
          // Nothing of the previous contender (its dropped copies, a dump's unflushed restore) is still being written.
          await admin.query('checkpoint');
          await mustRun('sync', []);
          const t = await c.run(target, round);
          o.timings.push(t);
          const parts = t.parts
            ? ` (${Object.entries(t.parts)
                .map(([k, v]) => `${k} ${ms(v)}`)
                .join(', ')})`
            : '';
          ctx.progress(`snapshot-clone-1gb: round ${round + 1}/${rounds}: ${c.name}: ${ms(t.ms)} ms${parts}`);
        } catch (error) {
          outcomes.set(c, { ...o, failure: (error as Error).message.split('\n')[0] ?? String(error) });
          ctx.progress(`snapshot-clone-1gb: round ${round + 1}/${rounds}: ${c.name} FAILED: ${(error as Error).message}`);
        }
      }
    }
  } finally {
    await admin.end();
  }
  return contenders.map((c) => defined(outcomes.get(c), `outcome for ${c.name}`));
}

async function describe(
  server: Server,
  built: { bytes: number; rowsPerTable: number },
  target: CopyTarget,
  settings: string,
  sameFs: boolean,
): Promise<string[]> {
  return [
    `database: ${SOURCE_DATABASE}, pg_database_size ${built.bytes.toLocaleString('en-US')} bytes (${(built.bytes / MB).toFixed(0)} MB); ` +
      `its folder base/<oid> holds ${target.sourceBytes.toLocaleString('en-US')} bytes; ` +
      `tables orders and events, ${built.rowsPerTable.toLocaleString('en-US')} rows each, 5 indexes; VACUUM (FREEZE, ANALYZE) after loading`,
    `server: ${server.how}`,
    `        ${settings}`,
    `tools: ${await programVersion(path.join(server.bin.dir, 'pg_dump'))}, ` +
      `${await programVersion(path.join(server.bin.dir, 'pg_restore'))} (${server.bin.dir}); cp/sync: ${(await programVersion('cp')).split('\n')[0]}`,
    `file copies go to ${target.copyRoot} ` +
      `(${sameFs ? 'same filesystem as the data directory' : 'NOT the same filesystem as the data directory: the copy figures are not comparable'})`,
    `machine: ${os.cpus().length} CPU(s), ${Math.round(os.totalmem() / 1024 ** 3)} GiB RAM; ` +
      `the source fits in the page cache, so every contender reads it from memory and pays for writing`,
    'every copy is checked after its clock stops (row counts of every table and the index count, or the bytes of the copied files) and then deleted',
  ];
}

function report(outcomes: readonly Outcome[], header: string[], bytes: number, rounds: number): BenchReport {
  const fleet = defined(outcomes[0], 'outcome for the fleet');
  const fleetMs = figure(fleet);
  const rows = outcomes.map((o) => {
    if (o.skipped) return [o.contender.name, 'skipped', '-', '-', '-', o.skipped];
    if (o.failure) return [o.contender.name, 'FAILED', '-', '-', '-', o.failure];
    const m = figure(o);
    const parts = o.timings[0]?.parts
      ? Object.keys(o.timings[0].parts)
          .map((k) => `${k} ${ms(median(o.timings.map((t) => t.parts?.[k] ?? Number.NaN)))}`)
          .join(', ')
      : '';
    return [o.contender.name, ms(m), `${(m / fleetMs).toFixed(2)}x`, (bytes / MB / (m / 1000)).toFixed(0), parts, o.timings.map((t) => ms(t.ms)).join(' / ')];
  });
  const lines = [
    ...formatTable(['contender', 'median ms', 'vs snapshot+clone', 'MB/s', 'median parts (ms)', 'rounds (ms)'], rows),
    '',
    `median of ${rounds} round(s), order rotated each round, CHECKPOINT and sync before each timed run; MB/s is the database's size over the time`,
    ...header,
    ...outcomes.map((o) => `  ${o.contender.name}: ${o.contender.how}`),
  ];
  const of = (c: CopyContender) =>
    figure(
      defined(
        outcomes.find((o) => o.contender === c),
        `outcome for ${c.name}`,
      ),
    );
  const dump = of(dumpRestoreContender);
  const copy1 = of(ONE_COPY);
  const sequential = of(fleetSequentialContender);
  lines.push('');
  if (Number.isFinite(fleetMs) && Number.isFinite(copy1)) {
    lines.push(
      `snapshot + clone moves the database's bytes twice; at once that is ${(fleetMs / of(TWO_AT_ONCE)).toFixed(2)}x ` +
        `the time of two file copies at once and ${(fleetMs / copy1).toFixed(2)}x one; ` +
        `the snapshot and then a clone of it (the copy of the copy) takes ${ms(sequential)} ms: ${(sequential / copy1).toFixed(2)}x one file copy, ` +
        `${(sequential / of(COPY_OF_COPY)).toFixed(2)}x a file copy and a copy of it`,
    );
    // The medians compare like with like; the fastest single copy is the sterner floor on a disk this uneven.
    const fastestCopy = Math.min(...(outcomes.find((o) => o.contender === ONE_COPY)?.timings.map((t) => t.ms) ?? []));
    lines.push(
      `against the fastest single file copy of any round (${ms(fastestCopy)} ms) rather than their median, ` +
        `snapshot + clone at once is ${(fleetMs / fastestCopy).toFixed(2)}x`,
    );
  }
  const own = fleet.timings.map((t) => t.parts?.['fleet own'] ?? Number.NaN);
  if (own.length > 0) {
    lines.push(
      `safeshift's own share of snapshot + clone (time outside its two CREATE DATABASE statements, ` +
        `per run): ${own.map(ms).join(' / ')} ms, median ${ms(median(own))}; ` +
        `the rest is PostgreSQL copying and fsyncing files (compare the bare statements: ` +
        `${ms(of(bareCopyContender))} ms median, measured in other moments of a noisy disk)`,
    );
  }
  const goals: Goal[] = [
    {
      description: `snapshot + clone at least ${DUMP_RATIO_GOAL}x faster than pg_dump | pg_restore`,
      met: dump / fleetMs >= DUMP_RATIO_GOAL,
      detail: Number.isFinite(dump / fleetMs) ? `${(dump / fleetMs).toFixed(1)}x faster (${ms(fleetMs)} ms vs ${ms(dump)} ms)` : 'no figure',
    },
    {
      description: `snapshot + clone within ${COPY_RATIO_GOAL}x of the file copy`,
      met: fleetMs / copy1 <= COPY_RATIO_GOAL,
      detail: Number.isFinite(fleetMs / copy1)
        ? `${(fleetMs / copy1).toFixed(2)}x (${ms(fleetMs)} ms vs ${ms(copy1)} ms for one copy of the files)`
        : 'no figure',
    },
  ];
  return {
    title: `snapshot + clone of a ${(bytes / MB).toFixed(0)} MB database: safeshift's local fleet vs pg_dump | pg_restore vs a file copy`,
    lines,
    goals,
  };
}

/** The median total of an outcome, or NaN when it has none (skipped or failed). */
function figure(o: Outcome): number {
  return o.skipped || o.failure ? Number.NaN : median(o.timings.map((t) => t.ms));
}
