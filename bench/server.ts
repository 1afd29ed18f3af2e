import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { ensureEmbeddedServer, stopEmbeddedServer } from '../src/adapters/local/embedded-postgres.ts';
import { connectPg, withDatabase } from '../src/adapters/local/pg-connection.ts';
import { escapeIdentifier } from '../src/core/identifiers.ts';

/** The benchmark's own cluster: never the user's `.safeshift/pg`, which may hold their work. */
export const BENCH_DATA_DIR = path.join(os.tmpdir(), 'safeshift-bench', 'pg');

/** A running benchmark server and the database helpers the benchmarks use: plain functions (no `this`), handed on as they are. */
export interface BenchServer {
  readonly url: string;
  readonly createDatabase: (name: string) => Promise<string>;
  readonly dropDatabase: (name: string) => Promise<void>;
  readonly connect: (url: string) => Promise<pg.Client>;
  readonly settle: () => Promise<void>;
  /** Stops the server if this run started it. */
  stop(): Promise<void>;
}

/**
 * Starts (or reuses) the embedded PostgreSQL in a bench-private data directory under the OS temp
 * folder. The cluster is kept between runs (creating it takes seconds) but the server is stopped by
 * `stop()`, so nothing keeps running after `npm run bench`. Server settings are left at their
 * defaults: the figures are for a server as a user gets it.
 *
 * @example
 * ```ts
 * const server = await startBenchServer((line) => console.error(line));
 * try { const url = await server.createDatabase('bench_x'); } finally { await server.stop(); }
 * ```
 */
export async function startBenchServer(log: (line: string) => void): Promise<BenchServer> {
  const embedded = await ensureEmbeddedServer({ dataDir: BENCH_DATA_DIR, log });
  const admin = await connectPg(embedded.url);
  const drop = (name: string) => admin.query(`drop database if exists ${escapeIdentifier(name)} with (force)`).then(() => undefined);
  return {
    url: embedded.url,
    async createDatabase(name) {
      // A run that crashed may have left its database behind: start from nothing either way.
      await drop(name);
      await admin.query(`create database ${escapeIdentifier(name)}`);
      return withDatabase(embedded.url, name);
    },
    dropDatabase: drop,
    connect: connectPg,
    async settle() {
      await admin.query('checkpoint');
    },
    async stop() {
      await admin.end().catch(() => undefined);
      // Stopped even when an earlier, crashed run had left it running: the data dir is ours alone.
      await stopEmbeddedServer({ dataDir: BENCH_DATA_DIR, log });
    },
  };
}
