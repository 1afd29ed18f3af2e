import { crc32 } from 'node:zlib';

/**
 * The checksum Flyway records for a SQL migration: CRC-32 over the UTF-8 bytes of each line with its
 * line break removed (a leading byte-order mark dropped), as a signed 32-bit integer. Comparing it
 * with the file on disk proves the file is the one Flyway applied before safeshift adopts it.
 *
 * @example
 * ```ts
 * flywayChecksum('select 1;\n') // the value Flyway stores for that file
 * ```
 */
export function flywayChecksum(text: string): number {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  // A final line break does not start another line.
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  let crc = 0;
  for (const line of lines) crc = crc32(Buffer.from(line, 'utf8'), crc);
  return crc | 0;
}
