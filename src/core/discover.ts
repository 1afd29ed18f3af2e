import { readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { checksum, normaliseText } from './checksum.ts';
import { parseDirectives, type Directives } from './directives.ts';
import { SafeshiftError, type Problem } from './errors.ts';
import { compareVersions, parseVersion, versionKey, type Version } from './version.ts';

/** The language a migration is written in. */
export type MigrationLanguage = 'sql' | 'ts' | 'js';

/** A migration file found on disk. */
export interface MigrationFile {
  readonly kind: 'versioned' | 'repeatable';
  /** Set for versioned migrations only. */
  readonly version?: Version;
  /** The description from the name, `_` read as a space. */
  readonly description: string;
  /** The path relative to the migrations folder, with `/` separators: what the history records. */
  readonly script: string;
  readonly absolutePath: string;
  readonly language: MigrationLanguage;
  /** The text with line endings normalised. */
  readonly text: string;
  readonly checksum: string;
  readonly directives: Directives;
}

/** What discovery found: the migrations in apply order, and every problem with the names. */
export interface Discovery {
  readonly migrations: readonly MigrationFile[];
  readonly problems: readonly Problem[];
}

const VERSIONED = /^V([^_]+(?:_[^_]+)*?)__(.+)\.(sql|ts|js)$/;
const REPEATABLE = /^R__(.+)\.sql$/;
const CANDIDATE = /\.(sql|ts|js)$/;
/** Folders inside a migrations folder that hold something else. */
const SKIPPED_DIRS = new Set(['verify', 'node_modules']);

/**
 * Reads a migrations folder (recursively, as Flyway does) and parses every name.
 * Names that do not parse and duplicate versions are reported as problems, all of them.
 *
 * @example
 * ```ts
 * const { migrations, problems } = await discoverMigrations('examples/migrations');
 * ```
 */
export async function discoverMigrations(dir: string): Promise<Discovery> {
  const root = path.resolve(dir);
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new SafeshiftError(
      'MIGRATIONS_DIR_NOT_FOUND',
      `migrations folder ${dir} does not exist; pass --dir with the folder that holds your V<version>__<description>.sql files`,
    );
  }
  const files = await listFiles(root);
  const problems: Problem[] = [];
  const migrations: MigrationFile[] = [];
  const byVersion = new Map<string, MigrationFile>();
  const byRepeatable = new Map<string, MigrationFile>();

  for (const absolutePath of files) {
    const script = path.relative(root, absolutePath).split(path.sep).join('/');
    const name = path.basename(absolutePath);
    if (!CANDIDATE.test(name) || name.endsWith('.d.ts')) continue;
    const parsed = parseName(name);
    if ('error' in parsed) {
      problems.push({ code: 'BAD_MIGRATION_NAME', file: script, message: `${script}: ${parsed.error}` });
      continue;
    }
    // Synchronous on purpose: thousands of small files read one by one through the thread pool cost
    // seconds; read directly they cost milliseconds.
    const text = normaliseText(readFileSync(absolutePath, 'utf8'));
    const { directives, problems: directiveProblems } = parseDirectives(text, script);
    problems.push(...directiveProblems);
    const file: MigrationFile = {
      ...parsed,
      script,
      absolutePath,
      text,
      checksum: checksum(text),
      directives,
    };
    if (file.version) {
      const key = versionKey(file.version);
      const other = byVersion.get(key);
      if (other) {
        problems.push({
          code: 'DUPLICATE_VERSION',
          file: script,
          version: file.version.text,
          message: `version ${file.version.text} is used by both ${other.script} and ${script}; give one of them a new version`,
        });
        continue;
      }
      byVersion.set(key, file);
    } else {
      const other = byRepeatable.get(file.description);
      if (other) {
        problems.push({
          code: 'DUPLICATE_VERSION',
          file: script,
          message: `repeatable migration "${file.description}" is defined by both ${other.script} and ${script}`,
        });
        continue;
      }
      byRepeatable.set(file.description, file);
    }
    migrations.push(file);
  }
  return { migrations: sortMigrations(migrations), problems };
}

/** Versioned migrations by version, then repeatables by description (the order Flyway applies them). */
export function sortMigrations(list: MigrationFile[]): MigrationFile[] {
  return list.sort((a, b) => {
    if (a.version && b.version) return compareVersions(a.version, b.version);
    if (a.version) return -1;
    if (b.version) return 1;
    return a.description < b.description ? -1 : a.description > b.description ? 1 : 0;
  });
}

type ParsedName = Pick<MigrationFile, 'kind' | 'version' | 'description' | 'language'>;

function parseName(name: string): ParsedName | { error: string } {
  const repeatable = REPEATABLE.exec(name);
  if (repeatable) return { kind: 'repeatable', description: describe(repeatable[1] ?? ''), language: 'sql' };
  if (name.startsWith('R__')) return { error: 'repeatable migrations must be .sql files named R__<description>.sql' };
  const versioned = VERSIONED.exec(name);
  if (!versioned) {
    return { error: 'not a migration name: use V<version>__<description>.sql (or .ts/.js) or R__<description>.sql, e.g. V1.2__add_orders.sql' };
  }
  const version = parseVersion(versioned[1] ?? '');
  if (!version) return { error: `"${versioned[1]}" is not a version: use numbers separated by . or _, e.g. V1.2__add_orders.sql` };
  const description = describe(versioned[2] ?? '');
  if (!description) return { error: 'the description after "__" is empty' };
  return { kind: 'versioned', version, description, language: (versioned[3] ?? 'sql') as MigrationLanguage };
}

function describe(raw: string): string {
  return raw.replace(/_/g, ' ').trim();
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const full = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIPPED_DIRS.has(e.name)) out.push(...(await listFiles(full)));
    } else if (e.isFile()) {
      out.push(full);
    }
  }
  return out;
}
