import { scan } from 'libpg-query';
import type { ParsedSql, SqlStatement } from '../statements.ts';
import type { SqlText } from '../sql-text.ts';
import { nodeAs } from './nodes.ts';

interface Token {
  /** String offsets (not bytes) of the token in the file. */
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

const COMMENTS = new Set(['SQL_COMMENT', 'C_COMMENT']);

/**
 * Positions inside a parsed migration that the parse tree does not give directly: where each command
 * of an ALTER TABLE begins (AlterTableCmd nodes carry no location) and on which line a statement
 * ends. It works on the Postgres lexer's tokens, so commas in strings, comments or parentheses never
 * confuse it. Every offset it returns is a string offset, ready for {@link SqlText.position}.
 *
 * @example
 * ```ts
 * const parsed = await parseSql('alter table t\n  add a int,\n  drop b;', 'V2__t.sql');
 * const positions = await FilePositions.of(parsed);
 * positions.lineColumn(positions.alterCommandOffsets(parsed.statements[0]!)![1]!); // { line: 3, column: 3 }
 * ```
 */
export class FilePositions {
  private constructor(
    readonly source: SqlText,
    private readonly tokens: readonly Token[],
  ) {}

  /** Lexes the file once. If the lexer fails, positions fall back to statement starts. */
  static async of(parsed: ParsedSql): Promise<FilePositions> {
    const { source } = parsed;
    try {
      const { tokens } = await scan(source.text);
      const kept = tokens
        .filter((t) => !COMMENTS.has(t.tokenName))
        .map((t) => ({ start: source.charOffset(t.start), end: source.charOffset(t.end), text: t.text }));
      return new FilePositions(source, kept);
    } catch {
      return new FilePositions(source, []);
    }
  }

  /** 1-based line and column of a string offset. */
  lineColumn(offset: number): { line: number; column: number } {
    return this.source.position(offset);
  }

  /** The string offset of a parse-tree location (a UTF-8 byte offset); undefined stays undefined. */
  charOffset(byteLocation: number | undefined): number | undefined {
    return byteLocation === undefined || byteLocation < 0 ? undefined : this.source.charOffset(byteLocation);
  }

  /** The line of a statement's last token: a comment line before it belongs to the statement. */
  endLine(statement: SqlStatement): number {
    const tokens = this.statementTokens(statement);
    const last = tokens[tokens.length - 1];
    const end = last ? last.end - 1 : statement.offset + Math.max(0, statement.sql.length - 1);
    return this.source.position(end).line;
  }

  /**
   * Where each command of an ALTER TABLE begins, in order, or undefined when the tokens do not split
   * into as many commands as the parse tree has (then callers point at the statement instead).
   */
  alterCommandOffsets(statement: SqlStatement): number[] | undefined {
    const alter = nodeAs(statement.node, 'AlterTableStmt');
    const relation = this.charOffset(alter?.relation?.location);
    if (!alter || relation === undefined) return undefined;
    const tokens = this.statementTokens(statement);
    let i = tokens.findIndex((t) => t.start === relation);
    if (i < 0) return undefined;
    // Skip the (possibly qualified) table name and an inheritance star.
    while (tokens[i + 1]?.text === '.') i += 2;
    if (tokens[i + 1]?.text === '*') i++;
    const first = tokens[i + 1];
    if (!first) return undefined;
    const starts = [first.start];
    let depth = 0;
    for (let k = i + 1; k < tokens.length; k++) {
      const text = tokens[k]?.text;
      if (text === '(' || text === '[') depth++;
      else if (text === ')' || text === ']') depth--;
      else if (text === ',' && depth === 0) {
        const next = tokens[k + 1];
        if (next) starts.push(next.start);
      }
    }
    return starts.length === (alter.cmds?.length ?? 0) ? starts : undefined;
  }

  private statementTokens(statement: SqlStatement): readonly Token[] {
    const from = statement.offset;
    const to = statement.offset + statement.sql.length;
    const lo = lowerBound(this.tokens, from);
    let hi = lo;
    while (hi < this.tokens.length && (this.tokens[hi]?.start ?? Infinity) < to) hi++;
    return this.tokens.slice(lo, hi);
  }
}

/** Index of the first token starting at or after `offset`. */
function lowerBound(tokens: readonly Token[], offset: number): number {
  let lo = 0;
  let hi = tokens.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((tokens[mid]?.start ?? Infinity) < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
