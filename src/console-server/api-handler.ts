import type { IncomingMessage, ServerResponse } from 'node:http';
import { SafeshiftError } from '../core/errors.ts';
import type { ConsoleBackend, RunProgress } from './backend.ts';
import { redactSecrets, redactText } from './redact.ts';
import type { RequestGuard } from './request-guard.ts';

/** A request body larger than this is refused: a restore request is a few dozen bytes. */
const MAX_BODY_BYTES = 16 * 1024;
const SSE_HEARTBEAT_MS = 15_000;

/** The HTTP status each refusal code of the backend is answered with. */
const STATUS_OF: Readonly<Record<string, number>> = {
  BAD_OPTION: 400,
  BAD_REQUEST: 400,
  CONFIRMATION_MISMATCH: 400,
  SNAPSHOT_NOT_FOUND: 404,
  DATABASE_NOT_FOUND: 404,
  RUN_NOT_FOUND: 404,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  LOCKED: 409,
  SNAPSHOT_FOREIGN: 422,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_LARGE: 413,
};

/** An answer the API gives on purpose, with a stable code. */
class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * The console's JSON API over a {@link ConsoleBackend}. Every body is redacted on the way out, whatever
 * the backend already did, and sent `Cache-Control: no-store` (by the server).
 *
 * - `GET /api/info` · `GET /api/databases`
 * - `GET /api/runs?database=` · `GET /api/runs/:id` · `GET /api/runs/:id/events` (Server-Sent Events)
 * - `GET /api/snapshots?database=` · `GET /api/quiesced?database=` · `GET /api/rehearsals?database=`
 * - `POST /api/restore` `{ database, snapshotId, confirm }` → `202 { runId }`; needs the same origin and the token
 *
 * @example
 * ```ts
 * const api = new ApiHandler(backend, guard);
 * if (url.pathname.startsWith('/api/')) return api.handle(req, res, url);
 * ```
 */
export class ApiHandler {
  private readonly streams = new Set<ServerResponse>();

  constructor(
    private readonly backend: ConsoleBackend,
    private readonly guard: RequestGuard,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    try {
      const path = url.pathname.replace(/\/+$/, '');
      if (path === '/api/restore') {
        if (req.method !== 'POST') throw new ApiError('METHOD_NOT_ALLOWED', 'POST a JSON body { database, snapshotId, confirm }');
        await this.restore(req, res);
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new ApiError('METHOD_NOT_ALLOWED', `${req.method ?? '?'} is not allowed on ${path}`);
      const run = /^\/api\/runs\/([A-Za-z0-9._:-]{1,200})(\/events)?$/.exec(path);
      // The id group is not optional: it is there whenever the path matched.
      const runId = run?.[1];
      if (runId !== undefined) {
        if (run?.[2]) {
          await this.events(req, res, runId);
          return;
        }
        const view = await this.backend.getRun(runId);
        if (!view) throw new ApiError('RUN_NOT_FOUND', `no run ${runId} is recorded`);
        sendJson(res, 200, view);
        return;
      }
      switch (path) {
        case '/api/info':
          sendJson(res, 200, { description: this.backend.description, exposed: this.guard.exposed });
          return;
        case '/api/databases':
          sendJson(res, 200, await this.backend.listDatabases());
          return;
        case '/api/runs':
          sendJson(res, 200, await this.backend.listRuns(database(url), limit(url)));
          return;
        case '/api/snapshots':
          sendJson(res, 200, await this.backend.listSnapshots(database(url)));
          return;
        case '/api/quiesced':
          sendJson(res, 200, await this.backend.listQuiesced(database(url)));
          return;
        case '/api/rehearsals':
          sendJson(res, 200, await this.backend.listRehearsals(database(url)));
          return;
        default:
          throw new ApiError('NOT_FOUND', `no API at ${path}`);
      }
    } catch (error) {
      sendError(res, error);
    }
  }

  /** Ends every open progress stream (the server is closing). */
  closeStreams(): void {
    for (const res of this.streams) res.end();
    this.streams.clear();
  }

  private async restore(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refusal = this.guard.checkMutation(req);
    if (refusal) {
      sendJson(res, 403, { error: refusal });
      return;
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'send the request as Content-Type: application/json');
    }
    const body = await readJson(req);
    const { database, snapshotId, confirm } = body as Record<string, unknown>;
    if (typeof database !== 'string' || !database || typeof snapshotId !== 'string' || !snapshotId) {
      throw new ApiError('BAD_REQUEST', 'the body needs "database" and "snapshotId" (strings) and "confirm"');
    }
    if (confirm !== database) {
      throw new ApiError('CONFIRMATION_MISMATCH', `type the database name "${database}" exactly to confirm the restore`);
    }
    const { runId } = await this.backend.startRestore(database, snapshotId);
    sendJson(res, 202, { runId, database, snapshotId, events: `/api/runs/${runId}/events` });
  }

  /** The run's progress as Server-Sent Events: `progress` at each state, then `end` with the run as recorded. */
  private async events(req: IncomingMessage, res: ServerResponse, runId: string): Promise<void> {
    if (!(await this.backend.getRun(runId))) throw new ApiError('RUN_NOT_FOUND', `no run ${runId} is recorded`);
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write('retry: 2000\n\n');
    this.streams.add(res);
    const heartbeat = setInterval(() => res.write(': still here\n\n'), SSE_HEARTBEAT_MS);
    let stop: () => void = () => undefined;
    const finish = (): void => {
      clearInterval(heartbeat);
      stop();
      this.streams.delete(res);
    };
    req.on('close', finish);
    stop = this.backend.followRun(runId, (progress: RunProgress) => {
      if (res.writableEnded) return;
      res.write(`event: progress\ndata: ${JSON.stringify(redactSecrets(progress))}\n\n`);
      if (!progress.done) return;
      void this.backend
        .getRun(runId)
        .then(
          (view) => {
            if (!res.writableEnded) res.end(`event: end\ndata: ${JSON.stringify(redactSecrets(view ?? null))}\n\n`);
          },
          () => res.end(),
        )
        .finally(finish);
    });
  }
}

function database(url: URL): string {
  const name = url.searchParams.get('database');
  if (!name) throw new ApiError('BAD_REQUEST', 'add ?database=NAME');
  return name;
}

function limit(url: URL): number | undefined {
  const text = url.searchParams.get('limit');
  if (text === null) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new ApiError('BAD_REQUEST', 'limit must be a whole number from 1 to 1000');
  return n;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError('TOO_LARGE', `the request body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return value;
  } catch {
    throw new ApiError('BAD_REQUEST', 'the body is not a JSON object');
  }
}

/**
 * Writes a JSON answer, redacted (URL passwords, credential-named fields).
 *
 * @example
 * ```ts
 * sendJson(res, 200, { ok: true });
 * ```
 */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(redactSecrets(body));
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  if (error instanceof ApiError || error instanceof SafeshiftError) {
    const status = STATUS_OF[error.code] ?? (error instanceof SafeshiftError ? 500 : 400);
    return sendJson(res, status, { error: { code: error.code, message: redactText(error.message) } });
  }
  // Not raised on purpose: say so without a stack (it may hold paths or values nobody should see here).
  const message = (error as { message?: string } | null | undefined)?.message ?? String(error);
  sendJson(res, 500, { error: { code: 'INTERNAL', message: redactText(`the console failed: ${message}`) } });
}
