import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Why a request is refused with 403, as the API reports it. */
export interface Refusal {
  readonly code: 'FORBIDDEN_HOST' | 'FORBIDDEN_ORIGIN' | 'FORBIDDEN_TOKEN';
  readonly message: string;
}

export const TOKEN_HEADER = 'x-safeshift-token';
export const SESSION_COOKIE = 'safeshift_session';

/**
 * The console's request checks. Bound to loopback, the console trusts the machine but not the web
 * pages open in its browser: those can send requests to 127.0.0.1 (CSRF) or point a name they own at
 * it (DNS rebinding). So every request must name one of the console's own hosts, and a mutating one
 * must come from the console's own origin and carry the per-session token, which only a page served
 * by the console can know. Bound to another address (exposed), every request needs the token.
 *
 * @example
 * ```ts
 * const guard = new RequestGuard(token, '127.0.0.1', 8421);
 * const refusal = guard.checkMutation(req);
 * if (refusal) return send(res, 403, { error: refusal });
 * ```
 */
export class RequestGuard {
  /** `host:port` values a request may name in its Host header (loopback only). */
  private readonly hosts: ReadonlySet<string>;
  readonly exposed: boolean;

  constructor(
    private readonly token: string,
    host: string,
    port: number,
  ) {
    this.exposed = !isLoopback(host);
    const names = host === '::1' ? ['[::1]', 'localhost'] : [host.includes(':') ? `[${host}]` : host, 'localhost'];
    if (host.startsWith('127.')) names.push('127.0.0.1', '[::1]');
    this.hosts = new Set(names.map((n) => `${n}:${port}`.toLowerCase()));
  }

  /** Every request: loopback consoles answer only to their own names (defeats DNS rebinding); exposed ones only to the token. */
  checkRequest(req: IncomingMessage, tokenInQuery: string | null): Refusal | undefined {
    if (this.exposed) {
      if (this.hasToken(req) || this.tokenMatches(tokenInQuery)) return undefined;
      return {
        code: 'FORBIDDEN_TOKEN',
        message: 'this console is reachable from the network: open the URL `safeshift console` printed (it carries the session token)',
      };
    }
    const host = (req.headers.host ?? '').toLowerCase();
    if (!this.hosts.has(host)) {
      return { code: 'FORBIDDEN_HOST', message: `the console answers on ${[...this.hosts].join(' or ')}, not on "${host}"` };
    }
    return undefined;
  }

  /** A request that changes something: the console's own origin and the session token in its header. */
  checkMutation(req: IncomingMessage): Refusal | undefined {
    const site = header(req, 'sec-fetch-site');
    if (site !== undefined && site !== 'same-origin') {
      return { code: 'FORBIDDEN_ORIGIN', message: `a ${site} request may not change anything; use the console's own page` };
    }
    const origin = header(req, 'origin');
    if (origin === undefined ? site !== 'same-origin' : !this.isOwnOrigin(origin, req)) {
      return { code: 'FORBIDDEN_ORIGIN', message: `requests that change something must come from the console's own page (Origin ${origin ?? 'missing'})` };
    }
    if (!this.tokenMatches(header(req, TOKEN_HEADER) ?? null)) {
      return { code: 'FORBIDDEN_TOKEN', message: `the session token (header ${TOKEN_HEADER}) is missing or wrong; reload the console page` };
    }
    return undefined;
  }

  /** The header, or (exposed consoles) the HttpOnly session cookie set when the page was opened with the token. */
  hasToken(req: IncomingMessage): boolean {
    if (this.tokenMatches(header(req, TOKEN_HEADER) ?? null)) return true;
    const cookie = (header(req, 'cookie') ?? '')
      .split(';')
      .map((c) => c.trim())
      .find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    return this.tokenMatches(cookie ? cookie.slice(SESSION_COOKIE.length + 1) : null);
  }

  /** Constant-time, so the token cannot be guessed a character at a time from response times. */
  tokenMatches(candidate: string | null): boolean {
    if (!candidate) return false;
    const a = Buffer.from(candidate);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private isOwnOrigin(origin: string, req: IncomingMessage): boolean {
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      return false;
    }
    if (parsed.protocol !== 'http:' || parsed.origin !== origin.toLowerCase().replace(/\/$/, '')) return false;
    const host = parsed.host.toLowerCase();
    // Exposed, the Host is whatever name reached us; the origin must at least be that same one.
    return this.exposed ? host === (req.headers.host ?? '').toLowerCase() : this.hosts.has(host);
  }
}

/**
 * Whether an address only this machine can reach.
 *
 * @example
 * ```ts
 * isLoopback('127.0.0.1') // true
 * isLoopback('0.0.0.0')   // false
 * ```
 */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
