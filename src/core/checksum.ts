import { createHash } from 'node:crypto';

/**
 * Normalises a migration's text before it is checksummed or run: a UTF-8 byte-order mark is dropped
 * and CRLF/CR line endings become LF, so a Windows checkout has the same checksum as a Linux one.
 */
export function normaliseText(text: string): string {
  return text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
}

/**
 * The checksum recorded in the history: SHA-256 (hex) of the normalised text.
 *
 * @example
 * ```ts
 * checksum('select 1;\r\n') === checksum('select 1;\n') // true
 * ```
 */
export function checksum(text: string): string {
  return createHash('sha256').update(normaliseText(text), 'utf8').digest('hex');
}
