import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureEmbeddedServer, stopEmbeddedServer } from '../../src/adapters/local/embedded-postgres.ts';
import { isAlive } from './process-alive.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The test cluster's superuser URL (holds its password); tests reach it through test/support/database.ts. */
    safeshiftTestServerUrl: string;
  }
}

const PREFIX = 'safeshift-test-';

/**
 * Starts one private embedded cluster for the whole test run, in a fresh temp directory (never the
 * user's .safeshift), with durability off because nothing in it needs to survive a crash. The
 * returned teardown stops it and deletes it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await reapAbandonedClusters();
  const root = await fs.mkdtemp(path.join(os.tmpdir(), PREFIX));
  // mkdtemp makes it 0700; when we run as root the server runs as "postgres" and must enter it.
  await fs.chmod(root, 0o755);
  await fs.writeFile(path.join(root, 'owner.pid'), `${process.pid}\n`);
  const dataDir = path.join(root, 'pg');
  try {
    const server = await ensureEmbeddedServer({
      dataDir,
      settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
    });
    project.provide('safeshiftTestServerUrl', server.url);
  } catch (error) {
    await removeCluster(root);
    throw error;
  }
  return () => removeCluster(root);
}

async function removeCluster(root: string): Promise<void> {
  await stopEmbeddedServer({ dataDir: path.join(root, 'pg') }).catch(() => undefined);
  await fs.rm(root, { recursive: true, force: true });
}

/** A run killed before its teardown (Ctrl-C twice, a crash) leaves its server running: stop it now. */
async function reapAbandonedClusters(): Promise<void> {
  const names = await fs.readdir(os.tmpdir()).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(PREFIX))) {
    const root = path.join(os.tmpdir(), name);
    const pid = Number.parseInt(await fs.readFile(path.join(root, 'owner.pid'), 'utf8').catch(() => ''), 10);
    if (pid > 0 && isAlive(pid)) continue; // another run in progress
    await removeCluster(root);
  }
}
