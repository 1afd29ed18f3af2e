import { SafeshiftError } from '../src/core/errors.ts';

// Bundled in place of `libpg-query` (an esbuild alias) by the steps that never parse SQL, because
// the real package compiles a 1.7 MB WebAssembly parser as soon as it is imported. Only the two
// functions safeshift calls are here; reaching either means STEP_NEEDS is wrong about a step.

function notBundled(): SafeshiftError {
  return new SafeshiftError('INTERNAL', 'this step was bundled without the SQL parser; mark it `migrations: true` in lambdas/step-needs.ts');
}

/** Stands in for libpg-query's `parse`. */
export function parse(_sql: string): Promise<never> {
  return Promise.reject(notBundled());
}

/** Stands in for libpg-query's `scan`. */
export function scan(_sql: string): Promise<never> {
  return Promise.reject(notBundled());
}
