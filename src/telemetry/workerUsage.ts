import { readFileSync } from 'node:fs';
import type { MediaWorker } from '../media/WorkerPool.js';

export interface WorkerUsage {
  /** user + system CPU time, seconds */
  cpuSeconds: number;
  maxRssBytes: number;
  /** Current RSS (Linux /proc), else undefined. */
  rssBytes: number | undefined;
}

const PAGE_SIZE = 4096;
/** A hung worker must not hang a scrape. */
const USAGE_TIMEOUT_MS = 1000;

/** Resource usage of one worker: ru_utime/ru_stime are ms and ru_maxrss KiB (libuv uv_getrusage; unchanged from mediasoup 3.12 to 3.19). */
export async function workerUsage(worker: MediaWorker): Promise<WorkerUsage | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), USAGE_TIMEOUT_MS)));
  try {
    const usage = await Promise.race([worker.worker.getResourceUsage(), timeout]);
    if (!usage) return undefined;
    return {
      cpuSeconds: (usage.ru_utime + usage.ru_stime) / 1000,
      maxRssBytes: usage.ru_maxrss * 1024,
      rssBytes: currentRss(worker.worker.pid),
    };
  } catch {
    return undefined; // the worker died meanwhile
  } finally {
    clearTimeout(timer);
  }
}

export function currentRss(pid: number): number | undefined {
  try {
    const [, resident] = readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
    return Number(resident) * PAGE_SIZE;
  } catch {
    return undefined;
  }
}

/** CPU percent of each worker (100 = one core) between consecutive samples. */
export class WorkerCpuSampler {
  readonly #last = new Map<number, { cpuSeconds: number; at: number }>();
  readonly #percent = new Map<number, number>();

  async sample(workers: MediaWorker[]): Promise<void> {
    const live = new Set<number>();
    await Promise.all(
      workers.map(async (w) => {
        const pid = w.worker.pid;
        live.add(pid);
        const usage = await workerUsage(w);
        if (!usage) return;
        const at = performance.now();
        const last = this.#last.get(pid);
        if (last && at > last.at) this.#percent.set(pid, (100 * (usage.cpuSeconds - last.cpuSeconds)) / ((at - last.at) / 1000));
        this.#last.set(pid, { cpuSeconds: usage.cpuSeconds, at });
      }),
    );
    for (const pid of this.#last.keys()) {
      if (!live.has(pid)) {
        this.#last.delete(pid);
        this.#percent.delete(pid);
      }
    }
  }

  /** Undefined until two samples of this worker process exist. */
  percent(pid: number): number | undefined {
    return this.#percent.get(pid);
  }
}
