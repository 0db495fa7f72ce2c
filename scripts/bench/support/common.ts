// Shared helpers of the Hoichan benches: percentiles, CPU of a process from
// /proc, a plain-text table, the machine description and bench-results/*.json.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
export const RESULTS_DIR = join(PROJECT_ROOT, 'bench-results');

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))]!;
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** user + system CPU seconds of a process (all its threads), from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Resident set size of a process in bytes (/proc/<pid>/status VmRSS). */
export function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : NaN;
}

/** CPU percent (100 = one core) of the given processes over a running window. */
export class CpuMeter {
  readonly #start: Map<number, number>;
  readonly #startedAt = performance.now();

  constructor(readonly pids: number[]) {
    this.#start = new Map(pids.map((pid) => [pid, cpuSecondsOf(pid)]));
  }

  percent(): number {
    const seconds = (performance.now() - this.#startedAt) / 1000;
    let used = 0;
    for (const [pid, start] of this.#start) used += cpuSecondsOf(pid) - start;
    return (100 * used) / seconds;
  }
}

export function printTable(title: string, rows: Record<string, unknown>[]): string {
  const first = rows[0];
  if (!first) return '';
  const columns = Object.keys(first);
  const cell = (v: unknown) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1)) : String(v ?? ''));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => `| ${values.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  const text = [
    `\n${title}`,
    line(columns),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map((r) => line(columns.map((c) => cell(r[c])))),
  ].join('\n');
  console.log(text);
  return text;
}

function versionOf(command: string, args: string[], pattern: RegExp): string {
  try {
    const out = execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return pattern.exec(out)?.[1] ?? out.split('\n')[0]!.trim();
  } catch {
    return 'not installed';
  }
}

export function machine(): Record<string, string | number> {
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(join(PROJECT_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'missing';
    }
  };
  return {
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    ramGiB: Math.round(totalmem() / 2 ** 30),
    kernel: versionOf('uname', ['-r'], /(.+)/),
    node: process.version,
    mediasoup: pkg('mediasoup'),
    'mediasoup-client': pkg('mediasoup-client'),
    'socket.io': pkg('socket.io'),
    ffmpeg: versionOf('ffmpeg', ['-version'], /ffmpeg version (\S+)/),
    janus: versionOf('dpkg-query', ['-W', '-f=${Version}', 'janus'], /(.+)/),
    chromium: versionOf('/usr/bin/chromium', ['--version'], /Chromium (\S+)/),
    loadavgAtStart: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
}

export function writeResults(name: string, data: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(path, JSON.stringify({ bench: name, at: new Date().toISOString(), machine: machine(), ...(data as object) }, null, 2));
  console.log(`\nwrote ${path}`);
  return path;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
