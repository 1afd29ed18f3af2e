import { parse } from 'libpg-query';
import type { Node } from 'libpg-query';
import { SafeshiftError } from './errors.ts';
import { SqlText } from './sql-text.ts';

/** One statement of a SQL migration, as the real Postgres parser split it. */
export interface SqlStatement {
  /** 0-based position among the file's statements. */
  readonly index: number;
  /** The statement's text as written (without the terminating semicolon). */
  readonly sql: string;
  /** String offset of the statement's first token in the file. */
  readonly offset: number;
  /** 1-based line and column of the first token. */
  readonly line: number;
  readonly column: number;
  /** The parse tree node (a RawStmt's `stmt`). */
  readonly node: Node;
}

/** A parsed SQL migration. */
export interface ParsedSql {
  readonly source: SqlText;
  readonly statements: readonly SqlStatement[];
}

/**
 * Parses a migration with the real Postgres parser (libpg-query) and splits it into statements.
 * A syntax error becomes SYNTAX_ERROR with the file, line and column, and a snippet.
 *
 * @example
 * ```ts
 * const { statements } = await parseSql('create table a(id int);\ncreate index on a(id);', 'V1__a.sql');
 * statements[1].line // 2
 * ```
 */
export async function parseSql(text: string, file: string): Promise<ParsedSql> {
  const source = new SqlText(text);
  let tree;
  try {
    tree = await parse(text);
  } catch (error) {
    const details = (error as { sqlDetails?: { cursorPosition?: number; message?: string } }).sqlDetails;
    const offset = source.charOffset(Math.max(0, details?.cursorPosition ?? 0));
    const { line, column } = source.position(offset);
    const message = details?.message ?? (error instanceof Error ? error.message : String(error));
    throw new SafeshiftError('SYNTAX_ERROR', `${file}:${line}:${column}: ${message}\n${source.snippet(line, column)}`, {
      file,
      line,
      column,
      cause: error,
      details: { postgresMessage: message },
    });
  }
  const statements: SqlStatement[] = [];
  for (const raw of tree.stmts ?? []) {
    if (!raw.stmt) continue;
    const startByte = raw.stmt_location ?? 0;
    const start = source.charOffset(startByte);
    const end = raw.stmt_len ? source.charOffset(startByte + raw.stmt_len) : text.length;
    const chunk = text.slice(start, end);
    const lead = leadingTriviaLength(chunk);
    const offset = start + lead;
    const { line, column } = source.position(offset);
    statements.push({ index: statements.length, sql: chunk.slice(lead).replace(/\s+$/, ''), offset, line, column, node: raw.stmt });
  }
  return { source, statements };
}

/** Length of the whitespace and comments before a statement's first token. */
function leadingTriviaLength(chunk: string): number {
  let i = 0;
  for (;;) {
    while (i < chunk.length && /\s/.test(chunk[i] ?? '')) i++;
    if (chunk.startsWith('--', i)) {
      const nl = chunk.indexOf('\n', i);
      i = nl < 0 ? chunk.length : nl + 1;
    } else if (chunk.startsWith('/*', i)) {
      // Postgres block comments nest.
      let depth = 0;
      do {
        if (chunk.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (chunk.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else i++;
      } while (depth > 0 && i < chunk.length);
    } else {
      return i;
    }
  }
}
