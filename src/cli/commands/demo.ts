import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureEmbeddedServer } from '../../adapters/local/embedded-postgres.ts';
import { connectPg, redactUrl, withDatabase } from '../../adapters/local/pg-connection.ts';
import { info } from '../../core/info.ts';
import { migrate } from '../../core/migrate.ts';
import type { Command } from '../command.ts';
import { plural, table } from '../format.ts';

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples/migrations');
const DEMO_DATABASE = 'safeshift_demo';

/** `safeshift demo`: the example migrations applied to a fresh database on the embedded PostgreSQL. */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'migrate the example app on the embedded PostgreSQL and show the result',
  description: `Creates the database "${DEMO_DATABASE}" afresh on the embedded PostgreSQL, applies the example migrations (SQL, a no-transaction index, a TypeScript backfill, a repeatable view) and prints info.`,
  examples: ['safeshift demo', 'npm start'],
  options: {},
  usesDatabase: false,
  async run(input) {
    const log = input.log;
    log.info('starting the embedded PostgreSQL (first run creates it in .safeshift/pg)...');
    const server = await ensureEmbeddedServer({ log: (l) => log.info(l) });
    const admin = await connectPg(server.url, { applicationName: 'safeshift demo' });
    try {
      await admin.query(`drop database if exists ${admin.escapeIdentifier(DEMO_DATABASE)} with (force)`);
      await admin.query(`create database ${admin.escapeIdentifier(DEMO_DATABASE)}`);
    } finally {
      await admin.end();
    }
    const url = withDatabase(server.url, DEMO_DATABASE);
    log.info(`fresh database ${redactUrl(url)}`);
    const client = await connectPg(url, { applicationName: 'safeshift demo' });
    try {
      const result = await migrate({ client, dir: EXAMPLES, log });
      const report = await info({ client, dir: EXAMPLES });
      const text = [
        `Applied ${plural(result.applied.length, 'migration')} from examples/migrations: version ${result.fromVersion ?? 'none'} -> ${result.toVersion ?? 'none'}.`,
        table(['version', 'description', 'type', 'phase', 'state', 'ms'], report.migrations.map((m) => [m.version ?? 'R', m.description, m.type, m.phase, m.state, m.executionMs])),
        `schema version ${report.schemaVersion}, compatible from ${report.compatibleFrom}`,
        '',
        'Try it yourself on the embedded "app" database: npx safeshift migrate --dir examples/migrations --dry-run',
        'then migrate, info, lint, validate (each with --help). `npx safeshift embedded stop` stops the embedded PostgreSQL.',
      ].join('\n');
      return { exitCode: 0, json: { migrate: result, info: report }, text };
    } finally {
      await client.end();
    }
  },
};
