/**
 * Positions in a text: offsets to 1-based line and column, and UTF-8 byte offsets (what the
 * Postgres parser reports) to JavaScript string offsets.
 */
export class SqlText {
  readonly text: string;
  private readonly lineStarts: number[];
  private readonly byteToChar: (byte: number) => number;

  constructor(text: string) {
    this.text = text;
    this.lineStarts = [0];
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
    this.byteToChar = Buffer.byteLength(text, 'utf8') === text.length ? (b) => b : buildByteMap(text);
  }

  /** The 1-based line and column of a string offset. */
  position(offset: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.lineStarts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - (this.lineStarts[lo] ?? 0) + 1 };
  }

  /** The string offset of a UTF-8 byte offset. */
  charOffset(byteOffset: number): number {
    return this.byteToChar(byteOffset);
  }

  /** The text of one line (1-based), for showing where an error is. */
  line(lineNo: number): string {
    const start = this.lineStarts[lineNo - 1];
    if (start === undefined) return '';
    const end = this.lineStarts[lineNo];
    return this.text.slice(start, end === undefined ? undefined : end - 1);
  }

  /** A few lines around a position with a caret under the column: what a person needs to see. */
  snippet(line: number, column: number, context = 2): string {
    const from = Math.max(1, line - context);
    const to = Math.min(this.lineStarts.length, line + context);
    const width = String(to).length;
    const out: string[] = [];
    for (let n = from; n <= to; n++) {
      out.push(`${String(n).padStart(width)} | ${this.line(n)}`);
      if (n === line) out.push(`${' '.repeat(width)} | ${' '.repeat(Math.max(0, column - 1))}^`);
    }
    return out.join('\n');
  }
}

function buildByteMap(text: string): (byte: number) => number {
  const map: number[] = [];
  let i = 0;
  for (const ch of text) {
    const bytes = Buffer.byteLength(ch, 'utf8');
    for (let k = 0; k < bytes; k++) map.push(i);
    i += ch.length;
  }
  map.push(i);
  return (b) => map[Math.min(b, map.length - 1)] ?? i;
}
