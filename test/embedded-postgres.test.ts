import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedServerStatus, ensureEmbeddedServer, stopEmbeddedServer, type EmbeddedServer } from '../src/adapters/local/embedded-postgres.ts';
import { connectPg } from '../src/adapters/local/pg-connection.ts';
import { SafeshiftError } from '../src/core/errors.ts';
import { defined } from './support/defined.ts';

const MODULE = pathToFileURL(path.resolve('src/adapters/local/embedded-postgres.ts')).href;

/** ensureEmbeddedServer in another Node process, as a second CLI invocation would call it, at `startAt`. */
function ensureInChild(dataDir: string, startAt: number): Promise<EmbeddedServer> {
  const code = `const m = await import(${JSON.stringify(MODULE)});
    await new Promise((r) => setTimeout(r, ${startAt} - Date.now()));
    const s = await m.ensureEmbeddedServer({ dataDir: ${JSON.stringify(dataDir)} });
    process.stdout.write(JSON.stringify(s));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('error', reject);
    child.on('close', (status) => (status === 0 ? resolve(JSON.parse(out) as EmbeddedServer) : reject(new Error(`child exited ${status}: ${err}`))));
  });
}

/** The pid of a process that has exited, for a lock whose owner died. */
function deadPid(): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', '']);
    child.on('exit', () => resolve(child.pid ?? 999_999));
  });
}

// A cluster of its own (not the run's shared one), since these tests stop and restart it.
describe('embedded PostgreSQL', () => {
  let root: string;
  let dataDir: string;

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'safeshift-embedded-test-'));
    await fs.chmod(root, 0o755); // the server may run as "postgres" and must enter it
    dataDir = path.join(root, 'pg');
  });

  afterAll(async () => {
    await stopEmbeddedServer({ dataDir }).catch(() => undefined);
    await fs.rm(root, { recursive: true, force: true });
  });

  it('creates the cluster on first use, then reuses the running server', async () => {
    const lines: string[] = [];
    const first = await ensureEmbeddedServer({ dataDir, log: (line) => lines.push(line) });
    expect(first.started).toBe(true);
    expect(first.url).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/postgres$/);

    const second = await ensureEmbeddedServer({ dataDir });
    expect(second).toEqual({ ...first, started: false });

    const password = decodeURIComponent(new URL(first.url).password);
    expect(password.length).toBeGreaterThanOrEqual(24);
    expect(lines.join('\n')).not.toContain(password);
    const stateFile = path.join(root, 'embedded.json');
    expect((await fs.stat(stateFile)).mode & 0o777).toBe(0o600);

    const client = await connectPg(first.url);
    try {
      const { rows } = await client.query<{ listen: string; max: string; sockets: string }>(
        `select current_setting('listen_addresses') as listen, current_setting('max_connections') as max,
                current_setting('unix_socket_directories') as sockets`,
      );
      const { max, ...others } = defined(rows[0], 'the settings row');
      expect(others).toEqual({ listen: '127.0.0.1', sockets: '' });
      expect(typeof max).toBe('string');
      expect(Number(max)).toBeGreaterThanOrEqual(100);
    } finally {
      await client.end();
    }
  });

  it('ends with one server when several processes start it at the same moment', async () => {
    await stopEmbeddedServer({ dataDir });
    // Child processes take a moment to load: everyone waits for the same instant, then calls.
    const startAt = Date.now() + 3000;
    const atStart = (): Promise<EmbeddedServer> =>
      new Promise((resolve) => setTimeout(resolve, startAt - Date.now())).then(() => ensureEmbeddedServer({ dataDir }));
    const results = await Promise.all([ensureInChild(dataDir, startAt), ensureInChild(dataDir, startAt), atStart(), atStart()]);
    expect(new Set(results.map((r) => r.port)).size).toBe(1);
    expect(results.filter((r) => r.started)).toHaveLength(1);
    const status = await embeddedServerStatus({ dataDir });
    expect(status).toEqual({ running: true, port: results[0].port, dataDir });
  });

  it('breaks a lock whose owner died', async () => {
    await stopEmbeddedServer({ dataDir });
    // The lock's layout is internal; a crashed process leaves exactly this behind.
    const lockDir = `${dataDir}.lock`;
    await fs.mkdir(lockDir);
    await fs.writeFile(path.join(lockDir, 'owner.json'), JSON.stringify({ pid: await deadPid(), host: os.hostname(), at: Date.now(), token: 'dead' }));
    const server = await ensureEmbeddedServer({ dataDir });
    expect(server.started).toBe(true);
    await expect(fs.access(lockDir)).rejects.toThrow();
  });

  it('reports its status and stops', async () => {
    const server = await ensureEmbeddedServer({ dataDir });
    expect(await embeddedServerStatus({ dataDir })).toEqual({ running: true, port: server.port, dataDir });

    expect(await stopEmbeddedServer({ dataDir })).toBe(true);
    expect(await embeddedServerStatus({ dataDir })).toEqual({ running: false, dataDir });
    expect(await stopEmbeddedServer({ dataDir })).toBe(false);
    await expect(connectPg(server.url, { connectTimeoutMs: 2000 })).rejects.toMatchObject({ code: 'CONNECTION_FAILED' });

    // The cluster and its password survive a stop: the next call starts the same data again.
    const again = await ensureEmbeddedServer({ dataDir });
    expect(again.started).toBe(true);
    expect(new URL(again.url).password).toBe(new URL(server.url).password);
    expect(await stopEmbeddedServer({ dataDir })).toBe(true);
  });

  it('explains a server that will not start, with the end of its log', async () => {
    const broken = path.join(root, 'broken', 'pg');
    const error = await ensureEmbeddedServer({ dataDir: broken, settings: { shared_buffers: 'lots' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafeshiftError);
    expect(error).toMatchObject({ code: 'EMBEDDED_POSTGRES_FAILED' });
    const { message } = error as SafeshiftError;
    expect(message).toMatch(/Could not start the embedded PostgreSQL/);
    expect(message).toMatch(/invalid value for parameter "shared_buffers"/);
    expect(message).not.toMatch(/\n\s+at /);
    expect(await embeddedServerStatus({ dataDir: broken })).toMatchObject({ running: false });
  });

  it('reports a data directory that was never created as not running', async () => {
    const missing = path.join(root, 'nothing-here', 'pg');
    expect(await embeddedServerStatus({ dataDir: missing })).toEqual({ running: false, dataDir: missing });
    expect(await stopEmbeddedServer({ dataDir: missing })).toBe(false);
  });
});
