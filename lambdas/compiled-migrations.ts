import { existsSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BundleFolders } from './environment.ts';

/**
 * Where the compiled copy of a `.ts` migration is, when `url` names one inside `migrationsDir`:
 * `<migrations>/sub/V3__x.ts` → `<migrations>/.compiled/sub/V3__x.mjs`. Undefined for anything else.
 *
 * @example
 * ```ts
 * compiledMigrationUrl('file:///var/task/migrations/V3__totals.ts', '/var/task/migrations')
 * // 'file:///var/task/migrations/.compiled/V3__totals.mjs'
 * ```
 */
export function compiledMigrationUrl(url: string, migrationsDir: string): string | undefined {
  if (!url.startsWith('file:') || !url.endsWith('.ts') || url.endsWith('.d.ts')) return undefined;
  const file = fileURLToPath(url);
  const relative = path.relative(migrationsDir, file);
  if (relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  return pathToFileURL(path.join(migrationsDir, BundleFolders.compiled, relative.replace(/\.ts$/, '.mjs'))).href;
}

const registered = new Set<string>();

/**
 * Makes `import()` of a `.ts` migration load the JavaScript compiled from it at bundle time. The
 * Lambda has no TypeScript loader, and the migration engine must keep reading the `.ts` file itself:
 * its name is what the history records and its text is what the checksum covers, so the compiled
 * file is substituted only where the module is loaded. Registered once per process.
 *
 * Node 22.15+ and 24 have synchronous in-thread hooks (`module.registerHooks`); older versions get
 * the same resolve hook through `module.register` on the loader thread.
 *
 * @example
 * ```ts
 * useCompiledMigrations('/var/task/migrations');
 * await import(pathToFileURL('/var/task/migrations/V3__totals.ts').href); // runs .compiled/V3__totals.mjs
 * ```
 */
export function useCompiledMigrations(migrationsDir: string): void {
  const dir = path.resolve(migrationsDir);
  if (registered.has(dir)) return;
  registered.add(dir);
  interface ResolveResult {
    url: string;
    format?: string;
    shortCircuit?: boolean;
  }
  type Resolve = (specifier: string, context: unknown, next: (s: string, c: unknown) => ResolveResult) => ResolveResult;
  const registerHooks = (module as unknown as { registerHooks?: (hooks: { resolve: Resolve }) => unknown }).registerHooks;
  if (typeof registerHooks === 'function') {
    registerHooks({
      resolve: (specifier, context, next) => {
        const compiled = compiledMigrationUrl(specifier, dir);
        if (compiled && existsSync(fileURLToPath(compiled))) return { url: compiled, format: 'module', shortCircuit: true };
        return next(specifier, context);
      },
    });
    return;
  }
  // The loader thread cannot share this module's functions, so the same mapping is written out here.
  const hooks = `
    import { existsSync } from 'node:fs';
    import { fileURLToPath } from 'node:url';
    let prefix; let compiled;
    export async function initialize(data) { prefix = data.prefix; compiled = data.compiled; }
    export async function resolve(specifier, context, next) {
      if (specifier.startsWith(prefix) && specifier.endsWith('.ts') && !specifier.endsWith('.d.ts')) {
        const url = compiled + specifier.slice(prefix.length, -3) + '.mjs';
        if (existsSync(fileURLToPath(url))) return { url, format: 'module', shortCircuit: true };
      }
      return next(specifier, context);
    }`;
  const prefix = `${pathToFileURL(dir).href}/`;
  const compiled = `${pathToFileURL(path.join(dir, BundleFolders.compiled)).href}/`;
  module.register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { prefix, compiled } });
}
