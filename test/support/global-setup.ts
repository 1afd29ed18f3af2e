import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { stopEmbeddedServer } from '../../src/adapters/local/embedded-postgres.ts';
import { isAlive } from './process-alive.ts';
import { CLUSTER_PREFIX, clusterParents, startTestCluster } from './test-cluster.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The test cluster's superuser URL (holds its password); tests reach it through test/support/database.ts. */
    safeshiftTestServerUrl: string;
  }
}

/**
 * Starts one private embedded cluster for the whole test run, in a fresh folder (never the user's
 * .safeshift), set up as every test cluster is (test/support/test-cluster.ts: on a RAM disk when
 * there is one, durability off). The returned teardown stops it and deletes it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await reapAbandonedClusters();
  const cluster = await startTestCluster();
  project.provide('safeshiftTestServerUrl', cluster.url);
  return () => cluster.remove();
}

/** A run killed before its teardown (Ctrl-C twice, a crash) leaves its server running: stop it now. */
async function reapAbandonedClusters(): Promise<void> {
  for (const parent of await clusterParents()) {
    const names = await fs.readdir(parent).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.startsWith(CLUSTER_PREFIX))) {
      const root = path.join(parent, name);
      const pid = Number.parseInt(await fs.readFile(path.join(root, 'owner.pid'), 'utf8').catch(() => ''), 10);
      if (pid > 0 && isAlive(pid)) continue; // another run in progress
      await stopEmbeddedServer({ dataDir: path.join(root, 'pg') }).catch(() => undefined);
      await fs.rm(root, { recursive: true, force: true });
    }
  }
}
