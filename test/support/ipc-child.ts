import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { defined } from './defined.ts';

/**
 * A helper process of a test (the example API, the load writer) with a request/answer channel over
 * Node's IPC, so that what the test measures does not share the test's event loop. The child calls
 * {@link serveParent}; the parent {@link startChild}.
 */
export interface IpcChild<Ready> {
  /** What the child said when it was ready (a URL, say). */
  readonly ready: Ready;
  readonly pid: number;
  /** Sends `op` with `args` and resolves with the child's answer; rejects with its error, or if it exits first. */
  request<T>(op: string, args?: Record<string, unknown>): Promise<T>;
  /** Resolves when the child has exited (however it ended). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a last request (`op`, if given), lets go of the child, which then exits, and waits for it; answers the request's value. */
  finish<T>(op?: string): Promise<T | undefined>;
  /** Kills it (SIGKILL) if it is still running, and waits for it to be gone. */
  kill(): Promise<void>;
}

interface Answer {
  readonly id?: number;
  readonly ready?: unknown;
  readonly value?: unknown;
  readonly error?: string;
}

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
/** Longest a child may take to start (tsx compiling it on a busy machine). */
const START_TIMEOUT_MS = 60_000;

/**
 * Forks `script` (TypeScript, run with tsx) with `args`, and resolves once it has called
 * {@link serveParent}. Its stderr is kept for the error when it fails; its stdout is discarded.
 *
 * @example
 * ```ts
 * const api = await startChild<{ url: string }>(SCRIPT, [databaseUrl], 'shop API');
 * const stats = await api.request<{ acknowledged: number }>('stats');
 * await api.finish('close');
 * ```
 */
export async function startChild<Ready>(script: string, args: readonly string[], label: string): Promise<IpcChild<Ready>> {
  const child: ChildProcess = fork(script, [...args], { execArgv: ['--import', TSX], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let gone: Error | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      gone = new Error(`${label} (pid ${child.pid}) exited (${signal ?? `code ${code}`})${stderr ? `:\n${stderr}` : ''}`);
      for (const p of pending.values()) p.reject(gone);
      pending.clear();
      resolve({ code, signal });
    });
  });
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start within ${START_TIMEOUT_MS} ms:\n${stderr}`)), START_TIMEOUT_MS);
    child.on('message', (message: Answer) => {
      if ('ready' in message) {
        clearTimeout(timer);
        resolve(message.ready as Ready);
        return;
      }
      if (message.id === undefined) return;
      const p = pending.get(message.id);
      if (!p) return;
      pending.delete(message.id);
      if (message.error !== undefined) p.reject(new Error(`${label}: ${message.error}`));
      else p.resolve(message.value);
    });
    // `gone` is set by the time `exited` resolves.
    void exited.then(() => {
      clearTimeout(timer);
      reject(gone ?? new Error(`${label} exited before it was ready`));
    });
  }).catch(async (error: unknown) => {
    child.kill('SIGKILL');
    await exited;
    throw error;
  });
  function request<T>(op: string, requestArgs: Record<string, unknown> = {}): Promise<T> {
    if (gone) return Promise.reject(gone);
    const id = ++nextId;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, op, ...requestArgs });
    });
  }
  return {
    ready,
    pid: defined(child.pid, `the pid of ${label}`),
    exited,
    request,
    async finish<T>(op?: string) {
      const value = op === undefined ? undefined : await request<T>(op);
      if (!gone && child.connected) child.disconnect();
      await exited;
      return value;
    },
    async kill() {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * The child's side: says it is ready with `ready`, then answers each request with its handler.
 * The child exits when the parent goes away (its IPC channel closes), so it is never left behind.
 */
export function serveParent(
  ready: unknown,
  handlers: Record<string, (args: Record<string, unknown>) => Promise<unknown>>,
  onParentGone: () => Promise<void>,
): void {
  const send = (message: Answer) => process.send?.(message);
  process.on('message', (message: { id: number; op: string } & Record<string, unknown>) => {
    const handler = handlers[message.op];
    if (!handler) {
      send({ id: message.id, error: `no such request: ${message.op}` });
      return;
    }
    handler(message).then(
      (value) => send({ id: message.id, value: value ?? null }),
      (error: unknown) => send({ id: message.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  process.on('disconnect', () => {
    void onParentGone().finally(() => process.exit(0));
  });
  send({ ready });
}
