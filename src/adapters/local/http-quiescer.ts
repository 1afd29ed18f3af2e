import { SafeshiftError } from '../../core/errors.ts';
import type { Json, QuiesceHold, Quiescer } from '../../ports.ts';

/** The two modes of the maintenance protocol. */
export type HttpApiMode = 'normal' | 'maintenance';

export interface HttpQuiescerOptions {
  /** How long one request may take; a PUT to maintenance waits for writes to drain, so allow for that. @default 30000 */
  readonly timeoutMs?: number;
  /** How many times a request is repeated after a network error, a timeout or a 502/503/504. @default 3 */
  readonly retries?: number;
}

/** Answers worth asking again: a proxy in between, or the API still draining (503 + Retry-After). */
const TRANSIENT_STATUS = new Set([502, 503, 504]);
const MAX_RETRY_AFTER_MS = 30_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Quiesces an API through its maintenance endpoint (spec `http:URL`). The protocol, which the
 * example API implements (`examples/api`):
 *
 * - `GET URL` → `200 {"mode":"normal"|"maintenance"}`.
 * - `PUT URL` with body `{"mode":"maintenance"}` → the API refuses new writes at once and answers
 *   `200 {"mode":"maintenance","inFlight":0}` only after every write in flight has finished, so once
 *   it has answered nothing more goes to the database. If writes do not drain in time it may answer
 *   `503` (with `Retry-After`), still in maintenance; the PUT is simply repeated.
 * - `PUT URL` with body `{"mode":"normal"}` → `200 {"mode":"normal","inFlight":…}`: writes are taken again.
 *
 * Both PUTs are idempotent. `capture` is the GET, `quiesce` the PUT to maintenance, `resume(prior)`
 * the PUT back to the mode captured (an API that was already in maintenance stays there).
 * Failures are SafeshiftError `QUIESCE_FAILED` naming the URL (its password hidden).
 *
 * @example
 * ```ts
 * const q = new HttpQuiescer('http://127.0.0.1:8080/maintenance');
 * const prior = await q.capture();   // { mode: 'normal' }
 * await q.quiesce();                 // returns once no write is in flight
 * await q.resume(prior);
 * ```
 */
export class HttpQuiescer implements Quiescer {
  readonly id: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  /** The URL without credentials, which fetch refuses. */
  private readonly target: string;
  private readonly authorization?: string;
  private readonly password?: string;

  constructor(
    private readonly url: string,
    opts: HttpQuiescerOptions = {},
  ) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      /* reported below */
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      throw new SafeshiftError(
        'BAD_OPTION',
        `http quiescer: "${redact(url)}" is not an http:// or https:// URL (expected e.g. http:http://127.0.0.1:8080/maintenance)`,
      );
    }
    this.id = `http:${url}`;
    // fetch refuses URLs with user:password; send them as Basic auth instead, as a browser would.
    if (parsed.username || parsed.password) {
      const user = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
      this.authorization = `Basic ${Buffer.from(user).toString('base64')}`;
      this.password = decodeURIComponent(parsed.password);
      parsed.username = '';
      parsed.password = '';
    }
    this.target = parsed.toString();
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.retries = opts.retries ?? 3;
  }

  /** The endpoint answers the protocol's GET; nothing is switched. */
  async check(): Promise<void> {
    await this.request('GET');
  }

  async capture(): Promise<Json> {
    const body = await this.request('GET');
    return { mode: body.mode };
  }

  /** Still in maintenance: an API restarted without its mode comes back `normal` and takes writes. */
  async stillQuiesced(): Promise<QuiesceHold> {
    const body = await this.request('GET');
    return { holds: body.mode === 'maintenance', evidence: `${redact(this.url)} answers mode "${body.mode}"` };
  }

  async quiesce(): Promise<void> {
    const body = await this.request('PUT', 'maintenance');
    if (typeof body.inFlight === 'number' && body.inFlight !== 0) {
      throw this.failure(`answered maintenance with ${body.inFlight} write(s) still in flight; the protocol says it answers only once they have finished`);
    }
  }

  async resume(prior: Json): Promise<void> {
    const mode = (prior as { mode?: unknown } | null)?.mode;
    if (mode !== 'normal' && mode !== 'maintenance')
      throw this.failure(`cannot resume to the recorded state ${JSON.stringify(prior)}: expected {"mode":"normal"|"maintenance"}`);
    await this.request('PUT', mode);
  }

  /** One GET or PUT, repeated on transient failures; returns the validated answer. */
  private async request(method: 'GET' | 'PUT', mode?: HttpApiMode): Promise<{ mode: HttpApiMode; inFlight?: unknown }> {
    let delay = 250;
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= this.retries;
      let response: Response;
      try {
        response = await fetch(this.target, {
          method,
          headers: {
            accept: 'application/json',
            ...(mode ? { 'content-type': 'application/json' } : {}),
            ...(this.authorization ? { authorization: this.authorization } : {}),
          },
          body: mode ? JSON.stringify({ mode }) : undefined,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (error) {
        const reason = networkReason(error, this.timeoutMs);
        if (last) throw this.failure(`${method} failed after ${attempt + 1} attempt(s): ${reason}`, error);
        await sleep(delay);
        delay *= 2;
        continue;
      }
      const text = await response.text().catch(() => '');
      if (TRANSIENT_STATUS.has(response.status) && !last) {
        await sleep(retryAfterMs(response.headers.get('retry-after')) ?? delay);
        delay *= 2;
        continue;
      }
      if (!response.ok)
        throw this.failure(`${method}${mode ? ` ${mode}` : ''} answered ${response.status} ${response.statusText}${text ? `: ${text.slice(0, 300)}` : ''}`);
      let body: { mode?: unknown; inFlight?: unknown };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        body = {};
      }
      if (body.mode !== 'normal' && body.mode !== 'maintenance') {
        throw this.failure(`${method} answered ${response.status} without {"mode":"normal"|"maintenance"}: ${text.slice(0, 300) || '(empty body)'}`);
      }
      if (mode && body.mode !== mode) throw this.failure(`asked for mode "${mode}" but it answered mode "${body.mode}"`);
      return body as { mode: HttpApiMode; inFlight?: unknown };
    }
  }

  private failure(message: string, cause?: unknown): SafeshiftError {
    // Belt and braces: whatever a driver or server said, the password never reaches the message.
    const said = this.password ? message.split(this.password).join('***') : message;
    return new SafeshiftError('QUIESCE_FAILED', `maintenance endpoint ${redact(this.url)} ${said}`, { cause, details: { url: redact(this.url) } });
  }
}

/** The URL with any password replaced, for messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(':%2A%2A%2A@', ':***@');
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}

function networkReason(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } } | null;
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${timeoutMs / 1000} s`;
  const code = e?.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused: is the API running and listening there?';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  return e?.cause?.message ?? e?.message ?? String(error);
}

/** `Retry-After` in seconds or as a date, capped; undefined when absent or unreadable. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms)) : undefined;
}
