import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiHandler, sendJson } from './api-handler.ts';
import type { ConsoleBackend } from './backend.ts';
import { RequestGuard, SESSION_COOKIE } from './request-guard.ts';

export interface ConsoleServerOptions {
  readonly backend: ConsoleBackend;
  /** The address to listen on. Anything but loopback makes every request need the session token. @default '127.0.0.1' */
  readonly host?: string;
  /** @default 0 (a free port) */
  readonly port?: number;
  /** The folder with index.html, app.js and style.css. @default the repository's `console-page/` */
  readonly assetsDir?: string;
}

export interface ConsoleServer {
  /** Where the page is, e.g. `http://127.0.0.1:8421/`. */
  readonly url: string;
  /** What to open: `url`, with the token in it when the console is exposed beyond loopback. */
  readonly openUrl: string;
  /** The per-session token a mutating request must carry (header `x-safeshift-token`). */
  readonly token: string;
  /** Closes the server and its open progress streams (not the backend: its restores are its own). */
  close(): Promise<void>;
}

const DEFAULT_ASSETS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../console-page');

/** The only files served: a fixed list, so no path from a request ever reaches the file system. */
const ASSETS: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/dom.js': { file: 'dom.js', type: 'text/javascript; charset=utf-8' },
  '/views.js': { file: 'views.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** Nothing from elsewhere, no inline script or style, no framing, no form posts. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=()',
  // The page carries the session token and the API live data: neither may be kept by a cache.
  'Cache-Control': 'no-store',
};

/**
 * Serves the operator console: the page and its JSON API over a {@link ConsoleBackend}, on loopback
 * unless told otherwise. The page gets the per-session token embedded in its HTML and sends it back
 * in a header; a restore request without it, or from another origin, is refused with 403.
 *
 * @example
 * ```ts
 * const backend = await LocalConsoleBackend.open({ serverUrl });
 * const server = await startConsoleServer({ backend, port: 8421 });
 * console.error(`console on ${server.openUrl}`);
 * ```
 */
export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const host = options.host ?? '127.0.0.1';
  const token = randomBytes(32).toString('base64url');
  const assets = await loadAssets(options.assetsDir ?? DEFAULT_ASSETS, token);
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const guard = new RequestGuard(token, host, port);
  const api = new ApiHandler(options.backend, guard);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    void handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'INTERNAL', message: 'the console failed to answer' } });
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const refusal = guard.checkRequest(req, url.searchParams.get('token'));
    if (refusal) {
      sendJson(res, 403, { error: refusal });
      return;
    }
    if (url.pathname.startsWith('/api/')) return api.handle(req, res, url);
    const asset = ASSETS[url.pathname];
    if (!asset) {
      sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `nothing at ${url.pathname}; the console is at /` } });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'GET only' } });
      return;
    }
    if (guard.exposed && url.searchParams.has('token')) {
      // Opened with the token in the URL: keep it in a cookie scripts cannot read, and drop it from the address bar.
      res.setHeader('Set-Cookie', `${SESSION_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`);
      res.writeHead(303, { Location: '/' });
      return void res.end();
    }
    // loadAssets read every file ASSETS names.
    const body = assets[asset.file];
    if (!body) throw new Error(`the console's ${asset.file} was not loaded`);
    res.writeHead(200, { 'Content-Type': asset.type, 'Content-Length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  const url = `http://${hostInUrl}:${port}/`;
  return {
    url,
    openUrl: guard.exposed ? `${url}?token=${encodeURIComponent(token)}` : url,
    token,
    close: async () => {
      api.closeStreams();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Reads the page's files once; the HTML gets the session token in a meta element the script reads. */
async function loadAssets(dir: string, token: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const file of new Set(Object.values(ASSETS).map((a) => a.file))) {
    let text = await readFile(path.join(dir, file), 'utf8');
    if (file === 'index.html') {
      if (!text.includes('__SAFESHIFT_TOKEN__')) throw new Error(`${path.join(dir, file)} lacks the __SAFESHIFT_TOKEN__ placeholder`);
      text = text.replace('__SAFESHIFT_TOKEN__', token);
    }
    out[file] = Buffer.from(text, 'utf8');
  }
  return out;
}
