import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';

/** What a finished program left: its exit code (null when a signal ended it) and its output. */
export interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Run as this user (only root may): PostgreSQL's server programs refuse to run as root. */
  readonly uid?: number;
  readonly gid?: number;
}

/** Output kept per stream: enough for an error message, never a dump's worth of bytes. */
const KEEP_CHARS = 64 * 1024;

/**
 * Runs a program without a shell and collects its output. Rejects only when it could not be started
 * (ENOENT: not installed); a non-zero exit is in the result for the caller to judge.
 *
 * @example
 * ```ts
 * const { code, stdout } = await runProgram('/usr/lib/postgresql/15/bin/pg_dump', ['--version']);
 * ```
 */
export function runProgram(file: string, args: readonly string[], opts: RunOptions = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      if (stdout.length < KEEP_CHARS) stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < KEEP_CHARS) stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Like {@link runProgram}, but a non-zero exit is an error that quotes the program's stderr. */
export async function mustRun(file: string, args: readonly string[], opts: RunOptions = {}): Promise<Ran> {
  const ran = await runProgram(file, args, opts);
  if (ran.code !== 0) throw new Error(`${file} ${args.join(' ')} exited with ${ran.code}: ${(ran.stderr || ran.stdout).trim().slice(-2000)}`);
  return ran;
}

const execFileAsync = promisify(execFile);

/** The uid and gid of the `postgres` OS user when this process is root (the server refuses root), else undefined. */
export async function postgresUserIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const id = async (flag: string): Promise<number> => Number.parseInt((await execFileAsync('id', [flag, 'postgres'])).stdout, 10);
  try {
    return { uid: await id('-u'), gid: await id('-g') };
  } catch {
    throw new Error(
      'running as root, but there is no "postgres" OS user to run a private PostgreSQL server as (PostgreSQL refuses root); ' +
        'create one, or run the benchmark as an ordinary user',
    );
  }
}
