import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ApiMode } from './write-gate.ts';

/** What the state file holds: `{"mode":"maintenance","recordedAt":"2024-05-01T12:00:00.000Z"}`. */
interface ModeRecord {
  readonly mode: ApiMode;
  /** When it was last written (also at each start); for a person reading the file, never used to decide anything. */
  readonly recordedAt: string;
}

/**
 * Reads the mode recorded in `file`, or `undefined` when there is no such file (the API was never
 * put in a mode with it). Anything else, a file that cannot be read or does not hold a mode, throws:
 * guessing `normal` there could let writes through while an upgrade believes the API quiesced.
 *
 * @example
 * ```ts
 * const mode = (await readModeFile('/var/lib/shop/mode.json')) ?? 'normal';
 * ```
 */
export async function readModeFile(file: string): Promise<ApiMode | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read the state file ${file}: ${(error as Error).message}`, { cause: error });
  }
  let mode: unknown;
  try {
    mode = (JSON.parse(text) as Partial<ModeRecord> | null)?.mode;
  } catch {
    mode = undefined;
  }
  if (mode !== 'normal' && mode !== 'maintenance') {
    throw new Error(`the state file ${file} does not hold {"mode":"normal"|"maintenance"}; fix it or delete it (deleting it starts the API in normal mode)`);
  }
  return mode;
}

/**
 * Records `mode` in `file` so that it survives a crash at any point: the record is written to a
 * temporary file beside it and flushed, then renamed over `file` (a rename within a directory is
 * atomic), then the directory is flushed so the rename itself is on disk. A reader sees the old
 * record or the new one, never half of one. Creates the directory if need be.
 *
 * @example
 * ```ts
 * await writeModeFile('/var/lib/shop/mode.json', 'maintenance'); // only then answer the PUT
 * ```
 */
export async function writeModeFile(file: string, mode: ApiMode): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const record: ModeRecord = { mode, recordedAt: new Date().toISOString() };
  // Unique per write: two processes pointed at the same file (a mistake) must not share a temp file.
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await fs.open(temp, 'w', 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(record)}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dir);
}

/** Flushes a directory's entries (the rename). Some platforms (Windows) cannot open one: nothing to do there. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') throw error;
  } finally {
    await handle?.close();
  }
}
