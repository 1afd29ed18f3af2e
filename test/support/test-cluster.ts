import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureEmbeddedServer, stopEmbeddedServer } from '../../src/adapters/local/embedded-postgres.ts';
import { connectPg } from '../../src/adapters/local/pg-connection.ts';
import { escapeLiteral } from '../../src/core/identifiers.ts';

/**
 * Every test cluster's folder starts with this, and holds `owner.pid`: the global setup stops and
 * deletes those whose owner process is gone (a run killed before its teardown).
 */
export const CLUSTER_PREFIX = 'safeshift-test-';

/** Where test clusters go when nothing else is said: a RAM disk, if there is one with room. */
const RAM_DISK = '/dev/shm';
/**
 * Free room the RAM disk must have to be used: the shared cluster of a whole `npm test` was seen to
 * hold 2.7 GB at its peak (some 300 databases: the snapshots and retired productions runs keep until
 * their test file cleans up), and the restartable servers come on top.
 */
const RAM_DISK_NEEDS_BYTES = 6 * 1024 ** 3;

/** A throwaway embedded PostgreSQL for tests: its folder, its superuser URL, and how to get rid of it. */
export interface TestCluster {
  /** The folder holding the cluster (`<root>/pg`) and its owner's pid. */
  readonly root: string;
  readonly dataDir: string;
  /** Superuser URL on its `postgres` database (holds the password: fine in tests, never in output). */
  readonly url: string;
  readonly port: number;
  /** Stops it and deletes its files. */
  remove(): Promise<void>;
}

/**
 * Creates and starts a private embedded cluster for tests, tuned for a suite that makes and drops
 * thousands of databases and opens tens of thousands of sessions:
 *
 * - Its files live on a RAM disk when there is one (`SAFESHIFT_TEST_TMPDIR` chooses the folder).
 *   Each CREATE DATABASE makes some 300 files; on ext4, after many drops, creating a file means
 *   scanning for inodes not recently freed, and that took most of the server's CPU in the fault
 *   matrices (system time, in `openat`).
 * - Durability is off (`fsync`, `full_page_writes`, and synchronous commits unless
 *   `crashSafeCommits`): the machine does not crash during a test, only a server may, and what it
 *   wrote is in the OS's cache.
 * - Passwords are hashed with one SCRAM iteration instead of 4096: the client derives the key anew
 *   on every login (4096 rounds of HMAC, about 0.6 ms of its CPU), and a suite logs in tens of
 *   thousands of times. Logins are still SCRAM, a wrong password still refused; product clusters
 *   keep PostgreSQL's default.
 *
 * @example
 * ```ts
 * const cluster = await startTestCluster();
 * try { await connectPg(cluster.url); } finally { await cluster.remove(); }
 * ```
 */
export async function startTestCluster(opts: { readonly crashSafeCommits?: boolean } = {}): Promise<TestCluster> {
  const root = await fs.mkdtemp(path.join(await clusterParent(), CLUSTER_PREFIX));
  // mkdtemp makes it 0700; when we run as root the server runs as "postgres" and must enter it.
  await fs.chmod(root, 0o755);
  await fs.writeFile(path.join(root, 'owner.pid'), `${process.pid}\n`);
  const dataDir = path.join(root, 'pg');
  const remove = async () => {
    await stopEmbeddedServer({ dataDir }).catch(() => undefined);
    await fs.rm(root, { recursive: true, force: true });
  };
  try {
    const settings = {
      fsync: 'off',
      synchronous_commit: opts.crashSafeCommits ? 'on' : 'off',
      full_page_writes: 'off',
      scram_iterations: 1,
    };
    const { url, port } = await ensureEmbeddedServer({ dataDir, settings });
    await rehashPassword(url);
    return { root, dataDir, url, port, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

/** The folders test clusters may be in, for the sweep of abandoned ones. */
export async function clusterParents(): Promise<string[]> {
  return [...new Set([await clusterParent(), os.tmpdir()])];
}

async function clusterParent(): Promise<string> {
  const given = process.env.SAFESHIFT_TEST_TMPDIR;
  if (given) return given;
  const free = await fs.statfs(RAM_DISK).then(
    (s) => s.bavail * s.bsize,
    () => 0,
  );
  return free >= RAM_DISK_NEEDS_BYTES ? RAM_DISK : os.tmpdir();
}

/** initdb stored the superuser's password with the default iterations; stored again, it gets the cluster's. */
async function rehashPassword(url: string): Promise<void> {
  const password = decodeURIComponent(new URL(url).password);
  const client = await connectPg(url, { applicationName: 'safeshift-test-setup' });
  try {
    await client.query(`alter role current_user password ${escapeLiteral(password)}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
