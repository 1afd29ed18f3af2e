import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { checksum } from '../../core/checksum.ts';
import { SafeshiftError } from '../../core/errors.ts';

/** One file a deployment bundles, as the checksum covers it. */
export interface BundledFile {
  /** `migrations/<path>` or `verify/<name>`, with `/` separators. */
  readonly path: string;
  readonly absolutePath: string;
  /** The same checksum the history records for a migration (SHA-256 of the normalised text). */
  readonly checksum: string;
}

/** What a deployment upgrades with, and its one checksum. */
export interface MigrationsBundle {
  readonly files: readonly BundledFile[];
  /** SHA-256 (hex) over every file's path and checksum, in path order. */
  readonly checksum: string;
}

// The rules discovery (src/core/discover.ts) and verify (src/core/verify.ts) read files by. They are
// repeated here because the CDK construct needs the answer synchronously, inside a constructor.
const MIGRATION_FILE = /\.(sql|ts|js)$/;
const SKIPPED_DIRS = new Set(['verify', 'node_modules']);

/**
 * The migrations and verify checks a deployment bundles, and their checksum. The SafeUpgrade
 * construct computes it at synth time (a stack output and an environment variable of each step);
 * `safeshift upgrade --stack NAME --dir migrations` computes it over the local folder and refuses to
 * start when they differ, so a pipeline upgrades with exactly the migrations it deployed. Line
 * endings do not count (the same normalisation as the history's checksums).
 *
 * @example
 * ```ts
 * const { checksum, files } = migrationsBundle('examples/migrations', 'examples/verify');
 * files.map((f) => f.path); // ['migrations/R__order_summary_view.sql', …, 'verify/orders_reference_customers.sql']
 * ```
 */
export function migrationsBundle(migrationsDir: string, verifyDir?: string): MigrationsBundle {
  const root = path.resolve(migrationsDir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new SafeshiftError('MIGRATIONS_DIR_NOT_FOUND', `migrations folder ${migrationsDir} does not exist or is not a folder`);
  }
  const files: BundledFile[] = [];
  for (const file of walk(root)) {
    const name = path.basename(file);
    if (!MIGRATION_FILE.test(name) || name.endsWith('.d.ts')) continue;
    files.push(entry(`migrations/${path.relative(root, file).split(path.sep).join('/')}`, file));
  }
  if (verifyDir && existsSync(verifyDir)) {
    for (const name of readdirSync(verifyDir)
      .filter((n) => n.endsWith('.sql'))
      .sort()) {
      files.push(entry(`verify/${name}`, path.join(verifyDir, name)));
    }
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const hash = createHash('sha256');
  for (const f of files) hash.update(`${f.path}\n${f.checksum}\n`);
  return { files, checksum: hash.digest('hex') };
}

/**
 * The verify folder of a migrations folder when none is named: its sibling `verify/`, as locally.
 *
 * @example
 * ```ts
 * defaultVerifyDir('examples/migrations') // '/abs/examples/verify' when that folder exists
 * ```
 */
export function defaultVerifyDir(migrationsDir: string): string | undefined {
  const sibling = path.resolve(migrationsDir, '..', 'verify');
  return existsSync(sibling) ? sibling : undefined;
}

function entry(bundlePath: string, absolutePath: string): BundledFile {
  return { path: bundlePath, absolutePath, checksum: checksum(readFileSync(absolutePath, 'utf8')) };
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.name.startsWith('.')) continue;
    const full = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIPPED_DIRS.has(e.name)) out.push(...walk(full));
    } else if (e.isFile()) {
      out.push(full);
    }
  }
  return out;
}
