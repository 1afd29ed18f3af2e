/**
 * The example load writer in a process of its own, for test/support/busy-shop.ts, so its requests
 * and timers do not wait on the test's event loop (where a workflow runs). Driven over IPC
 * (test/support/ipc-child.ts).
 *
 * argv[2]: the writer's options as JSON (apiUrl, concurrency, customers).
 */
import { startWriter, type WriterOptions } from '../../examples/load/writer.ts';
import { serveParent } from './ipc-child.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as Omit<WriterOptions, 'log'>;
const log: string[] = [];
const writer = startWriter({ ...options, log: (line) => log.push(line) });

serveParent(
  null,
  {
    /**
     * Stops writing, waits for the requests in flight and answers with the report and every unexpected line it logged;
     * the process exits when the parent then lets go of it.
     */
    stop: async () => {
      const report = await writer.stop();
      return { report, log };
    },
  },
  async () => {
    await writer.stop();
  },
);
