import type { Problem } from './errors.ts';

/** The phase of a migration: `expand` keeps old code working, `contract` removes what old code used. */
export type Phase = 'expand' | 'contract';

/** `-- safeshift:allow <rule> <reason>`: a lint finding acknowledged, with the reason why. */
export interface Allow {
  readonly rule: string;
  readonly reason: string;
  /** 1-based line of the directive. */
  readonly line: number;
  /** True when written in the file's leading comments: it then covers the whole file. */
  readonly fileWide: boolean;
}

/** What a migration's directive comments ask for. */
export interface Directives {
  /** False for `-- safeshift:no-transaction`. */
  readonly transaction: boolean;
  readonly phase: Phase;
  /** From `-- safeshift:lock-timeout 5s`; undefined means the run's default. 0 disables it. */
  readonly lockTimeoutMs?: number;
  readonly allows: readonly Allow[];
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, sec: 1000, min: 60_000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration such as `5s`, `500ms`, `2min` or `0` into milliseconds, or undefined when it is not one.
 *
 * @example
 * ```ts
 * parseDuration('1.5s') // 1500
 * ```
 */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const unit = m[2] ?? (Number(m[1]) === 0 ? 'ms' : undefined);
  if (unit === undefined) return undefined;
  return Math.round(Number(m[1]) * (UNITS[unit] ?? 1));
}

const DIRECTIVE = /^(?:--|\/\/)\s*safeshift:(\S*)\s*(.*)$/;

/**
 * Reads the `safeshift:` directives of a migration's text (`--` comments in SQL, `//` in .ts/.js).
 * Directives other than `allow` must stand in the leading comments; anything wrong is returned
 * as a BAD_DIRECTIVE problem rather than silently ignored.
 */
export function parseDirectives(text: string, file: string): { directives: Directives; problems: Problem[] } {
  const problems: Problem[] = [];
  let transaction = true;
  let phase: Phase = 'expand';
  let lockTimeoutMs: number | undefined;
  const allows: Allow[] = [];
  let leading = true;
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    const lineNo = i + 1;
    const isComment = line.startsWith('--') || line.startsWith('//');
    if (line !== '' && !isComment) leading = false;
    const m = DIRECTIVE.exec(line);
    if (!m) return;
    const name = m[1] ?? '';
    const arg = (m[2] ?? '').trim();
    const bad = (message: string) => problems.push({ code: 'BAD_DIRECTIVE', message: `${file}:${lineNo}: ${message}`, file, line: lineNo });
    if (name === 'allow') {
      const [rule, ...reason] = arg.split(/\s+/).filter(Boolean);
      if (!rule || reason.length === 0) {
        bad('safeshift:allow needs a rule and a reason, e.g. "-- safeshift:allow drop-column the old column is unused since v41"');
      } else {
        allows.push({ rule, reason: reason.join(' '), line: lineNo, fileWide: leading });
      }
      return;
    }
    if (!leading) {
      bad(`safeshift:${name} must stand in the comments at the top of the file, before any SQL`);
      return;
    }
    switch (name) {
      case 'no-transaction':
        if (arg) bad('safeshift:no-transaction takes no argument');
        transaction = false;
        break;
      case 'phase':
        if (arg === 'expand' || arg === 'contract') phase = arg;
        else bad(`safeshift:phase must be "expand" or "contract", not "${arg}"`);
        break;
      case 'lock-timeout': {
        const ms = parseDuration(arg);
        if (ms === undefined) bad(`safeshift:lock-timeout needs a duration like 5s, 500ms or 0 (off), not "${arg}"`);
        else lockTimeoutMs = ms;
        break;
      }
      default:
        bad(`unknown directive safeshift:${name} (known: no-transaction, phase, lock-timeout, allow)`);
    }
  });
  const directives: Directives = lockTimeoutMs === undefined ? { transaction, phase, allows } : { transaction, phase, lockTimeoutMs, allows };
  return { directives, problems };
}
