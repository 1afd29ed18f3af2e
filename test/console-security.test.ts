import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { redactSecrets, redactText } from '../src/console-server/redact.ts';
import { isLoopback, RequestGuard } from '../src/console-server/request-guard.ts';

/** The console's request checks and redaction, table-driven, without a server. */
const TOKEN = 'tok_0123456789abcdefghijklmnopqrstuvwxyzABCDE';

function req(headers: Record<string, string>): IncomingMessage {
  return { headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])) } as unknown as IncomingMessage;
}

describe('RequestGuard on loopback', () => {
  const guard = new RequestGuard(TOKEN, '127.0.0.1', 8421);
  const own = { Origin: 'http://127.0.0.1:8421', 'Sec-Fetch-Site': 'same-origin', 'X-Safeshift-Token': TOKEN };

  it.each([
    ['127.0.0.1:8421', undefined],
    ['localhost:8421', undefined],
    ['LOCALHOST:8421', undefined],
    ['evil.example:8421', 'FORBIDDEN_HOST'],
    ['127.0.0.1:9999', 'FORBIDDEN_HOST'],
    ['', 'FORBIDDEN_HOST'],
  ])('a request naming host "%s" → %s', (host, code) => {
    expect(guard.checkRequest(req({ Host: host }), null)?.code).toBe(code);
  });

  it.each([
    ['the page itself', own, undefined],
    ['localhost origin', { ...own, Origin: 'http://localhost:8421' }, undefined],
    ['no Sec-Fetch-Site but the right Origin (an older browser)', { Origin: own.Origin, 'X-Safeshift-Token': TOKEN }, undefined],
    ['no token', { ...own, 'X-Safeshift-Token': '' }, 'FORBIDDEN_TOKEN'],
    ['a wrong token of the same length', { ...own, 'X-Safeshift-Token': TOKEN.replace(/.$/, 'x') }, 'FORBIDDEN_TOKEN'],
    ['a wrong token of another length', { ...own, 'X-Safeshift-Token': 'short' }, 'FORBIDDEN_TOKEN'],
    ['another site', { ...own, Origin: 'http://evil.example', 'Sec-Fetch-Site': 'cross-site' }, 'FORBIDDEN_ORIGIN'],
    ['same-site but another port', { ...own, Origin: 'http://127.0.0.1:9999', 'Sec-Fetch-Site': 'same-site' }, 'FORBIDDEN_ORIGIN'],
    ['a lying Sec-Fetch-Site with a foreign Origin', { ...own, Origin: 'http://evil.example' }, 'FORBIDDEN_ORIGIN'],
    ['Origin "null" (a sandboxed frame or file:)', { ...own, Origin: 'null' }, 'FORBIDDEN_ORIGIN'],
    ['https origin', { ...own, Origin: 'https://127.0.0.1:8421' }, 'FORBIDDEN_ORIGIN'],
    ['neither Origin nor Sec-Fetch-Site', { 'X-Safeshift-Token': TOKEN }, 'FORBIDDEN_ORIGIN'],
  ])('a restore request from %s', (_what, headers, code) => {
    expect(guard.checkMutation(req({ Host: '127.0.0.1:8421', ...headers }))?.code).toBe(code);
  });
});

describe('RequestGuard beyond loopback (exposed)', () => {
  const guard = new RequestGuard(TOKEN, '0.0.0.0', 8421);

  it('is exposed and needs the token on every request: header, session cookie or (opening the page) the URL', () => {
    expect(guard.exposed).toBe(true);
    expect(guard.checkRequest(req({ Host: '10.0.0.5:8421' }), null)?.code).toBe('FORBIDDEN_TOKEN');
    expect(guard.checkRequest(req({ Host: '10.0.0.5:8421' }), 'wrong')?.code).toBe('FORBIDDEN_TOKEN');
    expect(guard.checkRequest(req({ Host: '10.0.0.5:8421' }), TOKEN)).toBeUndefined();
    expect(guard.checkRequest(req({ Host: '10.0.0.5:8421', 'X-Safeshift-Token': TOKEN }), null)).toBeUndefined();
    expect(guard.checkRequest(req({ Host: '10.0.0.5:8421', Cookie: `a=b; safeshift_session=${TOKEN}` }), null)).toBeUndefined();
  });

  it('still wants the same origin for a restore', () => {
    const base = { Host: 'ops-box:8421', 'X-Safeshift-Token': TOKEN, 'Sec-Fetch-Site': 'same-origin' };
    expect(guard.checkMutation(req({ ...base, Origin: 'http://ops-box:8421' }))).toBeUndefined();
    expect(guard.checkMutation(req({ ...base, Origin: 'http://evil.example:8421' }))?.code).toBe('FORBIDDEN_ORIGIN');
  });

  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['localhost', true],
    ['::1', true],
    ['0.0.0.0', false],
    ['192.168.1.4', false],
    ['::', false],
  ])('isLoopback(%s) is %s', (host, loopback) => expect(isLoopback(host)).toBe(loopback));
});

describe('redactSecrets', () => {
  it('masks credential-named fields, URL passwords, password parameters and known secrets, deeply', () => {
    const out = redactSecrets(
      {
        apiId: 'http:http://ops:hunter22@api.internal/maintenance',
        prior: { mode: 'normal', token: 'abc', Password: 'x', apiKey: 42, secretArn: 'arn:aws:secretsmanager:…', canLogin: true, passwordSet: true },
        list: [{ dsn: 'host=db password=s3cr3t user=app' }, 'postgres://app:p%40ss@db:5432/shop'],
        message: 'could not connect to postgres://postgres:Zq9-known-pw@127.0.0.1:5432/postgres (server said Zq9-known-pw)',
        encoded: 'url with Zq9%2Bencoded',
        nothing: null,
      },
      ['Zq9-known-pw', 'Zq9+encoded'],
    );
    expect(out).toEqual({
      apiId: 'http:http://ops:***@api.internal/maintenance',
      prior: { mode: 'normal', token: '[redacted]', Password: '[redacted]', apiKey: '[redacted]', secretArn: '[redacted]', canLogin: true, passwordSet: true },
      list: [{ dsn: '[redacted]' }, 'postgres://app:***@db:5432/shop'],
      message: 'could not connect to postgres://postgres:***@127.0.0.1:5432/postgres (server said ***)',
      encoded: 'url with ***',
      nothing: null,
    });
  });

  it.each([
    ['libpq keywords', 'host=db password=s3cr3t user=app', 'host=db password=*** user=app'],
    ['a query parameter', 'https://h/x?user=a&password=s3cr3t&b=1', 'https://h/x?user=a&password=***&b=1'],
    ['a bearer header', 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc', 'Authorization: Bearer ***'],
    ['a URL without password', 'postgres://app@db/shop', 'postgres://app@db/shop'],
    ['plain text', 'V5__orders_amount_positive.sql failed', 'V5__orders_amount_positive.sql failed'],
  ])('redactText: %s', (_what, text, expected) => {
    expect(redactText(text)).toBe(expected);
  });
});
