// Janus for the benches that compare against it (sfu-fanout: plain-RTP
// forwarders; webrtc: WebRTC subscribers): installing Debian's package when
// it is missing, a Janus process with its own configuration in a temporary
// folder (VideoRoom and the HTTP transport only), and its HTTP API: sessions,
// handles, synchronous plugin requests, and asynchronous ones whose answer
// (with its JSEP) comes on the session's long poll.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './common.js';

const janusPresent = () => !spawnSync('janus', ['--version'], { stdio: 'ignore' }).error;

/**
 * Installs Debian's janus when it is missing, as scripts/setup.sh does for its
 * packages: apt-get as root, or through passwordless sudo; `apt-get update`
 * first when apt does not know the package yet. Returns why it could not.
 */
export function ensureJanus(): { ok: true } | { ok: false; reason: string } {
  if (janusPresent()) return { ok: true };
  const asRoot = process.getuid?.() === 0;
  if (!asRoot && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status !== 0) {
    return { ok: false, reason: 'janus is not installed and apt-get needs root (no passwordless sudo): run apt-get install -y janus' };
  }
  const run = (args: string[], timeoutMs: number) => {
    const [cmd, ...rest] = asRoot ? args : ['sudo', '-n', ...args];
    const result = spawnSync(cmd!, rest, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    return { ok: result.status === 0, output: `${result.error?.message ?? ''}${result.stdout ?? ''}${result.stderr ?? ''}` };
  };
  const policy = run(['apt-cache', 'policy', 'janus'], 30_000);
  if (!/Candidate: (?!\(none\))/.test(policy.output)) {
    console.log('janus: unknown to apt, running apt-get update...');
    run(['apt-get', 'update', '-q'], 180_000);
  }
  console.log('janus: not installed, installing the Debian package (apt-get install -y janus)...');
  const install = run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', 'janus'], 300_000);
  if (!install.ok || !janusPresent()) {
    return { ok: false, reason: `janus is not installed and apt-get install janus failed: ${install.output.trim().split('\n').slice(-2).join(' ').slice(0, 200)}` };
  }
  return { ok: true };
}

export interface JanusOptions {
  httpPort: number;
  /** UDP ports of its media: plain RTP of remote publishers, or one per WebRTC peer. */
  rtpPortRange: string;
  /**
   * The address its ICE gathers on. Janus never gathers on a loopback
   * interface (src/ice.c skips IFF_LOOPBACK), so WebRTC peers on the same
   * machine meet it on a local non-loopback address; the kernel still
   * delivers that traffic on the loopback device.
   */
  iceAddress?: string;
  /**
   * `general.event_loops`: a fixed pool of this many threads, each an event
   * loop, that every handle's media shares (handles are added round robin).
   * Absent or 0: Janus's default, a loop and thread of its own per handle.
   * start() checks that Janus reports the pool (/info `static-event-loops`).
   */
  eventLoops?: number;
}

/** A Janus process of its own, configured in a temporary folder; its HTTP API on 127.0.0.1. */
export class JanusServer {
  log = '';
  #tx = 0;

  private constructor(
    readonly base: string,
    readonly child: ChildProcess,
    readonly dir: string,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  static async start(options: JanusOptions): Promise<JanusServer> {
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-janus-'));
    writeJanusConfig(dir, options);
    const child = spawn('janus', ['-F', dir, '-C', join(dir, 'janus.jcfg')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new JanusServer(`http://127.0.0.1:${options.httpPort}/janus`, child, dir);
    child.stdout!.on('data', (d: Buffer) => (server.log = (server.log + d.toString()).slice(-20_000)));
    child.stderr!.on('data', (d: Buffer) => (server.log = (server.log + d.toString()).slice(-20_000)));
    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    const deadline = Date.now() + 15_000;
    let info: JanusReply;
    for (;;) {
      try {
        info = await Promise.race([server.post('/info', undefined), spawnError]);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('janus is not installed (apt-get install -y janus)');
        if (Date.now() > deadline) {
          await server.stop();
          throw new Error(`janus did not answer on ${server.base}: ${(err as Error).message}\n${server.log.slice(-2000)}`);
        }
        await sleep(200);
      }
    }
    // Janus skips a setting it does not know without a word: a bench that says which threading it ran must see it applied.
    const loops = Number(info['static-event-loops'] ?? 0);
    if (loops !== (options.eventLoops ?? 0)) {
      await server.stop();
      throw new Error(`janus runs ${loops} static event loops, not the ${options.eventLoops ?? 0} of general.event_loops`);
    }
    return server;
  }

  /** One request of the HTTP API; a body-less call is a GET. Janus errors become exceptions. */
  async post(path: string, body: Record<string, unknown> | undefined): Promise<JanusReply> {
    return janusCall(this.base + path, body, `t${++this.#tx}`);
  }

  async stop(): Promise<void> {
    const proc = this.child;
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// Janus's JSON is loosely typed per plugin; the callers read the few fields they need and check them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type JanusReply = Record<string, any>;

async function janusCall(url: string, body: Record<string, unknown> | undefined, transaction: string, signal?: AbortSignal): Promise<JanusReply> {
  const res = await fetch(url, body === undefined ? { signal } : { method: 'POST', body: JSON.stringify({ ...body, transaction }), signal });
  const reply = (await res.json()) as JanusReply;
  if (!Array.isArray(reply) && reply.janus === 'error') throw new Error(`janus: ${JSON.stringify(reply.error)}`);
  return reply;
}

/**
 * One Janus session, as one browser holds it: its handles, and its long poll
 * (GET /janus/<session>) that delivers the answers of asynchronous requests
 * (matched by transaction) and the events of its handles.
 */
export class JanusSession {
  #tx = 0;
  #polling = false;
  readonly #abort = new AbortController();
  readonly #waiting = new Map<string, { resolve: (r: JanusReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  /** Handle events that answer no request (hangup, webrtcup, media, slowlink), for whoever wants them. */
  onEvent?: (event: JanusReply) => void;

  private constructor(
    readonly base: string,
    readonly id: number,
  ) {}

  static async create(base: string): Promise<JanusSession> {
    const created = await janusCall(base, { janus: 'create' }, 'create');
    return new JanusSession(base, Number(created.data.id));
  }

  async attach(plugin = 'janus.plugin.videoroom'): Promise<number> {
    const attached = await this.#post({ janus: 'attach', plugin });
    return Number(attached.data.id);
  }

  /** A synchronous plugin request (create, listparticipants, ...): its plugin data, or an error. */
  async request(handle: number, body: Record<string, unknown>): Promise<JanusReply> {
    const reply = await this.#post({ janus: 'message', body }, handle);
    const data = reply.plugindata?.data;
    if (!data || data.error) throw new Error(`janus ${String(body.request)}: ${JSON.stringify(reply).slice(0, 300)}`);
    return data;
  }

  /**
   * An asynchronous plugin request (join, joinandconfigure, start): Janus acks
   * it at once and answers on the long poll; resolves with that event (its
   * plugin data and JSEP).
   */
  async message(handle: number, body: Record<string, unknown>, jsep?: { type: 'offer' | 'answer'; sdp: string }, timeoutMs = 15_000): Promise<{ data: JanusReply; jsep?: { type: string; sdp: string } }> {
    const transaction = `t${++this.#tx}`;
    this.#poll();
    const answered = new Promise<JanusReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(transaction);
        reject(new Error(`janus ${String(body.request)}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(transaction, { resolve, reject, timer });
    });
    // Awaited below, but it may settle while the POST is still out.
    answered.catch(() => undefined);
    const forget = () => {
      const waiting = this.#waiting.get(transaction);
      if (waiting) clearTimeout(waiting.timer);
      this.#waiting.delete(transaction);
    };
    let ack: JanusReply;
    try {
      ack = await janusCall(`${this.base}/${this.id}/${handle}`, { janus: 'message', body, ...(jsep ? { jsep } : {}) }, transaction);
    } catch (err) {
      forget();
      throw err;
    }
    if (ack.janus !== 'ack') {
      // Answered at once after all (an error from the plugin, for one).
      forget();
      return this.#pluginEvent(body, ack);
    }
    return this.#pluginEvent(body, await answered);
  }

  #pluginEvent(body: Record<string, unknown>, event: JanusReply): { data: JanusReply; jsep?: { type: string; sdp: string } } {
    const data = event.plugindata?.data;
    if (!data || data.error) throw new Error(`janus ${String(body.request)}: ${JSON.stringify(event).slice(0, 300)}`);
    return { data, jsep: event.jsep };
  }

  async #post(body: Record<string, unknown>, handle?: number): Promise<JanusReply> {
    return janusCall(`${this.base}/${this.id}${handle === undefined ? '' : `/${handle}`}`, body, `t${++this.#tx}`);
  }

  /** The long poll: one GET at a time, up to 10 events each, until close(). */
  #poll(): void {
    if (this.#polling) return;
    this.#polling = true;
    void (async () => {
      while (!this.#abort.signal.aborted) {
        let events: JanusReply[];
        try {
          const reply = await janusCall(`${this.base}/${this.id}?maxev=10`, undefined, '', this.#abort.signal);
          events = Array.isArray(reply) ? reply : [reply];
        } catch (err) {
          if (this.#abort.signal.aborted) return;
          for (const [, w] of this.#waiting) w.reject(err as Error);
          this.#waiting.clear();
          this.onEvent?.({ janus: 'poll-error', reason: (err as Error).message });
          return;
        }
        for (const event of events) {
          const waiting = typeof event.transaction === 'string' ? this.#waiting.get(event.transaction) : undefined;
          if (waiting && event.janus === 'event') {
            clearTimeout(waiting.timer);
            this.#waiting.delete(event.transaction);
            waiting.resolve(event);
          } else if (event.janus !== 'keepalive') this.onEvent?.(event);
        }
      }
    })();
  }

  /** Stops the long poll and destroys the session on the server (its handles and peer connections with it). */
  async close(): Promise<void> {
    this.#abort.abort();
    for (const [, w] of this.#waiting) {
      clearTimeout(w.timer);
      w.reject(new Error('session closed'));
    }
    this.#waiting.clear();
    await this.#post({ janus: 'destroy' }).catch(() => undefined);
  }
}

function writeJanusConfig(dir: string, options: JanusOptions): void {
  const libs = '/usr/lib/x86_64-linux-gnu/janus';
  const otherPlugins = ['audiobridge', 'duktape', 'lua', 'nosip', 'recordplay', 'sip', 'streaming', 'textroom', 'videocall', 'voicemail', 'echotest'];
  const otherTransports = ['websockets', 'pfunix', 'mqtt', 'rabbitmq', 'nanomsg'];
  writeFileSync(
    join(dir, 'janus.jcfg'),
    `general: {
\tconfigs_folder = "${dir}"
\tplugins_folder = "${libs}/plugins"
\ttransports_folder = "${libs}/transports"
\tevents_folder = "${libs}/events"
\tloggers_folder = "${libs}/loggers"
\tdebug_level = 3
\tsession_timeout = 0
${options.eventLoops ? `\tevent_loops = ${options.eventLoops}\n` : ''}}
media: {
\trtp_port_range = "${options.rtpPortRange}"
}
nat: {
${options.iceAddress ? `\tice_enforce_list = "${options.iceAddress}"\n` : ''}}
plugins: {
\tdisable = "${otherPlugins.map((p) => `libjanus_${p}.so`).join(',')}"
}
transports: {
\tdisable = "${otherTransports.map((t) => `libjanus_${t}.so`).join(',')}"
}
events: {
\tbroadcast = false
}
`,
  );
  writeFileSync(
    join(dir, 'janus.transport.http.jcfg'),
    `general: {\n\tjson = "compact"\n\tbase_path = "/janus"\n\thttp = true\n\tport = ${options.httpPort}\n\tip = "127.0.0.1"\n\thttps = false\n}\nadmin: {\n\tadmin_http = false\n\tadmin_https = false\n}\n`,
  );
  writeFileSync(join(dir, 'janus.plugin.videoroom.jcfg'), 'general: {\n}\n');
}
