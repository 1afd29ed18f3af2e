import pg from 'pg';

/** Told about every `pg.Client` connect and query while a tap is in place. */
export interface PgListener {
  connect?(ms: number): void;
  /** `text` is the SQL when the query was given as text or a config with text; '' otherwise. */
  query?(text: string, ms: number): void;
}

/**
 * Times every `pg.Client` connect and query in this process (the engine's, the ports', their pools')
 * until the returned function is called, which puts the originals back. Both the callback form
 * (pg-pool's) and the promise form are timed until they settle; a Submittable (cursor, stream) is
 * counted with 0 ms. A benchmark's instrument only: nothing in src/ knows about it.
 *
 * @example
 * ```ts
 * const untap = tapPg({ query: (text, ms) => { if (/^create database/i.test(text)) copyMs += ms; } });
 * try { await fleet.startSnapshot(db, id, tags); } finally { untap(); }
 * ```
 */
export function tapPg(listener: PgListener): () => void {
  const proto = pg.Client.prototype as unknown as Record<'connect' | 'query', (...args: unknown[]) => unknown>;
  const originalConnect = proto.connect;
  const originalQuery = proto.query;
  const timed = (original: (...args: unknown[]) => unknown, report: (args: unknown[], ms: number) => void) =>
    function (this: unknown, ...args: unknown[]): unknown {
      const began = performance.now();
      const done = () => report(args, performance.now() - began);
      const last = args[args.length - 1];
      if (typeof last === 'function') {
        const callback = last as (...a: unknown[]) => unknown;
        args[args.length - 1] = (...cbArgs: unknown[]) => {
          done();
          return callback(...cbArgs);
        };
        return original.apply(this, args);
      }
      const result = original.apply(this, args);
      if (result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(done, done);
      else done();
      return result;
    };
  proto.connect = timed(originalConnect, (_args, ms) => listener.connect?.(ms));
  proto.query = timed(originalQuery, (args, ms) => listener.query?.(queryText(args[0]), ms));
  return () => {
    proto.connect = originalConnect;
    proto.query = originalQuery;
  };
}

function queryText(first: unknown): string {
  if (typeof first === 'string') return first;
  const text = (first as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text : '';
}
