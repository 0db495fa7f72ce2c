// Fuzz: random and mutated signaling and uplink messages against a live hub
// (in this process, on loopback). Seeded: the seed is printed, and
// HOICHAN_FUZZ_SEED replays a run; HOICHAN_FUZZ_COUNT changes its size.
// Asserts: no crash (hub, worker), no unhandled rejection or exception, every
// request with an ack gets a well-formed reply (never `internal`), bounded
// heap after settling, and a real join and uplink hello work afterwards.

import { expect } from 'chai';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import type { Hub } from '../../src/hub/Hub.js';
import type { Role } from '../../src/media/events.js';
import { siteToken } from '../agent/uplink-helpers.js';
import { TestClient, fakeDtlsParameters, rtpParametersFor, startTestHub, token } from '../support/hub.js';
import { seededRandom } from '../../src/sim/random.js';

const CONF = 'fuzz-conf';
const COUNT = Number(process.env.HOICHAN_FUZZ_COUNT ?? 12_000);
const SEED = Number(process.env.HOICHAN_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const IN_FLIGHT = 48;
const ERROR_CODES = new Set(['bad_request', 'unauthorized', 'forbidden', 'not_found', 'conflict', 'rate_limited', 'limit_exceeded', 'unavailable', 'internal']);


function forcedGc(): () => void {
  setFlagsFromString('--expose_gc');
  return runInNewContext('gc') as () => void;
}

function tokenFor(user: string, role: Role, conf: string): string {
  return token(role, conf, user, 3600);
}

type Json = unknown;

describe('fuzz: random and mutated signaling and uplink messages against a live hub', function () {
  this.timeout(180_000);
  let hub: Hub;

  before(async () => {
    hub = await startTestHub({
      // Generous rates, so the inputs reach the schemas and handlers instead of the rate limiter
      // (the limiter's own paths are tested in limits.test.ts).
      signaling: { requestsPerSecond: 100_000, requestBurst: 100_000, userRequestsPerSecond: 100_000, userRequestBurst: 100_000, ipRequestsPerSecond: 100_000, ipRequestBurst: 100_000, maxTransportsPerPeer: 8 },
    });
  });
  after(async () => {
    await hub.close();
  });

  it(`survives ${COUNT} inputs with a well-formed reply to each`, async () => {
    const random = seededRandom(SEED);
    console.log(`      fuzz seed ${SEED} (replay: HOICHAN_FUZZ_SEED=${SEED}), ${COUNT} inputs`);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const int = (n: number) => Math.floor(random() * n);

    const problems: string[] = [];
    const onRejection = (reason: unknown) => problems.push(`unhandled rejection: ${String((reason as Error)?.stack ?? reason).slice(0, 300)}`);
    const onException = (err: Error) => problems.push(`uncaught exception: ${String(err.stack ?? err).slice(0, 300)}`);
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
    const workerPids = hub.pool.workers.map((w) => w.worker.pid);
    const gc = forcedGc();
    gc();
    const heapBefore = process.memoryUsage().heapUsed;

    // Known ids, fed from replies and events, so mutated payloads reach deep paths.
    const ids = { transports: new Set<string>(), producers: new Set<string>(), consumers: new Set<string>() };
    let rtpCapabilities: Json = {};
    const learn = (data: unknown) => {
      if (!data || typeof data !== 'object') return;
      const d = data as Record<string, any>;
      if (typeof d.transport?.id === 'string') ids.transports.add(d.transport.id);
      if (typeof d.producerId === 'string') ids.producers.add(d.producerId);
      if (typeof d.consumer?.id === 'string') ids.consumers.add(d.consumer.id);
      if (d.routerRtpCapabilities) rtpCapabilities = d.routerRtpCapabilities;
      for (const p of Array.isArray(d.producers) ? d.producers : []) if (typeof p?.producerId === 'string') ids.producers.add(p.producerId);
    };

    // The clients: people of the conference, one of another conference, an engineer, and site agents on /uplink.
    interface FuzzClient {
      kind: 'signaling' | 'uplink';
      make: () => Promise<TestClient>;
      client?: TestClient;
    }
    const signalingClient = (sub: string, role: Role, conf: string): FuzzClient => ({ kind: 'signaling', make: () => TestClient.connect(hub.url, tokenFor(sub, role, conf)) });
    const uplinkClient = (site: string): FuzzClient => ({ kind: 'uplink', make: () => TestClient.connect(`${hub.url}/uplink`, siteToken(site, CONF)) });
    const pool: FuzzClient[] = [
      signalingClient('fuzz-specialist', 'specialist', CONF),
      signalingClient('fuzz-site', 'site', CONF),
      signalingClient('fuzz-other', 'specialist', 'fuzz-other-conf'),
      signalingClient('fuzz-engineer', 'engineer', '*'),
      uplinkClient('fuzz-site-a'),
      uplinkClient('fuzz-site-b'),
    ];
    let reconnects = 0;
    const ready = async (c: FuzzClient): Promise<TestClient> => {
      if (c.client?.socket.connected) return c.client;
      if (c.client) reconnects++;
      c.client = await c.make();
      c.client.socket.onAny((_name: string, data: unknown) => learn(data));
      return c.client;
    };
    for (const c of pool) await ready(c);
    // A real media setup, so ids exist: the specialist joins and publishes.
    const spec = pool[0]!.client!;
    learn(await spec.ok('join', { conferenceId: CONF, displayName: 'Fuzz specialist' }));
    const send = (await spec.ok('createTransport', { direction: 'send' })).transport.id;
    ids.transports.add(send);
    await spec.ok('connectTransport', { transportId: send, dtlsParameters: fakeDtlsParameters });
    learn(await spec.ok('produce', { transportId: send, kind: 'video', rtpParameters: rtpParametersFor('video') }));
    learn(await pool[1]!.client!.ok('join', { conferenceId: CONF, displayName: 'Fuzz site' }));
    learn(await pool[1]!.client!.ok('createTransport', { direction: 'recv' }));

    const anyId = (set: Set<string>) => (set.size && random() < 0.9 ? pick([...set]) : `id-${int(1000)}`);
    const now = Date.now();
    const reading = (deviceId: string, seq: number) => pick([
      { deviceId, seq, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t: now, rt: now, value: 70 },
      { deviceId, seq, kind: 'waveform', code: 'MDC_ECG_LEAD_II', unit: 'mV', t: now, rt: now, sampleRate: 250, samples: [0.1, 0.2, null] },
      { deviceId, seq, kind: 'alarm', code: 'MDC_EVT_ASYSTOLE', unit: '', t: now, rt: now, priority: 'high', text: 'ASYSTOLE', active: true },
      { deviceId, seq, kind: 'status', code: 'LEAD_OFF', unit: '', t: now, rt: now, active: false, text: 'ok' },
    ]);
    const device = (deviceId: string) => ({ deviceId, conferenceId: CONF, type: 'vitals', model: 'fuzz', protocol: 'hl7-mllp', status: 'online', channels: [], acked: 0, lastSeq: 0 });

    /** A valid payload for each request, from the ids known now. */
    const signalingTemplates: Record<string, () => Json> = {
      join: () => ({ conferenceId: pick([CONF, 'fuzz-other-conf', `c-${int(50)}`]), displayName: 'Fuzz' }),
      createTransport: () => ({ direction: pick(['send', 'recv']) }),
      connectTransport: () => ({ transportId: anyId(ids.transports), dtlsParameters: fakeDtlsParameters }),
      produce: () => ({ transportId: anyId(ids.transports), kind: pick(['audio', 'video']), source: pick(['camera', 'microphone', 'screen', 'ultrasound']), rtpParameters: rtpParametersFor(pick(['audio', 'video'])) }),
      consume: () => ({ transportId: anyId(ids.transports), producerId: anyId(ids.producers), rtpCapabilities }),
      resumeConsumer: () => ({ consumerId: anyId(ids.consumers) }),
      pauseProducer: () => ({ producerId: anyId(ids.producers) }),
      resumeProducer: () => ({ producerId: anyId(ids.producers) }),
      closeProducer: () => ({ producerId: anyId(ids.producers) }),
      setConsumerLayers: () => ({ consumerId: anyId(ids.consumers), spatialLayer: int(4), temporalLayer: int(4) }),
      restartIce: () => ({ transportId: anyId(ids.transports) }),
      leave: () => ({}),
    };
    const uplinkTemplates: Record<string, (site: string) => Json> = {
      clock: () => ({ t0: Date.now() }),
      hello: (site) => ({ version: 1, siteId: site, clock: { offsetMs: 0, rttMs: 1 }, devices: [device(`${site}-dev`)] }),
      batch: (site) => {
        const from = 1 + int(20);
        const readings = Array.from({ length: 1 + int(5) }, (_, i) => reading(`${site}-dev`, from + i));
        return { deviceId: `${site}-dev`, from, to: from + readings.length - 1, readings };
      },
      alarm: (site) => ({ deviceId: `${site}-dev`, reading: reading(`${site}-dev`, 1 + int(20)) }),
      status: (site) => ({ devices: [{ deviceId: `${site}-dev`, status: pick(['online', 'offline', 'degraded']), channels: [] }] }),
    };

    const nasty = (depth = 0): Json => {
      switch (int(16)) {
        case 0:
          // Now and then one near the hub's frame limit (maxHttpBufferSize 1 MB).
          return 'x'.repeat(random() < 0.05 ? 200_000 : pick([0, 1, 65, 4096]));
        case 1:
          return pick([0, -1, 1.5, -0, 2 ** 53 + 1, 1e308, -1e308, Number.MAX_SAFE_INTEGER, NaN, Infinity, -Infinity]);
        case 2:
          return pick([true, false, null, undefined]);
        case 3: {
          // Deep nesting.
          let v: Json = 1;
          for (let i = 0, n = pick([10, 200, 2000]); i < n; i++) v = random() < 0.5 ? [v] : { a: v };
          return v;
        }
        case 4:
          return JSON.parse(pick(['{"__proto__":{"polluted":true,"ok":true}}', '{"constructor":{"prototype":{"polluted":true}}}', '{"__proto__":[]}', '{"toString":1,"valueOf":"x","hasOwnProperty":null}']));
        case 5:
          return Buffer.from(Array.from({ length: pick([0, 1, 16, 5000]) }, () => int(256)));
        case 6:
          // Long arrays of small items, or short ones of anything: bounded in size either way.
          return random() < 0.5 ? Array.from({ length: pick([300, 5000]) }, () => int(10)) : Array.from({ length: int(4) }, () => (depth < 2 ? nasty(depth + 1) : int(10)));
        case 7:
          // A computed key defines an own property, "__proto__" included.
          return { [pick(['a', '', '__proto__', 'constructor', '\u0000', 'é'.repeat(100)])]: depth < 2 ? nasty(depth + 1) : 1 };
        case 8:
          return pick(['', ' ', '\u0000', '../../etc/passwd', '<script>', 'ingest-x', '*', 'NaN', '%E0%A4%A', '\ud800']);
        default:
          return int(2) ? `s-${int(1e6)}` : int(1e9);
      }
    };

    /** Replaces, adds or deletes a random field somewhere in a copy of `value` (Buffers kept as they are). */
    const mutate = (value: Json, depth = 0): Json => {
      if (Buffer.isBuffer(value)) return value;
      if (Array.isArray(value)) {
        if (!value.length || random() < 0.3) return random() < 0.5 ? nasty() : [...value, nasty()];
        const copy = [...value];
        const i = int(copy.length);
        copy[i] = depth < 6 && random() < 0.6 ? mutate(copy[i], depth + 1) : nasty();
        return copy;
      }
      if (value && typeof value === 'object') {
        const copy: Record<string, Json> = { ...(value as Record<string, Json>) };
        const keys = Object.keys(copy);
        const r = random();
        // defineProperty: `copy.__proto__ = x` would set the prototype here instead of sending a "__proto__" key.
        const set = (key: string, v: Json) => Object.defineProperty(copy, key, { value: v, enumerable: true, writable: true, configurable: true });
        if (!keys.length || r < 0.15) set(pick(['extra', '__proto__', 'constructor', 'prototype', keys[0] ?? 'k']), nasty());
        else if (r < 0.3) delete copy[pick(keys)];
        else {
          const key = pick(keys);
          set(key, depth < 6 && random() < 0.6 ? mutate(copy[key], depth + 1) : nasty());
        }
        return copy;
      }
      return nasty();
    };

    const describe = (v: unknown): string => {
      try {
        return JSON.stringify(v, (_k, x) => (Buffer.isBuffer(x) || (x && typeof x === 'object' && (x as { type?: string }).type === 'Buffer') ? `<buffer>` : typeof x === 'string' && x.length > 40 ? `<string ${x.length}>` : x))?.slice(0, 300) ?? String(v);
      } catch (err) {
        return `<${(err as Error).message}>`;
      }
    };
    const weirdEvents = ['noSuchEvent', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '', 'x'.repeat(500), 'join ', 'JOIN', 'hello', 'batch', 'consume'];
    const sent = { total: 0, withAck: 0, replies: 0, byCode: new Map<string, number>() };
    const inFlight = new Set<Promise<void>>();

    const one = async (): Promise<void> => {
      const c = pick(pool);
      let client: TestClient;
      try {
        client = await ready(c);
      } catch (err) {
        problems.push(`cannot (re)connect a ${c.kind} client: ${(err as Error).message}`);
        return;
      }
      const templates = c.kind === 'signaling' ? signalingTemplates : uplinkTemplates;
      const otherTemplates = c.kind === 'signaling' ? uplinkTemplates : signalingTemplates;
      const site = c.kind === 'uplink' ? (c === pool[4] ? 'fuzz-site-a' : 'fuzz-site-b') : 'fuzz-site';
      const r = random();
      let event: string;
      let payload: Json;
      if (r < 0.1) {
        event = pick(weirdEvents);
        payload = nasty();
      } else {
        event = r < 0.15 ? pick(Object.keys(otherTemplates)) : pick(Object.keys(templates));
        const template = (templates[event] ?? otherTemplates[event])!;
        const valid = template(site);
        payload = random() < 0.2 ? valid : random() < 0.1 ? nasty() : mutate(valid);
      }
      const shape = random();
      const args: Json[] = shape < 0.05 ? [] : shape < 0.1 ? [payload, nasty(), nasty()] : [payload];
      const wantsAck = random() < 0.9;
      sent.total++;
      if (!wantsAck) {
        client.socket.emit(event, ...args);
        return;
      }
      sent.withAck++;
      let reply: unknown;
      try {
        reply = await client.socket.timeout(8_000).emitWithAck(event, ...args);
      } catch (err) {
        // A socket the hub closed (e.g. a frame past maxHttpBufferSize) gets no reply: count it, reconnect.
        if (!client.socket.connected) return;
        problems.push(`no reply to '${event.slice(0, 40)}' (${(err as Error).message}) ${c.kind} ${describe(args)}`);
        return;
      }
      sent.replies++;
      learn(reply);
      const r2 = reply as { ok?: unknown; error?: { code?: unknown; message?: unknown } };
      const wellFormed =
        r2 && typeof r2 === 'object' && (r2.ok === true || (r2.ok === false && typeof r2.error?.message === 'string' && ERROR_CODES.has(String(r2.error?.code))));
      const code = !wellFormed ? 'malformed' : r2.ok ? 'ok' : String(r2.error!.code);
      sent.byCode.set(code, (sent.byCode.get(code) ?? 0) + 1);
      if (!wellFormed) problems.push(`malformed reply to '${event.slice(0, 40)}': ${JSON.stringify(reply).slice(0, 200)}`);
      else if (code === 'internal') problems.push(`internal error for '${event.slice(0, 40)}' ${describe(args)}`);
    };

    for (let i = 0; i < COUNT; i++) {
      const p = one().finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    for (const c of pool) c.client?.close();

    // Settle: let disconnects and idle cleanups run, then collect.
    await new Promise((resolve) => setTimeout(resolve, 500));
    gc();
    const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    console.log(
      `      sent ${sent.total} (${sent.withAck} with ack, ${sent.replies} replies; ${reconnects} reconnects), heap +${heapGrowthMb.toFixed(1)} MB; replies: ${[...sent.byCode]
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );

    // Still serving: a real join with media setup, and a real uplink hello.
    const after = await TestClient.connect(hub.url, tokenFor('after-fuzz', 'specialist', CONF));
    const joined = await after.ok('join', { conferenceId: CONF, displayName: 'After the fuzz' });
    expect(joined.routerRtpCapabilities.codecs.length).to.be.greaterThan(0);
    await after.ok('createTransport', { direction: 'recv' });
    after.close();
    const agent = await TestClient.connect(`${hub.url}/uplink`, siteToken('fuzz-site-after', CONF));
    await agent.ok('hello', uplinkTemplates.hello!('fuzz-site-after'));
    agent.close();

    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    expect(hub.pool.workers.map((w) => w.worker.pid), 'mediasoup workers').to.deep.equal(workerPids);
    expect(({} as Record<string, unknown>).polluted, 'Object.prototype polluted').to.equal(undefined);
    expect(problems.slice(0, 30), `${problems.length} problems`).to.deep.equal([]);
    expect(sent.total).to.equal(COUNT);
    expect(sent.replies).to.be.greaterThan(sent.withAck * 0.9);
    // The clients' own buffers are gone with them: what is left is the hub's. A leak per input would show here.
    expect(heapGrowthMb).to.be.below(64);
  });
});
