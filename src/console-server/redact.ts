/**
 * Keys whose values are credentials whatever they hold. Deliberately broad: the console shows prior
 * states written by quiescers it does not know (a custom one may record an auth header), and a
 * redacted field costs an operator nothing while a rendered one cannot be taken back.
 */
const SECRET_KEY =
  /(pass(word|wd|phrase)?$|^pw$|^pwd$|secret|token|credential|api[-_]?key|access[-_]?key|private[-_]?key|authorization|cookie|connection[-_]?string|^dsn$)/i;

/** `scheme://user:password@` anywhere in a text: keep the user, drop the password. */
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^\s:/?#@]*):([^\s@/?#]*)@/gi;
/** `password=…` in a query string or a libpq keyword string. */
const PASSWORD_PARAM = /\b(password|passwd|pwd|secret|token)=([^&\s;'"]*)/gi;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g;

export const REDACTED = '[redacted]';

/**
 * A deep copy of `value` safe to render: credential-named fields replaced by `[redacted]`, URL
 * passwords and `password=` parameters inside strings masked, and every occurrence of a secret the
 * caller knows (e.g. the server's password) masked wherever it appears, also URL-encoded.
 *
 * @example
 * ```ts
 * redactSecrets({ apiId: 'http:http://ops:hunter2@api/maintenance', prior: { token: 'abc' } }, ['hunter2'])
 * // { apiId: 'http:http://ops:***@api/maintenance', prior: { token: '[redacted]' } }
 * ```
 */
export function redactSecrets<T>(value: T, knownSecrets: readonly string[] = []): T {
  return walk(value, expand(knownSecrets)) as T;
}

/** Each secret as written and URL-encoded, longest first so a longer one is masked whole. */
function expand(knownSecrets: readonly string[]): string[] {
  // Very short "secrets" would mask ordinary words and numbers everywhere; real ones are longer.
  return [...new Set(knownSecrets.filter((s) => s.length >= 4).flatMap((s) => [s, encodeURIComponent(s)]))].sort((a, b) => b.length - a.length);
}

function walk(value: unknown, known: readonly string[]): unknown {
  if (typeof value === 'string') return mask(value, known);
  if (Array.isArray(value)) return value.map((v) => walk(v, known));
  if (value && typeof value === 'object') {
    if (value instanceof Date) return value.toISOString();
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      out[key] = SECRET_KEY.test(key) && v !== null && v !== undefined && typeof v !== 'boolean' ? REDACTED : walk(v, known);
    }
    return out;
  }
  return value;
}

/**
 * One string made safe to render (see {@link redactSecrets}).
 *
 * @example
 * ```ts
 * redactText('could not connect to postgres://admin:pw123@db/shop') // 'could not connect to postgres://admin:***@db/shop'
 * ```
 */
export function redactText(text: string, knownSecrets: readonly string[] = []): string {
  return mask(text, expand(knownSecrets));
}

function mask(text: string, known: readonly string[]): string {
  let out = text;
  // Known secrets first: the patterns below would otherwise cut one in half and leave the rest visible.
  for (const secret of known) out = out.split(secret).join('***');
  return out.replace(URL_USERINFO, '$1$2:***@').replace(PASSWORD_PARAM, '$1=***').replace(BEARER, '$1 ***');
}
