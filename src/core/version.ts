import { OptionError } from './errors.ts';

/**
 * Migration versions: parts separated by `.` or `_`, compared part by part as numbers,
 * so `1.10` comes after `1.9` and `1_2` is `1.2`. Trailing zero parts do not count (`1.0` is `1`),
 * as in Flyway, so two files named `V1` and `V1.0` are duplicates.
 */
export interface Version {
  /** The version as the file wrote it, with `_` turned into `.` (`1.10`). */
  readonly text: string;
  readonly parts: readonly bigint[];
}

const VERSION_TEXT = /^\d+([._]\d+)*$/;

/**
 * Parses a version, or returns undefined when the text is not one.
 *
 * @example
 * ```ts
 * compareVersions(parseVersion('1.10')!, parseVersion('1_9')!) // 1
 * ```
 */
export function parseVersion(text: string): Version | undefined {
  if (!VERSION_TEXT.test(text)) return undefined;
  const dotted = text.replace(/_/g, '.');
  const parts = dotted.split('.').map((p) => BigInt(p));
  while (parts.length > 1 && parts[parts.length - 1] === 0n) parts.pop();
  return { text: dotted, parts };
}

/** Orders two versions: negative when `a` comes first, 0 when they are the same version. */
export function compareVersions(a: Version, b: Version): number {
  const n = Math.max(a.parts.length, b.parts.length);
  for (let i = 0; i < n; i++) {
    const x = a.parts[i] ?? 0n;
    const y = b.parts[i] ?? 0n;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** The canonical key of a version: equal versions (`1.0`, `1`, `01`) share it. */
export function versionKey(v: Version): string {
  return v.parts.join('.');
}

/** Parses a version given by a person (`--target`, `--app-version`), or throws a clear error. */
export function requireVersion(text: string, what: string): Version {
  const v = parseVersion(text.trim());
  if (!v) throw new OptionError(`${what} "${text}" is not a version: use numbers separated by dots, like 3 or 1.10`);
  return v;
}
