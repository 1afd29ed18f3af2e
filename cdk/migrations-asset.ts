import { cpSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { BundleFolders } from '../lambdas/environment.ts';
import { migrationsBundle, type BundledFile } from '../src/adapters/aws/sfn-migrations-checksum.ts';

/**
 * Lets a bundle that esbuild wrote as ESM load the CommonJS packages inside it (`pg`, the SQL
 * parser's loader) the way Node would: they call `require` and read `__dirname`.
 */
export const ESM_REQUIRE_BANNER = [
  "import { createRequire as __ssCreateRequire } from 'node:module';",
  "import { fileURLToPath as __ssFileURLToPath } from 'node:url';",
  "import { dirname as __ssDirname } from 'node:path';",
  'const require = __ssCreateRequire(import.meta.url);',
  'const __filename = __ssFileURLToPath(import.meta.url);',
  'const __dirname = __ssDirname(__filename);',
].join(' ');

/** The migrations and verify checks, laid out as a step's bundle holds them. */
export interface StagedMigrations {
  /** A folder with `migrations/` (and `.compiled/` inside it) and `verify/`. */
  readonly dir: string;
  readonly checksum: string;
  readonly files: readonly BundledFile[];
}

/**
 * Copies the migrations folder and the verify checks into a staging folder at synth time and
 * compiles every `.ts` migration to ESM with esbuild (its imports bundled in), into
 * `migrations/.compiled/`. The Lambda has no TypeScript loader; the `.ts` source stays beside the
 * compiled file because its name and text are what the history records and checksums.
 *
 * @example
 * ```ts
 * const staged = stageMigrations('migrations', 'verify');
 * staged.checksum; // what the stack outputs as MigrationsChecksum
 * ```
 */
export function stageMigrations(migrationsDir: string, verifyDir: string | undefined): StagedMigrations {
  const bundle = migrationsBundle(migrationsDir, verifyDir);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'safeshift-migrations-'));
  const migrations = path.join(dir, BundleFolders.migrations);
  // The whole folder, not only the migrations: a migration may read a file beside it.
  cpSync(path.resolve(migrationsDir), migrations, {
    recursive: true,
    filter: (source) => !path.basename(source).startsWith('.') && path.basename(source) !== 'node_modules',
  });
  mkdirSync(path.join(dir, BundleFolders.verify), { recursive: true });
  for (const file of bundle.files) {
    if (file.path.startsWith(`${BundleFolders.verify}/`)) cpSync(file.absolutePath, path.join(dir, file.path));
    if (file.path.startsWith(`${BundleFolders.migrations}/`) && file.path.endsWith('.ts')) {
      const relative = file.path.slice(BundleFolders.migrations.length + 1).replace(/\.ts$/, '.mjs');
      buildSync({
        entryPoints: [file.absolutePath],
        outfile: path.join(migrations, BundleFolders.compiled, relative),
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node22',
        banner: { js: ESM_REQUIRE_BANNER },
        logLevel: 'error',
      });
    }
  }
  return { dir, checksum: bundle.checksum, files: bundle.files };
}

/**
 * The SQL parser's WebAssembly file. Its loader reads it from the folder of the script that loads
 * it, so the steps that parse SQL get a copy next to their bundled handler.
 *
 * @example
 * ```ts
 * sqlParserWasm() // '/…/node_modules/libpg-query/wasm/libpg-query.wasm'
 * ```
 */
export function sqlParserWasm(): string {
  return createRequire(import.meta.url).resolve('libpg-query/wasm/libpg-query.wasm');
}
