import type { MigrationFile } from '../discover.ts';
import { parseDuration } from '../directives.ts';
import type { SqlStatement } from '../statements.ts';
import { nodeAs } from './nodes.ts';
import type { LockTimeout } from './rule.ts';

/** What safeshift sets per migration when neither the run nor the migration says otherwise. */
const DEFAULT_LOCK_TIMEOUT_MS = 5000;

/**
 * Follows the lock timeout in force through a migration: it starts at the migration's
 * `-- safeshift:lock-timeout` directive or the run's default, and a `SET lock_timeout` or `RESET`
 * in the SQL changes it from the next statement on.
 *
 * @example
 * ```ts
 * const timeout = new LockTimeoutTracker(file, { defaultLockTimeoutMs: 5000 });
 * for (const statement of statements) {
 *   if (timeout.current.ms === 0) console.log(`line ${statement.line} runs without a lock timeout`);
 *   timeout.after(statement);
 * }
 * ```
 */
export class LockTimeoutTracker {
  private state: LockTimeout;

  constructor(file: MigrationFile, options: { readonly defaultLockTimeoutMs?: number | undefined }) {
    const directive = file.directives.lockTimeoutMs;
    if (directive !== undefined) {
      this.state = {
        ms: directive,
        source: '`-- safeshift:lock-timeout 0` turns it off for this migration',
        remedy: 'set one in the leading comments, e.g. `-- safeshift:lock-timeout 5s`',
      };
    } else {
      this.state = {
        ms: options.defaultLockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
        source: "the run's default lock timeout is 0",
        remedy: 'set one for this migration with `-- safeshift:lock-timeout 5s` in its leading comments, or give the run a non-zero default',
      };
    }
  }

  /** The timeout in force for the next statement. */
  get current(): LockTimeout {
    return this.state;
  }

  /** Takes account of a statement that has run. */
  after(statement: SqlStatement): void {
    const set = nodeAs(statement.node, 'VariableSetStmt');
    if (!set) return;
    const line = statement.line;
    if (set.kind === 'VAR_RESET_ALL' || (set.name === 'lock_timeout' && (set.kind === 'VAR_RESET' || set.kind === 'VAR_SET_DEFAULT'))) {
      // RESET goes back to the server's (or role's) setting, not to the value safeshift set; usually none.
      this.state = {
        ms: 0,
        source: `the RESET on line ${line} puts back the server's lock_timeout, which is usually 0 (none)`,
        remedy: `replace the RESET on line ${line} with \`SET lock_timeout = '5s'\``,
      };
      return;
    }
    if (set.name !== 'lock_timeout' || set.kind !== 'VAR_SET_VALUE') return;
    const ms = settingMs(set.args?.[0]);
    if (ms === undefined) return;
    this.state = {
      ms,
      source: `the \`SET lock_timeout\` on line ${line} turns it off`,
      remedy: `remove the \`SET lock_timeout\` on line ${line} (safeshift sets one for each migration) or give it a value, e.g. \`SET lock_timeout = '5s'\``,
    };
  }
}

/** The value of a `SET lock_timeout = …` in milliseconds: a bare number is milliseconds, as in Postgres. */
function settingMs(arg: Parameters<typeof nodeAs>[0]): number | undefined {
  const constant = nodeAs(arg, 'A_Const');
  if (!constant) return undefined;
  if (constant.ival) return constant.ival.ival ?? 0;
  if (constant.fval?.fval !== undefined) return Number(constant.fval.fval);
  const text = constant.sval?.sval?.trim();
  if (text === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  return parseDuration(text);
}
