/**
 * Whether a process with this pid exists (EPERM: it does, owned by another user): how a test folder
 * or cache claimed by a pid tells a live owner from an abandoned one.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
