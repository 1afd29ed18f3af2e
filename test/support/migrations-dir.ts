import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Writes a migrations folder into a new temp dir: `{ 'V1__a.sql': 'create table a();' }`.
 * Returns the folder, and functions to change it the way a person would.
 */
export async function migrationsDir(files: Record<string, string>) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'safeshift-migrations-'));
  const put = async (name: string, text: string) => {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  };
  for (const [name, text] of Object.entries(files)) await put(name, text);
  return {
    dir,
    put,
    remove: (name: string) => rm(path.join(dir, name)),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
