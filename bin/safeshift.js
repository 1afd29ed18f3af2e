#!/usr/bin/env node
// Registers tsx so the TypeScript sources and .ts migrations load without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
