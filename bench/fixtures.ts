import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The file-name conventions of the tools compared: the same SQL, each tool's own name for it. */
export type MigrationLayout = 'safeshift' | 'node-pg-migrate' | 'postgrator';

/**
 * The SQL of generated migration `n`: a table, a few rows and an index, as a typical "add a table"
 * change looks. Every contender runs exactly this text.
 *
 * @example
 * ```ts
 * migrationSql(7) // 'create table t7 (...);\ninsert into t7 ...;\ncreate index t7_name_idx on t7 (name);\n'
 * ```
 */
export function migrationSql(n: number): string {
  return [
    `create table t${n} (`,
    '  id integer primary key,',
    '  name text not null,',
    '  created_at timestamptz not null default now()',
    ');',
    `insert into t${n} (id, name) values (1, 'alpha'), (2, 'beta'), (3, 'gamma');`,
    `create index t${n}_name_idx on t${n} (name);`,
    '',
  ].join('\n');
}

/** The file name migration `n` of `count` has in a layout. Numbers are zero-padded where a tool sorts names as text. */
export function migrationFileName(layout: MigrationLayout, n: number, count: number): string {
  const width = Math.max(4, String(count).length);
  const padded = String(n).padStart(width, '0');
  switch (layout) {
    case 'safeshift':
      return `V${n}__create_t${n}.sql`;
    case 'node-pg-migrate':
      return `${padded}_create_t${n}.sql`;
    case 'postgrator':
      return `${padded}.do.create_t${n}.sql`;
  }
}

/**
 * Writes `count` generated migrations into `dir` (created if missing) named for `layout`,
 * and returns the folder.
 *
 * @example
 * ```ts
 * const dir = await writeMigrations(path.join(work, 'safeshift'), 'safeshift', 1000);
 * ```
 */
export async function writeMigrations(dir: string, layout: MigrationLayout, count: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  // Written in batches: 10,000 parallel writes would only queue in libuv anyway.
  const batch = 200;
  for (let start = 1; start <= count; start += batch) {
    const writes: Promise<void>[] = [];
    for (let n = start; n < start + batch && n <= count; n++) {
      writes.push(writeFile(path.join(dir, migrationFileName(layout, n, count)), migrationSql(n)));
    }
    await Promise.all(writes);
  }
  return dir;
}
