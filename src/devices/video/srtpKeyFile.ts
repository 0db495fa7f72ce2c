import { execFileSync } from 'node:child_process';
import { constants, closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Hands ffmpeg its SRTP key without putting it on the command line, where
 * any local user sees it in `ps` (/proc/PID/cmdline is world-readable).
 *
 * ffmpeg 5-7 takes the key only as the srtp protocol option
 * `srtp_out_params`. Its `-fpre FILE` output option reads `key=value` lines
 * and applies them as options of that output, protocol options included; so
 * the key goes in such a "preset". Where possible the preset is a FIFO in a
 * private (0700) directory: ffmpeg reads it once while parsing its options,
 * the key never reaches a disk, and the FIFO is removed right after. Where a
 * FIFO cannot be made (no `mkfifo`, e.g. Windows), it is a 0600 file in that
 * directory, removed when ffmpeg exits. (Node's 'pipe' stdio are socket pairs,
 * which ffmpeg cannot open as /dev/fd/N, hence the FIFO.)
 */
export class SrtpKeyFile {
  readonly path: string;
  readonly #dir: string;
  readonly #contents: string;
  readonly #fifo: boolean;
  #disposed = false;

  private constructor(dir: string, contents: string, fifo: boolean) {
    this.#dir = dir;
    this.path = join(dir, 'srtp.ffpreset');
    this.#contents = contents;
    this.#fifo = fifo;
  }

  static async create(srtp: { cryptoSuite: string; keyBase64: string }): Promise<SrtpKeyFile> {
    // Validated so a hub cannot inject other ffmpeg options through the preset's lines.
    if (!/^[A-Z0-9_]+$/.test(srtp.cryptoSuite) || !/^[A-Za-z0-9+/=]+$/.test(srtp.keyBase64)) {
      throw new Error('the hub sent a malformed SRTP suite or key');
    }
    const dir = await mkdtemp(join(tmpdir(), 'hoichan-srtp-'));
    const contents = `srtp_out_suite=${srtp.cryptoSuite}\nsrtp_out_params=${srtp.keyBase64}\n`;
    const path = join(dir, 'srtp.ffpreset');
    let fifo = false;
    try {
      execFileSync('mkfifo', ['-m', '600', path], { stdio: 'ignore' });
      fifo = true;
    } catch {
      writeFileSync(path, contents, { mode: 0o600 });
    }
    return new SrtpKeyFile(dir, contents, fifo);
  }

  /**
   * Call once ffmpeg is started: writes the key into the FIFO as soon as
   * ffmpeg opens it (polled with a non-blocking open, so a dead ffmpeg cannot
   * hang a thread), then removes it. `alive` says whether ffmpeg still runs.
   */
  async deliver(alive: () => boolean, timeoutMs = 15_000): Promise<void> {
    if (!this.#fifo) return;
    const deadline = Date.now() + timeoutMs;
    try {
      while (!this.#disposed && alive() && Date.now() < deadline) {
        let fd: number;
        try {
          fd = openSync(this.path, constants.O_WRONLY | constants.O_NONBLOCK);
        } catch (err) {
          // ENXIO: no reader yet.
          if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err;
          await new Promise((resolve) => setTimeout(resolve, 20));
          continue;
        }
        try {
          // Far below PIPE_BUF: one write, never partial.
          writeSync(fd, this.#contents);
        } finally {
          closeSync(fd);
        }
        return;
      }
    } finally {
      await this.dispose();
    }
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await rm(this.#dir, { recursive: true, force: true });
  }
}
