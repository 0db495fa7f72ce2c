// One `hoichan loadtest --json` in its own process (the generator), as an
// engineer runs it: its pid (for its RSS and CPU), its progress lines as they
// come (joined clients, failures and loss so far) and, at the end, its report.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { LoadtestReport } from '../../../src/loadtest/report.js';
import { PROJECT_ROOT } from './common.js';
import { BENCH_SECRET } from './hubProcess.js';

/** What the generator's latest progress line said. */
export interface LoadtestProgress {
  phase: 'joining' | 'media';
  joined: number;
  subscribers: number;
  failures: number;
  packets: number;
  lossPercent: number;
}

// run.ts's progress line: "[12s] joining: publishers 1/1, subscribers joined 40/200, failures 0, packets received 123, loss 0.00 %"
const PROGRESS = /^\[\d+s\] (joining|media [^:]*): publishers \d+\/\d+, subscribers joined (\d+)\/(\d+), failures (\d+), packets received (\d+), loss ([\d.]+) %/;

export function parseProgress(line: string): LoadtestProgress | undefined {
  const m = PROGRESS.exec(line);
  if (!m) return undefined;
  return { phase: m[1] === 'joining' ? 'joining' : 'media', joined: Number(m[2]), subscribers: Number(m[3]), failures: Number(m[4]), packets: Number(m[5]), lossPercent: Number(m[6]) };
}

export class LoadtestProcess {
  progress: LoadtestProgress | undefined;
  /** Generator stderr lines that are not progress (its warnings), last 50. */
  readonly otherLines: string[] = [];
  readonly report: Promise<LoadtestReport>;
  readonly #child: ChildProcess;

  /** `args`: the loadtest options after `--hub URL` (e.g. --conference, --subscribers); --json is added. */
  constructor(hubUrl: string, args: string[], backstopSeconds: number, onProgress: (p: LoadtestProgress) => void = () => undefined) {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'hoichan.js'), 'loadtest', '--hub', hubUrl, ...args, '--json'], {
      // The secret through the environment, as docs/LOADTEST.md advises (not in ps).
      env: { ...process.env, HOICHAN_JWT_SECRET: BENCH_SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    let out = '';
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const p = parseProgress(line);
        if (p) {
          this.progress = p;
          onProgress(p);
        } else if (line.trim()) {
          this.otherLines.push(line);
          if (this.otherLines.length > 50) this.otherLines.shift();
        }
      }
    });
    // The run bounds itself; this is the backstop for a wedged generator.
    const timer = setTimeout(() => child.kill('SIGKILL'), backstopSeconds * 1000);
    this.report = new Promise((resolve, reject) => {
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(out) as LoadtestReport);
        } catch {
          reject(new Error(`loadtest gave no report (exit ${code ?? signal}): ${this.otherLines.slice(-5).join('\n')}`));
        }
      });
    });
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** Ends the run early: the generator closes every client and still prints its report. */
  stop(): void {
    this.#child.kill('SIGTERM');
  }
}
