import { OptionError } from './errors.ts';

/**
 * Quotes an identifier by Postgres rules (double quotes doubled), so a name given on the command line
 * can never become SQL. The same rule `pg`'s `escapeIdentifier` applies.
 *
 * @example
 * ```ts
 * escapeIdentifier('my"schema') // "my""schema"
 * ```
 */
export function escapeIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quotes a string literal by Postgres rules, for the few places a parameter cannot be used. */
export function escapeLiteral(value: string): string {
  const hasBackslash = value.includes('\\');
  const body = value.replace(/'/g, "''").replace(/\\/g, '\\\\');
  return hasBackslash ? ` E'${body}'` : `'${body}'`;
}

/**
 * Checks a schema or table name given as an option: any characters are allowed (they are quoted),
 * but not an empty name, a NUL byte or more than Postgres's 63 bytes, which it would silently truncate.
 */
export function checkIdentifierOption(name: string, option: string): string {
  if (name.length === 0) throw new OptionError(`${option} must not be empty`);
  if (name.includes('\0')) throw new OptionError(`${option} must not contain a NUL character`);
  if (Buffer.byteLength(name, 'utf8') > 63) {
    throw new OptionError(`${option} "${name}" is longer than PostgreSQL's 63-byte limit for names; use a shorter one`);
  }
  return name;
}
