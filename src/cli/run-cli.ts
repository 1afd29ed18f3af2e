import { parseArgs } from 'node:util';
import { SafeshiftError, sqlState } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { SqlClient } from '../ports.ts';
import type { Command, CommandInput, OptionSpec } from './command.ts';
import { COMMANDS } from './commands/index.ts';
import { localDatabaseChoice } from './common-options.ts';
import { openDatabase, type OpenDatabase } from './database.ts';

/** Where the CLI writes: results to `stdout`, progress and errors to `stderr`. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  json: { type: 'boolean', description: 'print one JSON document on stdout (progress stays on stderr)' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

import { ExitCode } from './exit-codes.ts';

/**
 * Runs one `safeshift` command line and returns its exit code. Only the entry point calls process.exit.
 *
 * @example
 * ```ts
 * const code = await runCli(['info', '--json'], { stdout: console.log, stderr: console.error, env: process.env });
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = argv;
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') {
    io.stdout(overview());
    return verb ? ExitCode.ok : ExitCode.refused;
  }
  if (verb === '--version') {
    io.stdout('safeshift 0.1.0');
    return ExitCode.ok;
  }
  const command = COMMANDS.find((c) => c.name === verb);
  if (!command) {
    io.stderr(`error [BAD_OPTION]: unknown command "${verb}"\n\n${overview()}`);
    return ExitCode.refused;
  }
  const json = rest.includes('--json');
  let db: OpenDatabase | undefined;
  try {
    const specs = { ...command.options, ...GLOBAL_OPTIONS };
    let parsed;
    try {
      parsed = parseArgs({
        args: [...rest],
        allowPositionals: true,
        strict: true,
        options: Object.fromEntries(
          Object.entries(specs).map(([k, s]) => [k, { type: s.type, ...(s.short ? { short: s.short } : {}), ...(s.multiple ? { multiple: true } : {}) }]),
        ),
      });
    } catch (error) {
      throw new SafeshiftError('BAD_OPTION', `${(error as Error).message}; see \`safeshift ${command.name} --help\``);
    }
    if (parsed.values.help) {
      io.stdout(commandHelp(command));
      return ExitCode.ok;
    }
    const log = stderrLogger(io);
    const input: CommandInput = {
      values: optionValues(parsed.values),
      positionals: parsed.positionals,
      log,
      env: io.env,
      database: async (): Promise<SqlClient> => {
        db ??= await openDatabase({ ...localDatabaseChoice(input), create: command.createsDatabase === true || input.values.create === true }, log);
        return db.client;
      },
    };
    const out = await command.run(input);
    io.stdout(json ? JSON.stringify(out.json, jsonReplacer, 2) : out.text);
    return out.exitCode;
  } catch (error) {
    return reportError(error, json, io);
  } finally {
    await db?.close().catch(() => undefined);
  }
}

function reportError(error: unknown, json: boolean, io: CliIo): number {
  if (error instanceof SafeshiftError) {
    const exit = error.outcome === 'refused' ? ExitCode.refused : error.outcome === 'rolled-back' ? ExitCode.rolledBack : ExitCode.needsOperator;
    if (json) io.stdout(JSON.stringify({ ok: false, exitCode: exit, error: error.toJSON() }, jsonReplacer, 2));
    io.stderr(`error [${error.code}]: ${error.message}`);
    return exit;
  }
  // Not raised on purpose: a bug or an unforeseen database error. Say so plainly; the stack only on request.
  const state = sqlState(error);
  // Anything can be thrown, not only Errors.
  const message = error instanceof Error ? error.message : String(error);
  const stack = error instanceof Error ? (error.stack ?? '') : '';
  const debug = io.env.SAFESHIFT_DEBUG ? `\n${stack}` : '\n(set SAFESHIFT_DEBUG=1 to see the stack trace)';
  if (json) io.stdout(JSON.stringify({ ok: false, exitCode: ExitCode.needsOperator, error: { code: 'INTERNAL', sqlState: state, message } }, null, 2));
  io.stderr(`error [INTERNAL${state ? ` SQLSTATE ${state}` : ''}]: ${message}\nThis was not expected; check the database before running again.${debug}`);
  return ExitCode.needsOperator;
}

/**
 * parseArgs' values, typed as the option specs make them: the specs are built at run time, so
 * parseArgs can only type a repeatable option as `(string | boolean)[]`. A repeatable option here
 * is always a string one; a repeated boolean (none today) counts as given.
 */
function optionValues(values: Record<string, string | boolean | (string | boolean)[] | undefined>): CommandInput['values'] {
  const typed: Record<string, string | boolean | readonly string[] | undefined> = {};
  for (const [name, value] of Object.entries(values)) {
    if (!Array.isArray(value)) typed[name] = value;
    else typed[name] = value.every((v): v is string => typeof v === 'string') ? value : value.length > 0;
  }
  return typed;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

function stderrLogger(io: CliIo): Logger {
  return { info: (m) => io.stderr(m), warn: (m) => io.stderr(`warning: ${m}`) };
}

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'safeshift: upgrade PostgreSQL without betting the data on it',
    '',
    'Usage: safeshift <command> [options]    (safeshift <command> --help for its options and examples)',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Exit codes: 0 succeeded, 1 failed and rolled back, 2 refused (nothing changed), 3 needs an operator.',
  ].join('\n');
}

/** The `--help` text of one command. */
export function commandHelp(command: Command): string {
  const specs = { ...command.options, ...GLOBAL_OPTIONS };
  const flags = Object.entries(specs).map(
    ([name, s]) =>
      [
        `${s.short ? `-${s.short}, ` : ''}--${name}${s.type === 'string' ? ` ${s.placeholder ?? 'VALUE'}` : ''}`,
        `${s.description}${s.default ? ` (default: ${s.default})` : ''}`,
      ] as const,
  );
  const width = Math.max(...flags.map(([f]) => f.length));
  return [
    `safeshift ${command.name}: ${command.summary}`,
    '',
    wrap(command.description, 100),
    '',
    'Options:',
    ...flags.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`),
    '',
    'Examples:',
    ...command.examples.map((e) => `  ${e}`),
  ].join('\n');
}

function wrap(text: string, width: number): string {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + word.length + 1 > width) {
      out.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) out.push(line);
  return out.join('\n');
}
