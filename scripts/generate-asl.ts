// Writes state-machines/*.asl.json from src/steps/workflows.ts; `npm test` checks they are current.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WORKFLOWS } from '../src/steps/workflows.ts';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../state-machines');
for (const [file, build] of Object.entries(WORKFLOWS)) {
  writeFileSync(path.join(dir, file), `${JSON.stringify(build(), null, 2)}\n`);
  process.stdout.write(`wrote state-machines/${file}\n`);
}
