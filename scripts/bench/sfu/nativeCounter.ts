// The fan-out bench's packet counter in C (sfu/rtpcount.c), driven over its
// stdin/stdout line protocol. Compiled with the machine's C compiler on first
// use and cached by the source's hash, like the mediasoup worker.

import { spawn, execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ReceiverCommand, ReceiverReport } from './receivers.js';

// dist/scripts/bench/sfu/ -> the repository's scripts/bench/sfu/
const SOURCE = fileURLToPath(new URL('../../../../scripts/bench/sfu/rtpcount.c', import.meta.url));

/** Path of the compiled counter; builds it when the cache has none for this source. */
export function buildRtpCounter(): string {
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'hoichan', 'bench');
  const binary = join(dir, `rtpcount-${hash}`);
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', binary, SOURCE], { stdio: 'inherit' });
  return binary;
}

export class NativeReceivers {
  readonly child: ChildProcessWithoutNullStreams;
  count = 0;
  readonly ports: number[] = [];
  readonly #waiting: Array<(line: string) => void> = [];

  constructor(binary: string) {
    this.child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    createInterface({ input: this.child.stdout }).on('line', (line) => this.#waiting.shift()?.(line));
  }

  #ask(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.child.exitCode !== null) return reject(new Error(`rtpcount exited (${this.child.exitCode})`));
      this.#waiting.push(resolve);
      this.child.stdin.write(`${line}\n`);
    });
  }

  /** The same commands as the Node counter (sfu/receivers.ts), same replies. */
  async ask<T>(command: ReceiverCommand): Promise<T> {
    switch (command.cmd) {
      case 'open': {
        const reply = await this.#ask(`open ${command.count}`);
        return { ports: reply.split(' ').slice(1).map(Number) } as T;
      }
      case 'reset':
        await this.#ask('reset');
        return { ok: true } as T;
      case 'report': {
        const [receivers, received, expected, silent] = (await this.#ask('report')).split(' ').map(Number);
        return { receivers, received, expected, silent } satisfies ReceiverReport as T;
      }
      case 'close':
        this.close();
        return {} as T;
    }
  }

  async open(count: number): Promise<number[]> {
    this.count += count;
    const { ports } = await this.ask<{ ports: number[] }>({ cmd: 'open', count });
    if (ports.length !== count) throw new Error(`rtpcount opened ${ports.length} of ${count} sockets`);
    this.ports.push(...ports);
    return ports;
  }

  close(): void {
    if (this.child.exitCode === null) this.child.stdin.end('close\n');
  }
}
