import { randomBytes } from 'node:crypto';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mustRun, postgresUserIds, runProgram } from './exec.ts';
import type { PgBinDir } from './installations.ts';

/** A PostgreSQL server this benchmark started in a temp folder, stopped and deleted by `stop()`. */
export interface PrivateCluster {
  /** Superuser URL on its `postgres` database (holds the password: never print it). */
  readonly url: string;
  readonly port: number;
  /** The temp folder holding the data directory, the log and anything else the caller puts there. */
  readonly root: string;
  stop(): Promise<void>;
}

/**
 * Creates a cluster with `initdb` from `bin` in a new temp folder and starts it on a free 127.0.0.1
 * port (TCP only, password authentication), as the `postgres` OS user when we are root. Settings are
 * the version's defaults apart from where it listens. `stop()` shuts it down (fast) and deletes the folder.
 *
 * @example
 * ```ts
 * const cluster = await startPrivateCluster(bin, log);
 * try { await connectPg(cluster.url); } finally { await cluster.stop(); }
 * ```
 */
export async function startPrivateCluster(bin: PgBinDir, log: (line: string) => void): Promise<PrivateCluster> {
  const ids = await postgresUserIds();
  const asServerUser = ids ? { uid: ids.uid, gid: ids.gid } : {};
  const root = await mkdtemp(path.join(os.tmpdir(), `safeshift-bench-pg${bin.major}-`));
  const dataDir = path.join(root, 'data');
  const logFile = path.join(root, 'server.log');
  const password = randomBytes(18).toString('base64url');
  let started = false;
  const stop = async (): Promise<void> => {
    if (started) {
      const ran = await runProgram(path.join(bin.dir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '120'], asServerUser);
      if (ran.code !== 0) log(`snapshot-clone-1gb: pg_ctl stop exited with ${ran.code}: ${ran.stderr.trim()}`);
      started = false;
    }
    await rm(root, { recursive: true, force: true });
  };
  try {
    // mkdtemp makes it 0700 and ours: the server's user must own it to create its data directory.
    if (ids) await chown(root, ids.uid, ids.gid);
    const pwFile = path.join(root, 'pw');
    await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
    if (ids) await chown(pwFile, ids.uid, ids.gid);
    await mustRun(path.join(bin.dir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwFile}`, '-E', 'UTF8'], asServerUser);
    await rm(pwFile, { force: true });
    const port = await freePort();
    // Appended: later lines win. No unix socket, so nothing clashes with a system server's /var/run/postgresql.
    await writeFile(
      path.join(dataDir, 'postgresql.conf'),
      `\n# safeshift bench\nlisten_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = ''\n`,
      { flag: 'a' },
    );
    await mustRun(path.join(bin.dir, 'pg_ctl'), ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60'], asServerUser);
    started = true;
    log(`snapshot-clone-1gb: started a private PostgreSQL ${bin.major} (${bin.dir}) in ${root} on 127.0.0.1:${port}`);
    const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    return { url, port, root, stop };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

/** A port nothing listens on right now (the OS picks it; the server binds it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}
