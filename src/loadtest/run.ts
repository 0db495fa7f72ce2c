// One load test run: publishers join first and start sending, subscribers
// join at the chosen rate and consume every producer, media flows for the
// chosen duration after the last join, then every client is closed and the
// subscribers' counters become the report. Bounded in clients and time.

import { loadAudioClip, loadVideoClip, SIMULCAST_LAYERS, type AudioClip, type VideoClip, type VideoCodec } from './media.js';
import { Publisher, Subscriber, type PeerOptions } from './client.js';
import { percentile, summarizeTracks, type LoadtestReport } from './report.js';
import { tokenSource } from './signaling.js';

export const LIMITS = { maxPublishers: 50, maxSubscribers: 1000, maxDurationSeconds: 3600, maxJoinRate: 100, minJoinRate: 0.1, maxLastN: 25 } as const;

export interface LoadtestOptions {
  hubUrl: string;
  conferenceId: string;
  tokenSecret?: string;
  /** iss of minted tokens: the hub's auth.issuer (default 'hoichan'). */
  tokenIssuer?: string;
  tokensFile?: string;
  publishers: number;
  subscribers: number;
  durationSeconds: number;
  video: VideoCodec;
  audioOnly: boolean;
  /** Publishers send three layers (180p, 360p, 720p); subscribers receive what the hub picks (the highest, with no bandwidth estimate). */
  simulcast?: boolean;
  /** clients started per second */
  joinRate: number;
  /** Subscribers ask the hub for last-N (setVideoPreferences: nothing pinned, this many speaker thumbnails); absent: every video. */
  lastN?: number;
}

/**
 * Makes the clients of a run. The default speaks the hub's signaling; the
 * WebRTC bench (scripts/bench/webrtc.ts) gives one whose clients speak
 * another SFU's (Janus VideoRoom) with the same media and the same counters.
 */
export interface ClientFactory {
  publisher(id: string, video: VideoClip[], audio: AudioClip): Publisher;
  subscriber(id: string, video: VideoCodec, options: PeerOptions): Subscriber;
}

const hubClients: ClientFactory = {
  publisher: (id, video, audio) => new Publisher(id, video, audio),
  subscriber: (id, video, options) => new Subscriber(id, video, options),
};

export interface RunHooks {
  /** Who the clients are; default: clients of the hub's signaling. */
  clients?: ClientFactory;
  /** Called about every 2 s with a one-line status. */
  onProgress?: (line: string) => void;
  /** Test hook: subscribers drop packets whose sequence number is a multiple of this before counting. */
  dropEvery?: number;
  /** With dropEvery: let retransmissions through (the hub's NACK repairs then show as recovered). */
  keepRetransmissions?: boolean;
  /** Stops the run early (Ctrl-C); the report covers what was measured. */
  signal?: AbortSignal;
}

export class LoadtestOptionError extends Error {}

/** Checks every option against its bound; the message names the option. */
export function validateOptions(o: LoadtestOptions): void {
  const fail = (m: string) => {
    throw new LoadtestOptionError(m);
  };
  if (!/^https?:\/\//.test(o.hubUrl)) fail('--hub must be an http:// or https:// URL');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(o.conferenceId)) fail('--conference must be 1-64 letters, digits, _ . or -');
  if (!o.tokenSecret === !o.tokensFile) fail('give exactly one of --token-secret and --tokens');
  if (!Number.isInteger(o.publishers) || o.publishers < 0 || o.publishers > LIMITS.maxPublishers) fail(`--publishers must be a whole number 0..${LIMITS.maxPublishers}`);
  if (!Number.isInteger(o.subscribers) || o.subscribers < 0 || o.subscribers > LIMITS.maxSubscribers) fail(`--subscribers must be a whole number 0..${LIMITS.maxSubscribers}`);
  if (o.publishers + o.subscribers === 0) fail('nothing to do: --publishers and --subscribers are both 0');
  if (!(o.durationSeconds >= 1 && o.durationSeconds <= LIMITS.maxDurationSeconds)) fail(`--duration must be 1s..${LIMITS.maxDurationSeconds}s`);
  if (o.simulcast && o.audioOnly) fail('--simulcast and --audio-only do not go together');
  if (!(o.joinRate >= LIMITS.minJoinRate && o.joinRate <= LIMITS.maxJoinRate)) fail(`--join-rate must be ${LIMITS.minJoinRate}/s..${LIMITS.maxJoinRate}/s`);
  if (o.lastN !== undefined && !(Number.isInteger(o.lastN) && o.lastN >= 0 && o.lastN <= LIMITS.maxLastN)) fail(`--last-n must be a whole number 0..${LIMITS.maxLastN}`);
  if (o.lastN !== undefined && o.audioOnly) fail('--last-n and --audio-only do not go together');
}

/** "60s", "2m", "90" (seconds) -> seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(text.trim());
  if (!m) throw new LoadtestOptionError(`--duration: '${text}' is not like 60s or 2m`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

/** "10/s" or "10" -> clients per second. */
export function parseRate(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(?:\/s)?$/.exec(text.trim());
  if (!m) throw new LoadtestOptionError(`--join-rate: '${text}' is not like 10/s`);
  return Number(m[1]);
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

export async function runLoadtest(options: LoadtestOptions, hooks: RunHooks = {}): Promise<LoadtestReport> {
  validateOptions(options);
  const video = options.audioOnly ? [] : options.simulcast ? SIMULCAST_LAYERS.map((layer) => loadVideoClip(options.video, layer)) : [loadVideoClip(options.video)];
  const audio = loadAudioClip();
  const tokens = tokenSource({ tokenSecret: options.tokenSecret, tokenIssuer: options.tokenIssuer, tokensFile: options.tokensFile, conferenceId: options.conferenceId, ttlSeconds: options.durationSeconds + 3600 });
  const runId = Math.random().toString(36).slice(2, 8);
  const clients = hooks.clients ?? hubClients;
  const publishers: Publisher[] = [];
  const subscribers: Subscriber[] = [];
  const started: Promise<boolean>[] = [];
  const cpuAt = process.cpuUsage();
  const wallAt = performance.now();
  let measureFrom = 0;

  const progress = () => {
    const joined = subscribers.filter((s) => s.timings.joinMs !== undefined).length;
    const failures = [...publishers, ...subscribers].filter((c) => c.failure).length;
    let packets = 0;
    let lost = 0;
    let expected = 0;
    for (const s of subscribers)
      for (const r of s.received.values()) {
        const t = r.stream.totals();
        packets += t.packets;
        lost += t.lost;
        expected += t.expected;
      }
    const elapsed = (performance.now() - wallAt) / 1000;
    const phase = measureFrom ? `media ${((performance.now() - measureFrom) / 1000).toFixed(0)}/${options.durationSeconds}s` : 'joining';
    hooks.onProgress?.(
      `[${elapsed.toFixed(0)}s] ${phase}: publishers ${publishers.length}/${options.publishers}, subscribers joined ${joined}/${options.subscribers}, failures ${failures}, packets received ${packets}, loss ${expected ? ((100 * lost) / expected).toFixed(2) : '0.00'} %`,
    );
  };
  const progressTimer = setInterval(progress, 2000);

  try {
    // Clients start on a fixed schedule (the join rate), each without waiting for the one before: a slow join is measured, not hidden.
    const interval = 1000 / options.joinRate;
    let index = 0;
    const launch = async (client: Publisher | Subscriber) => {
      await sleep(index++ === 0 ? 0 : interval, hooks.signal);
      if (hooks.signal?.aborted) return;
      started.push(client.start(options.hubUrl, tokens(index - 1, `${runId}-${client.id}`), options.conferenceId));
    };
    for (let i = 0; i < options.publishers; i++) {
      const p = clients.publisher(`pub-${i}`, video, audio);
      publishers.push(p);
      await launch(p);
    }
    // Publishers first: subscribers then find their producers in the join reply (newProducer also works, one renegotiation each).
    await Promise.all(started);
    for (let i = 0; i < options.subscribers; i++) {
      const s = clients.subscriber(`sub-${i}`, options.video, { dropEvery: hooks.dropEvery, keepRetransmissions: hooks.keepRetransmissions, lastN: options.lastN });
      subscribers.push(s);
      await launch(s);
    }
    await Promise.all(started);
    measureFrom = performance.now();
    progress();
    await sleep(options.durationSeconds * 1000, hooks.signal);
  } finally {
    clearInterval(progressTimer);
  }
  const endedAt = performance.now();
  const measuredSeconds = measureFrom ? (endedAt - measureFrom) / 1000 : 0;
  const cpu = process.cpuUsage(cpuAt);
  const generatorCpuPercent = (100 * (cpu.user + cpu.system)) / 1000 / (endedAt - wallAt);
  for (const c of [...subscribers, ...publishers]) c.close();

  // Per stream, bitrate over the time it actually received (first packet to end), so early joiners do not inflate it.
  const totals = subscribers.flatMap((s) => [...s.received.values()].map((r) => r.stream.totals()));
  const activeSeconds = totals.map((t) => (t.firstPacketAt === undefined ? 0 : (endedAt - t.firstPacketAt) / 1000));
  const meanActive = activeSeconds.length ? activeSeconds.reduce((a, b) => a + b, 0) / activeSeconds.length : 0;
  const kinds: ('audio' | 'video')[] = options.audioOnly ? ['audio'] : ['video', 'audio'];
  const failures = [...publishers, ...subscribers].filter((c) => c.failure);
  const byStage: Record<string, number> = {};
  for (const c of failures) byStage[c.failure!.stage] = (byStage[c.failure!.stage] ?? 0) + 1;
  const sentOf = (p: Publisher, f: (s: { bytes: number; packets: number }) => number) => p.streams.video.reduce((a, s) => a + f(s), 0) + (p.streams.audio ? f(p.streams.audio) : 0);
  const sentBytes = publishers.reduce((s, p) => s + sentOf(p, (x) => x.bytes), 0);
  const joins = subscribers.map((s) => s.timings.joinMs).filter((v): v is number => v !== undefined);
  const firstVideo = subscribers.map((s) => s.timings.firstVideoMs).filter((v): v is number => v !== undefined);
  const firstAudio = subscribers.map((s) => s.timings.firstAudioMs).filter((v): v is number => v !== undefined);
  return {
    hub: options.hubUrl,
    conferenceId: options.conferenceId,
    publishers: options.publishers,
    subscribers: options.subscribers,
    video: options.audioOnly ? 'audio only' : `${options.video} ${video.map((c) => `${Math.round(c.bitrate / 1000)}`).join('+')} kb/s${options.simulcast ? ' simulcast' : ''}${options.lastN !== undefined ? `, last-N ${options.lastN}` : ''}`,
    durationSeconds: options.durationSeconds,
    measuredSeconds,
    tracks: kinds.map((k) => summarizeTracks(k, totals, meanActive)),
    join: {
      p50Ms: percentile(joins, 0.5),
      p99Ms: percentile(joins, 0.99),
      maxMs: joins.length ? Math.max(...joins) : NaN,
      firstVideoP50Ms: percentile(firstVideo, 0.5),
      firstVideoP99Ms: percentile(firstVideo, 0.99),
      firstAudioP50Ms: percentile(firstAudio, 0.5),
      firstAudioP99Ms: percentile(firstAudio, 0.99),
    },
    publisherSide: {
      packetsSent: publishers.reduce((s, p) => s + sentOf(p, (x) => x.packets), 0),
      bitrateMbps: (sentBytes * 8) / 1e6 / Math.max(1e-3, (endedAt - wallAt) / 1000),
      nacksReceived: publishers.reduce((s, p) => s + p.nacksReceived, 0),
      retransmitted: publishers.reduce((s, p) => s + p.retransmitted, 0),
      keyframeRequests: publishers.reduce((s, p) => s + p.keyframeRequests, 0),
      sendErrors: publishers.reduce((s, p) => s + p.sendErrors, 0),
    },
    failures: { total: failures.length, byStage, examples: failures.slice(0, 5).map((c) => `${c.id} at ${c.failure!.stage}: ${c.failure!.message}`) },
    generatorCpuPercent,
    ...(hooks.dropEvery ? { droppedByHook: subscribers.reduce((s, c) => s + c.droppedByHook, 0) } : {}),
  };
}
