// One process per journal directory: two writers would interleave records
// and assign the same seqs. A lock left by a process that died (kill -9,
// power loss) is taken over.

import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JOURNAL_FILE_MODE } from './fsutil.js';

export const LOCK_FILE = 'LOCK';

export async function acquireLock(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(path, String(process.pid), { flag: 'wx', mode: JOURNAL_FILE_MODE });
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
      throw new Error(`journal directory ${dir} is in use by process ${owner}`);
    }
    await rm(path, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
