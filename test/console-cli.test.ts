import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { testServerUrl } from './support/database.ts';

/**
 * `safeshift console` as a process: it prints the URL to stderr (never the database password),
 * serves until Ctrl-C, then stops cleanly. The command is run through its own module (the verb's
 * registration in the CLI's command list is separate), with tsx registered as bin/safeshift.js does.
 */
const COMMAND = path.resolve(import.meta.dirname, '../src/cli/commands/console.ts');
const RUNNER = `
import { register } from 'tsx/esm/api';
register();
const { consoleCommand } = await import(${JSON.stringify(COMMAND)});
const log = { info: (m) => process.stderr.write(m + '\\n'), warn: (m) => process.stderr.write('warning: ' + m + '\\n') };
const values = JSON.parse(process.env.CONSOLE_VALUES);
const out = await consoleCommand.run({ values, positionals: [], log, env: process.env, database: async () => { throw new Error('unused'); } });
process.stdout.write(JSON.stringify(out));
`;

describe('safeshift console', () => {
  it('prints its URL without secrets, serves the page and the API, and stops at Ctrl-C', async () => {
    const password = decodeURIComponent(new URL(testServerUrl()).password);
    const child = spawn(process.execPath, ['--input-type=module', '-e', RUNNER], {
      cwd: path.resolve(import.meta.dirname, '..'),
      env: { ...process.env, DATABASE_URL: testServerUrl(), CONSOLE_VALUES: JSON.stringify({ port: '0', database: ['console_cli_nothing'] }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const found = /safeshift console: (http:\/\/127\.0\.0\.1:\d+\/)\n/.exec(stderr)?.[1];
        if (found) resolve(found);
      });
      child.on('close', (code) => reject(new Error(`exited ${code} before serving:\n${stderr}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('safeshift console');
      const databases = await fetch(new URL('/api/databases', url));
      expect(await databases.json()).toEqual([]);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ exitCode: 0, json: { url, abandoned: false } });
    expect(stderr).toContain('press Ctrl-C to stop');
    expect(stderr.includes(password)).toBe(false);
  }, 60_000);
});
