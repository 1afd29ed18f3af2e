import { afterEach } from 'vitest';
import { freshDatabase } from './database.ts';
import { migrationsDir } from './migrations-dir.ts';

/**
 * Per-test resources for a test file: call once at the top of the file. `setup(files)` gives a fresh
 * database and a migrations folder; everything registered is released after each test, newest first.
 */
export function scenario() {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const onCleanup = (fn: () => Promise<unknown>) => {
    cleanups.push(fn);
  };
  async function setup(files: Record<string, string>) {
    const db = await freshDatabase();
    onCleanup(() => db.drop());
    const folder = await migrationsDir(files);
    onCleanup(folder.cleanup);
    return { ...db, ...folder };
  }
  return { setup, onCleanup };
}
