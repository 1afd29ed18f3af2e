import { runCli } from './run-cli.ts';

// The only place that ends the process: everything else returns an exit code.
const code = await runCli(process.argv.slice(2), {
  stdout: (t) => process.stdout.write(`${t}\n`),
  stderr: (t) => process.stderr.write(`${t}\n`),
  env: process.env,
});
process.exit(code);
