import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { stopEmbeddedServer } from '../../src/adapters/local/embedded-postgres.ts';
import { startTestCluster } from './test-cluster.ts';

/** A PostgreSQL server of one test file's own, which the test may stop and start again on the same port. */
export interface RestartableServer {
  /** Superuser URL on its `postgres` database (holds the password: fine in tests, never in output). */
  readonly url: string;
  /** Stops it as an operator or a failover would: a fast shutdown, open sessions ended (57P01). */
  stop(): Promise<void>;
  /**
   * Stops it as a crash or a power cut would: every process killed at once, nothing flushed or shut
   * down cleanly (`pg_ctl stop -m immediate`); the next start runs crash recovery.
   */
  stopImmediately(): Promise<void>;
  /** Starts it again on the same port, so every URL a run holds works again. */
  start(): Promise<void>;
  /** Stops it and deletes its files. */
  dispose(): Promise<void>;
}

/**
 * Creates and starts a private embedded cluster (test/support/test-cluster.ts), apart from the shared
 * test server (other test files run on that one in parallel, and must never see it restart).
 * Durability is off, as on the shared one, unless `crashSafeCommits` asks for commits that survive an
 * immediate stop.
 *
 * @example
 * ```ts
 * const server = await restartableServer();
 * try { await server.stop(); await server.start(); } finally { await server.dispose(); }
 * ```
 */
export async function restartableServer(opts: { readonly crashSafeCommits?: boolean } = {}): Promise<RestartableServer> {
  // Without synchronous commits, an immediate stop loses the last commits a client was told of:
  // a test that crashes the server and then checks what was committed needs them on. fsync stays
  // off: the machine does not crash, only the server, and what it wrote is in the OS's cache.
  const cluster = await startTestCluster({ crashSafeCommits: opts.crashSafeCommits ?? false });
  const { url, port, dataDir } = cluster;
  return {
    url,
    stop: async () => {
      await stopEmbeddedServer({ dataDir });
    },
    stopImmediately: () => pgCtl(['stop', '-w', '-s', '-t', '60', '-m', 'immediate', '-D', dataDir]),
    // ensureEmbeddedServer would pick a new free port; the run's URLs name this one.
    start: () => pgCtl(['start', '-w', '-s', '-t', '60', '-D', dataDir, '-l', path.join(dataDir, 'server.log'), '-o', `-p ${port}`]),
    dispose: () => cluster.remove(),
  };
}

async function pgCtl(args: readonly string[]): Promise<void> {
  const { pg_ctl: bin } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { pg_ctl: string };
  const ids = process.getuid?.() === 0 ? await postgresIds() : {};
  // PG* variables from the shell are meant for another server.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));
  await new Promise<void>((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'], ...ids });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`pg_ctl ${args[0]} exited with ${code}: ${output.trim()}`))));
  });
}

/** Postgres refuses to run as root: as root, pg_ctl runs as the "postgres" user the embedded setup made. */
async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const id = (flag: string) =>
    new Promise<number>((resolve, reject) =>
      execFile('id', [flag, 'postgres'], (e, out) => {
        if (e) reject(new Error(`id ${flag} postgres failed: ${e.message}`, { cause: e }));
        else resolve(Number.parseInt(out, 10));
      }),
    );
  return { uid: await id('-u'), gid: await id('-g') };
}
