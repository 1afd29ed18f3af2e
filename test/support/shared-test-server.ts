import type { TestProject } from 'vitest/node';
import startTestServer from './global-setup.ts';

/**
 * The global setup of every vitest project that needs PostgreSQL (vitest.config.ts). Vitest runs a
 * project's global setup only when that project has files in the run, and once per project: this
 * starts the one private cluster (test/support/global-setup.ts) for the first project that needs it
 * and hands the same URL to the others, so `npm test` (every project in one invocation) still runs a
 * single server, and `npm run test:unit` none. The last project's teardown stops it.
 *
 * Vitest loads this file once per project (each project has its own module runner), so what they
 * share lives on `globalThis` of the main vitest process.
 */
interface SharedServer {
  /** The cluster's URL, or the failure to start it (every project then fails the same way). */
  started: Promise<string>;
  stop: () => Promise<void>;
  users: number;
}

const KEY = Symbol.for('safeshift.test.sharedServer');
const registry = globalThis as { [KEY]?: SharedServer };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let shared = registry[KEY];
  if (!shared) {
    let stop: () => Promise<void> = async () => {};
    const started = (async () => {
      stop = await startTestServer(project);
      return project.getProvidedContext().safeshiftTestServerUrl;
    })();
    shared = { started, stop: () => stop(), users: 0 };
    registry[KEY] = shared;
  }
  const current = shared;
  current.users++;
  try {
    project.provide('safeshiftTestServerUrl', await current.started);
  } catch (error) {
    current.users--;
    if (current.users === 0) registry[KEY] = undefined;
    throw error;
  }
  return async () => {
    current.users--;
    if (current.users > 0) return;
    registry[KEY] = undefined;
    await current.stop();
  };
}
