import { setTimeout as sleep } from 'node:timers/promises';

export interface WriterOptions {
  /** The shop API's base URL. Only `http://127.0.0.1:<port>` is accepted: this is a load generator. */
  readonly apiUrl: string;
  /** Requests in flight at once. @default 4 */
  readonly concurrency?: number;
  /** Orders go to customers 1..customers; the seed's default count. @default 1000 */
  readonly customers?: number;
  /** Safety net: the writer stops by itself after this long, even if nobody calls `stop()`. @default 600000 (10 min) */
  readonly maxDurationMs?: number;
  /** Longest wait honoured from a Retry-After header, in ms. @default 2000 */
  readonly maxRetryWaitMs?: number;
  /** Reports anything unexpected (an error, stopping by itself). @default silent */
  readonly log?: (line: string) => void;
}

/** What a writer saw, for checking that no acknowledged write was lost. */
export interface WriterReport {
  /** Ids of orders the API acknowledged (201): every one must be in the table. */
  readonly acknowledgedIds: number[];
  /** 503 answers (maintenance, database unavailable): expected around an upgrade. */
  readonly refused: number;
  /** Anything else (other statuses, network errors, timeouts): 0 in a healthy run. */
  readonly errors: number;
  /** Requests that got an answer or failed, whatever it was. */
  readonly requests: number;
}

export interface Writer {
  /** Stops sending, waits for requests in flight and reports. Safe to call more than once. */
  stop(): Promise<WriterReport>;
}

const REQUEST_TIMEOUT_MS = 20_000;
/** After an unexpected answer: a pause, so a broken API is not hammered in a tight loop. */
const ERROR_PAUSE_MS = 100;

/**
 * Starts writing orders to the shop API as fast as `concurrency` loops can, each POSTing an order
 * for a random customer and waiting for the answer before the next. A 503 is honoured: the loop
 * sleeps for its `Retry-After` (capped, and cut short by `stop()`), then carries on.
 *
 * @example
 * ```ts
 * const writer = startWriter({ apiUrl: api.url, concurrency: 4 });
 * // ... upgrade the database ...
 * const report = await writer.stop();
 * // every report.acknowledgedIds must be in the orders table; report.errors must be 0
 * ```
 */
export function startWriter(opts: WriterOptions): Writer {
  const base = checkLoopbackUrl(opts.apiUrl);
  const concurrency = positiveInt(opts.concurrency ?? 4, 'concurrency');
  const customers = positiveInt(opts.customers ?? 1000, 'customers');
  const maxRetryWaitMs = opts.maxRetryWaitMs ?? 2_000;
  const log = opts.log ?? (() => {});
  const ordersUrl = new URL('orders', base);

  const acknowledgedIds: number[] = [];
  let refused = 0;
  let errors = 0;
  let requests = 0;
  const stopping = new AbortController();

  const safetyNet = setTimeout(() => {
    log(`writer: stopping by itself after ${opts.maxDurationMs ?? 600_000} ms`);
    stopping.abort();
  }, opts.maxDurationMs ?? 600_000);
  safetyNet.unref();

  /** Sleeps, but wakes early when the writer is stopped. */
  const pause = (ms: number) => sleep(ms, undefined, { signal: stopping.signal }).catch(() => undefined);

  async function loop(): Promise<void> {
    while (!stopping.signal.aborted) {
      const order = { customerId: 1 + Math.floor(Math.random() * customers), amountCents: 1 + Math.floor(Math.random() * 50_000) };
      let res: Response;
      let text: string;
      try {
        // No stop signal on the request itself: aborting one in flight would leave its outcome
        // unknown to us. Stopping waits for the answer instead (bounded by the timeout).
        res = await fetch(ordersUrl, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(order),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        text = await res.text();
      } catch (error) {
        requests += 1;
        errors += 1;
        log(`writer: request failed: ${error instanceof Error ? error.message : String(error)}`);
        await pause(ERROR_PAUSE_MS);
        continue;
      }
      requests += 1;
      if (res.status === 201) {
        const id = (safeJson(text) as { id?: unknown } | undefined)?.id;
        if (typeof id === 'number' && Number.isInteger(id)) {
          acknowledgedIds.push(id);
          continue;
        }
        errors += 1;
        log(`writer: 201 without an id: ${text.slice(0, 200)}`);
      } else if (res.status === 503) {
        refused += 1;
        await pause(Math.min(retryAfterMs(res.headers.get('retry-after')), maxRetryWaitMs));
        continue;
      } else {
        errors += 1;
        log(`writer: unexpected ${res.status}: ${text.slice(0, 200)}`);
      }
      await pause(ERROR_PAUSE_MS);
    }
  }

  const loops = Array.from({ length: concurrency }, () => loop());
  let report: Promise<WriterReport> | undefined;
  return {
    stop() {
      report ??= (async () => {
        stopping.abort();
        clearTimeout(safetyNet);
        await Promise.all(loops);
        return { acknowledgedIds: [...acknowledgedIds], refused, errors, requests };
      })();
      return report;
    },
  };
}

/** Refuses anything but plain HTTP to 127.0.0.1, so the writer cannot be aimed at someone else's server. */
function checkLoopbackUrl(apiUrl: string): URL {
  let url: URL;
  try {
    url = new URL(apiUrl);
  } catch {
    throw new Error(`apiUrl "${apiUrl}" is not a URL`);
  }
  if (url.protocol !== 'http:' || url.hostname !== '127.0.0.1') {
    throw new Error(`apiUrl must be http://127.0.0.1:<port> (the writer only loads local servers), not ${url.protocol}//${url.host}`);
  }
  // A trailing slash, so new URL('orders', base) keeps any path prefix.
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

/** Retry-After in seconds (the API's form) or as an HTTP date; 1 s when absent or unreadable. */
function retryAfterMs(header: string | null): number {
  if (header === null) return 1_000;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1_000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? 1_000 : Math.max(0, date - Date.now());
}

function positiveInt(value: number, option: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${option} must be a whole number of at least 1, not ${value}`);
  return value;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
