import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { IngestCodec, IngestInfo, IngestSource } from '../../contract/ingest.js';
import { Backoff } from '../../common/backoff.js';
import { createLogger } from '../../common/logger.js';
import { ffmpegIngestArgs, SIMULATED_ULTRASOUND_INPUT } from './ffmpegArgs.js';
import { SrtpKeyFile } from './srtpKeyFile.js';

const log = createLogger('video-ingest');

export interface IngestSenderOptions {
  hubUrl: string;
  /** A site (or specialist) token for the conference. */
  token: string;
  conferenceId: string;
  deviceId: string;
  displayName?: string;
  source: IngestSource;
  codec: IngestCodec;
  srtp: boolean;
  /** ffmpeg input arguments, e.g. ['-f', 'v4l2', '-i', '/dev/video0']; default: a simulated ultrasound. */
  input?: string[];
  bitrateKbps?: number;
  /** How often the hub is asked whether the ingest still exists. */
  checkEveryMs?: number;
  ffmpegPath?: string;
}

export interface IngestSenderEvents {
  /** An ingest was (re)opened on the hub and ffmpeg is sending to it. */
  sending: [IngestInfo];
  error: [Error];
}

/**
 * Sends a capture device's video into a conference: opens an ingest on the
 * hub, runs ffmpeg towards it, and starts over when the ingest disappears
 * (the hub's worker restarted, or it closed an idle ingest) or ffmpeg exits.
 */
export class IngestSender extends EventEmitter<IngestSenderEvents> {
  readonly #options: IngestSenderOptions;
  #ffmpeg: ChildProcess | undefined;
  #current: IngestInfo | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #restarting = false;

  constructor(options: IngestSenderOptions) {
    super();
    this.#options = options;
  }

  get current(): IngestInfo | undefined {
    return this.#current;
  }

  async start(): Promise<IngestInfo> {
    const info = await this.#open();
    this.#timer = setInterval(() => void this.#check(), this.#options.checkEveryMs ?? 5000);
    return info;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#killFfmpeg();
    const info = this.#current;
    this.#current = undefined;
    if (info) await this.#request('DELETE', `/${info.ingestId}`).catch(() => undefined);
  }

  #base(): string {
    return `${this.#options.hubUrl}/api/conferences/${encodeURIComponent(this.#options.conferenceId)}/ingests`;
  }

  async #request(method: string, path = '', body?: unknown): Promise<Response> {
    return fetch(this.#base() + path, {
      method,
      headers: { authorization: `Bearer ${this.#options.token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  }

  async #open(): Promise<IngestInfo> {
    const { deviceId, displayName, source, codec, srtp } = this.#options;
    const res = await this.#request('POST', '', { deviceId, displayName, source, codec, srtp });
    const body = (await res.json()) as IngestInfo | { error: { code: string; message: string } };
    if (!res.ok || 'error' in body) {
      const error = 'error' in body ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`;
      throw new Error(`hub refused the ingest: ${error}`);
    }
    this.#current = body;
    await this.#runFfmpeg(body);
    log.info({ ingestId: body.ingestId, deviceId, codec, port: body.port, srtp: Boolean(body.srtp) }, 'sending video to the hub');
    this.emit('sending', body);
    return body;
  }

  async #runFfmpeg(info: IngestInfo): Promise<void> {
    const keyFile = info.srtp ? await SrtpKeyFile.create(info.srtp) : undefined;
    if (this.#stopped) {
      await keyFile?.dispose();
      return;
    }
    const args = ffmpegIngestArgs(info, this.#options.input ?? SIMULATED_ULTRASOUND_INPUT, this.#options.bitrateKbps, keyFile?.path);
    // stdout ignored: ffmpeg prints the stream's SDP there, key included.
    const ffmpeg = spawn(this.#options.ffmpegPath ?? 'ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#ffmpeg = ffmpeg;
    if (keyFile) {
      ffmpeg.once('exit', () => void keyFile.dispose());
      ffmpeg.once('error', () => void keyFile.dispose());
      void keyFile.deliver(() => ffmpeg.exitCode === null && ffmpeg.signalCode === null).catch((err: Error) => {
        log.warn({ err: err.message }, 'could not hand ffmpeg its SRTP key');
      });
    }
    let stderr = '';
    ffmpeg.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    ffmpeg.on('error', (err) => this.emit('error', new Error(`cannot run ffmpeg: ${err.message}`)));
    ffmpeg.on('exit', (code, signal) => {
      if (this.#ffmpeg !== ffmpeg || this.#stopped) return;
      log.warn({ code, signal, stderr: stderr.trim().slice(-300) }, 'ffmpeg exited; restarting the ingest');
      void this.#restart();
    });
  }

  #killFfmpeg(): void {
    const ffmpeg = this.#ffmpeg;
    this.#ffmpeg = undefined;
    if (ffmpeg && ffmpeg.exitCode === null) ffmpeg.kill('SIGTERM');
  }

  async #check(): Promise<void> {
    const info = this.#current;
    if (!info || this.#stopped || this.#restarting) return;
    try {
      const res = await this.#request('GET', `/${info.ingestId}`);
      if (res.status === 404) {
        log.warn({ ingestId: info.ingestId }, 'the hub no longer has this ingest; opening a new one');
        await this.#restart();
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'hub not reachable; will check again');
    }
  }

  async #restart(): Promise<void> {
    if (this.#restarting || this.#stopped) return;
    this.#restarting = true;
    this.#killFfmpeg();
    this.#current = undefined;
    // A fresh backoff per restart: the first retry after a working stretch waits 1 s again.
    const backoff = new Backoff({ minMs: 1000, maxMs: 30_000 });
    try {
      while (!this.#stopped) {
        try {
          await this.#open();
          return;
        } catch (err) {
          const delay = backoff.next();
          log.warn({ err: (err as Error).message, retryInMs: delay }, 'cannot open an ingest');
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    } finally {
      this.#restarting = false;
    }
  }
}
