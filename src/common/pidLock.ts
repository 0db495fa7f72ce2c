// One process per directory, for files that one writer must own: two writers
// would interleave records (a journal would hand out the same seqs twice, an
// audit log would fork its hash chain). The lock is a LOCK file holding the
// owner's pid, created exclusively and owner-only; a lock left by a process
// that died (kill -9, power loss) is taken over.

import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const LOCK_FILE = 'LOCK';

/**
 * Takes dir's lock or throws the error inUse(owner) describes when a live
 * process holds it. Returns the release function.
 */
export async function acquirePidLock(dir: string, inUse: (ownerPid: number) => string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(path, String(process.pid), { flag: 'wx', mode: 0o600 });
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) throw new Error(inUse(owner));
    await rm(path, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the pid exists but belongs to another user, so it is alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
