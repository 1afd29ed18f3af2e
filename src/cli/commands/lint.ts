import { discoverMigrations } from '../../core/discover.ts';
import { ValidationError } from '../../core/errors.ts';
import { LINT_RULES, lintMigrations } from '../../core/lint/index.ts';
import type { Command } from '../command.ts';
import { DIR_OPTION, durationOption } from '../common-options.ts';
import { plural, table } from '../format.ts';

/** `safeshift lint`: find what would break running code or lock production, on the parse tree. */
export const lintCommand: Command = {
  name: 'lint',
  summary: 'check migrations for changes that break running code or lock production',
  description:
    'Parses every migration with the real PostgreSQL parser. Errors (exit 2) in an expand migration: changes that break the code still running. ' +
    'Warnings: what takes heavy locks. Acknowledge a finding with `-- safeshift:allow <rule> <reason>` ' +
    '(in the leading comments for the whole file, or just above the statement). Needs no database.',
  examples: ['safeshift lint --dir migrations', 'safeshift lint --rules', 'safeshift lint --json'],
  options: {
    ...DIR_OPTION,
    rules: { type: 'boolean', description: 'list the rules and exit' },
    'lock-timeout': {
      type: 'string',
      placeholder: 'DURATION',
      default: '5s',
      description: 'the lock_timeout migrate will use (0 = none), for the missing-lock-timeout rule',
    },
  },
  usesDatabase: false,
  async run(input) {
    if (input.values.rules) {
      return {
        exitCode: 0,
        json: LINT_RULES,
        text: table(
          ['rule', 'severity', 'what it finds'],
          LINT_RULES.map((r) => [r.name, r.severity, r.summary]),
        ),
      };
    }
    const discovery = await discoverMigrations(String(input.values.dir ?? 'migrations'));
    if (discovery.problems.length) throw new ValidationError(discovery.problems, 'reading the migrations folder');
    const report = await lintMigrations(discovery.migrations, { defaultLockTimeoutMs: durationOption(input, 'lock-timeout', '5s') });
    const lines = report.findings.map(
      (f) =>
        `${f.file}:${f.line}:${f.column} ${f.allowed ? 'allowed' : f.severity} [${f.rule}] ${f.message}` +
        (f.allowed ? `\n  reason: ${f.allowed.reason}` : `\n  fix: ${f.fix}`),
    );
    lines.push(
      `${plural(discovery.migrations.length, 'migration')} linted: ${plural(report.errors, 'error')}, ` +
        `${plural(report.warnings, 'warning')}, ${report.findings.filter((f) => f.allowed).length} acknowledged.`,
    );
    return { exitCode: report.errors > 0 ? 2 : 0, json: { ok: report.errors === 0, ...report }, text: lines.join('\n') };
  },
};
