import { access, constants, readdir } from 'node:fs/promises';
import path from 'node:path';
import { runProgram } from './exec.ts';

/** A folder of PostgreSQL programs of one version, as a package installs them. */
export interface PgBinDir {
  readonly dir: string;
  /** The major version of its `pg_dump` (15, 16, …). */
  readonly major: number;
  /** What `pg_dump --version` printed, e.g. `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`. */
  readonly dumpVersion: string;
  /** Whether it also holds a server (`postgres`, `initdb`, `pg_ctl`) of the same version. */
  readonly hasServer: boolean;
}

/** Client programs the dump/restore contender needs. */
export const CLIENT_TOOLS = ['pg_dump', 'pg_restore'] as const;
/** Server programs a private cluster needs. */
export const SERVER_TOOLS = ['postgres', 'initdb', 'pg_ctl'] as const;

/**
 * Where packages put PostgreSQL's programs, one folder per version: Debian/Ubuntu (apt, also the PGDG
 * repository), RHEL/Fedora (PGDG rpm), Homebrew; then whatever `pg_dump` is on the PATH.
 */
const VERSIONED_ROOTS: readonly { readonly root: string; readonly match: RegExp; readonly bin: (entry: string) => string }[] = [
  { root: '/usr/lib/postgresql', match: /^\d+$/, bin: (e) => path.join('/usr/lib/postgresql', e, 'bin') },
  { root: '/usr', match: /^pgsql-\d+$/, bin: (e) => path.join('/usr', e, 'bin') },
  { root: '/opt/homebrew/opt', match: /^postgresql@\d+$/, bin: (e) => path.join('/opt/homebrew/opt', e, 'bin') },
  { root: '/usr/local/opt', match: /^postgresql@\d+$/, bin: (e) => path.join('/usr/local/opt', e, 'bin') },
];

/**
 * Every folder on this machine holding `pg_dump` and `pg_restore`, with their version and whether a
 * server of the same version sits beside them, newest first.
 *
 * @example
 * ```ts
 * const dirs = await findPgBinDirs(); // [{ dir: '/usr/lib/postgresql/15/bin', major: 15, hasServer: true, … }]
 * ```
 */
export async function findPgBinDirs(): Promise<PgBinDir[]> {
  const candidates = new Set<string>();
  for (const { root, match, bin } of VERSIONED_ROOTS) {
    const entries = await readdir(root).catch(() => [] as string[]);
    for (const e of entries) if (match.test(e)) candidates.add(bin(e));
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir) candidates.add(dir);
  const found: PgBinDir[] = [];
  const seen = new Set<string>();
  for (const dir of candidates) {
    if (!(await allExecutable(dir, CLIENT_TOOLS))) continue;
    const ran = await runProgram(path.join(dir, 'pg_dump'), ['--version']).catch(() => undefined);
    const dumpVersion = ran?.stdout.trim() ?? '';
    const major = Number(/\(PostgreSQL\)\s+(\d+)/.exec(dumpVersion)?.[1] ?? Number.NaN);
    // Debian's /usr/bin/pg_dump is a wrapper running one of the versioned folders' (scanned first): listed once.
    if (!Number.isFinite(major) || seen.has(dumpVersion)) continue;
    seen.add(dumpVersion);
    found.push({ dir, major, dumpVersion, hasServer: await allExecutable(dir, SERVER_TOOLS) });
  }
  return found.sort((a, b) => b.major - a.major);
}

/** The version line a program prints (`postgres (PostgreSQL) 15.18 …`), or `unknown`. */
export async function programVersion(file: string): Promise<string> {
  const ran = await runProgram(file, ['--version']).catch(() => undefined);
  const said = ran?.stdout.trim();
  return said === undefined || said === '' ? 'unknown' : said;
}

async function allExecutable(dir: string, tools: readonly string[]): Promise<boolean> {
  for (const t of tools) {
    if (
      !(await access(path.join(dir, t), constants.X_OK).then(
        () => true,
        () => false,
      ))
    )
      return false;
  }
  return true;
}
