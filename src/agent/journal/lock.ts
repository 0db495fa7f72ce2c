// One process per journal directory: two writers would interleave records
// and assign the same seqs (src/common/pidLock.ts takes over a dead owner's lock).

import { acquirePidLock } from '../../common/pidLock.js';

export function acquireLock(dir: string): Promise<() => Promise<void>> {
  return acquirePidLock(dir, (owner) => `journal directory ${dir} is in use by process ${owner}`);
}
