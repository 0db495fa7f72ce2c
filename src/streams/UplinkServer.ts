// The hub's edge for site agents: socket.io namespace /uplink, separate from
// the conference namespace so agents are never conference peers. An agent
// token (role 'agent', audience hoichan-uplink) is checked at the handshake,
// its revocation again at every hello and refresh; every message is checked
// against its one schema; a bad message gets an error reply and the
// connection lives on.

import { randomUUID } from 'node:crypto';
import type { Namespace, Server, Socket } from 'socket.io';
import type { z } from 'zod';
import { OUTCOMES, handshakeRefusal, type Actor, type AuditSink, type Outcome } from '../audit/events.js';
import { HoichanError, badRequest, type ErrorCode } from '../common/errors.js';
import { AuthError, SocketTokens, tokenHandshake, uplinkGrantOf, type AgentClaims, type Authenticator } from '../auth/index.js';
import { socketClientAddress } from '../common/clientAddress.js';
import { TokenBucket } from '../common/tokenBucket.js';
import { describeIssue } from '../common/zodIssues.js';
import { READING_OVERHEAD } from './history/deviceHistory.js';
import { deviceMetrics } from '../telemetry/deviceMetrics.js';
import { createLogger } from '../common/logger.js';
import type { AgentConnection, DeviceStreams } from './DeviceStreams.js';
import { UPLINK_NAMESPACE, alarmNoticeSchema, batchSchema, clockRequestSchema, helloSchema, refreshTokenSchema, statusSchema, type HelloDevice, type HelloResult, type UplinkReply } from './protocol.js';

const log = createLogger('uplink-server');

type Reply = (response: UplinkReply<Record<string, unknown>>) => void;

interface UplinkSession {
  claims: AgentClaims;
  /** Set once hello succeeded. */
  conn?: AgentConnection;
  /** When a rate-limit refusal was last logged (one line per 10 s, not one per message). */
  limitLoggedAt: number;
}

/**
 * What one site may send: readings per second (one extra per message), and
 * estimated bytes per second (readingBytes: 8 a sample plus a fixed overhead a
 * reading), because a reading may carry 10,000 samples and counting readings
 * alone let one site fill the hub.
 */
export interface UplinkLimits {
  readingsPerSecond: number;
  burst: number;
  bytesPerSecond: number;
  bytesBurst: number;
}

const DEFAULT_LIMITS: UplinkLimits = { readingsPerSecond: 10_000, burst: 30_000, bytesPerSecond: 4 * 1024 * 1024, bytesBurst: 16 * 1024 * 1024 };

interface SiteBuckets {
  readings: TokenBucket;
  bytes: TokenBucket;
}

export class UplinkServer {
  readonly #nsp: Namespace;
  readonly #streams: DeviceStreams;
  readonly #limits: UplinkLimits;
  readonly #auth: Authenticator;
  readonly #tokens: SocketTokens;
  /** Per site, not per connection: reconnecting must not refill them. */
  readonly #buckets = new Map<string, SiteBuckets>();

  readonly #audit: AuditSink;

  constructor(io: Server, streams: DeviceStreams, auth: Authenticator, limits: UplinkLimits = DEFAULT_LIMITS, audit: AuditSink = { record: () => undefined }) {
    this.#streams = streams;
    this.#audit = audit;
    this.#limits = limits;
    this.#auth = auth;
    this.#nsp = io.of(UPLINK_NAMESPACE);
    this.#tokens = new SocketTokens(auth, this.#nsp, 'uplink', (socket) => (socket.data as Partial<UplinkSession>).claims);
    this.#nsp.use(
      tokenHandshake(auth, 'uplink', {
        accept: (socket, claims) => {
          (socket.data as UplinkSession).claims = claims;
        },
        refused: (address, message) => this.#audit.record(handshakeRefusal('uplink', address, message)),
        refusedMessage: 'uplink handshake refused',
      }),
    );
    this.#nsp.on('connection', (socket) => this.#onConnection(socket));
  }

  /** Drops every agent connection (they reconnect and resend from their last ack). */
  disconnectAll(): void {
    this.#nsp.disconnectSockets(true);
  }

  close(): void {
    this.#tokens.close();
    this.disconnectAll();
    this.#nsp.removeAllListeners();
  }

  #onConnection(socket: Socket): void {
    const claims = (socket.data as UplinkSession).claims;
    // A misbehaving or misconfigured agent must not starve the hub; a well-set one
    // (catch-up rate + live rate under the limit) never meets it. A refused batch
    // is resent from the last ack, so the limit slows a site down and loses nothing.
    const session: UplinkSession = { claims, limitLoggedAt: 0 };
    log.info({ siteId: session.claims.sub, socket: socket.id }, 'site agent connected');
    this.#tokens.watch(socket, claims);

    this.#handle(socket, session, 'clock', clockRequestSchema, async () => {
      const t1 = Date.now();
      return { t1, t2: Date.now() };
    });
    this.#handle(socket, session, 'hello', helloSchema, async (hello) => {
      await this.#stillValid(session.claims);
      if (hello.siteId !== session.claims.sub) {
        throw new HoichanError('forbidden', `this token is for site ${session.claims.sub}, not ${hello.siteId}`);
      }
      if (session.conn) this.#streams.disconnected(session.conn);
      const conn: AgentConnection = {
        id: randomUUID(),
        siteId: hello.siteId,
        grant: uplinkGrantOf(session.claims),
        clockOffsetMs: hello.clock.offsetMs,
        rttMs: hello.clock.rttMs,
        lastTo: new Map(),
      };
      session.conn = conn;
      log.info({ siteId: conn.siteId, devices: hello.devices.length, clockOffsetMs: Math.round(conn.clockOffsetMs), rttMs: Math.round(conn.rttMs) }, 'site agent hello');
      const result = await this.#streams.hello(conn, hello.devices);
      this.#auditHello(socket, session, hello.devices, result);
      return { ...result };
    });
    this.#handle(socket, session, 'refreshToken', refreshTokenSchema, async ({ token }) => {
      let next: AgentClaims;
      try {
        next = await this.#auth.verifyRefresh(token, 'uplink', session.claims, socketClientAddress(socket));
      } catch (err) {
        if (!(err instanceof AuthError)) throw err;
        const code = /same subject/.test(err.message) ? 'forbidden' : 'unauthorized';
        this.#tokens.refreshRefused(socket, session.claims, code);
        throw new HoichanError(code, err.message);
      }
      // Same site and grant (verifyRefresh checked), so the devices already admitted stay admitted.
      session.claims = next;
      (socket.data as UplinkSession).claims = next;
      this.#tokens.refreshed(socket, next);
      return { exp: next.exp };
    });
    this.#handle(socket, session, 'batch', batchSchema, async (batch, receivedAt) => {
      const acked = await this.#streams.batch(this.#conn(session), batch, receivedAt);
      return { acked };
    });
    this.#handle(socket, session, 'alarm', alarmNoticeSchema, async (notice) => {
      this.#streams.alarm(this.#conn(session), notice);
      return {};
    });
    this.#handle(socket, session, 'status', statusSchema, async (status) => {
      this.#streams.status(this.#conn(session), status);
      return {};
    });
    socket.onAny((event: string, ...args: unknown[]) => {
      if (KNOWN.has(event)) return;
      const ack = args.findLast((a) => typeof a === 'function') as Reply | undefined;
      ack?.({ ok: false, error: { code: 'bad_request', message: `unknown uplink message '${String(event).slice(0, 64)}'` } });
    });
    socket.on('disconnect', (reason) => {
      log.info({ siteId: session.claims.sub, reason }, 'site agent disconnected');
      if (session.conn) this.#streams.disconnected(session.conn);
      session.conn = undefined;
      const buckets = this.#buckets.get(claims.sub);
      if (buckets?.readings.full && buckets.bytes.full) this.#buckets.delete(claims.sub);
    });
  }

  /** Which conference each device now streams into (its readings reach that conference's peers), or why not. */
  #auditHello(socket: Socket, session: UplinkSession, devices: HelloDevice[], result: HelloResult): void {
    const conferenceOf = new Map(devices.map((d) => [d.deviceId, d.conferenceId]));
    for (const { deviceId } of result.devices) {
      this.#audit.record({ type: 'device.attach', actor: actorOf(socket, session), conferenceId: conferenceOf.get(deviceId) ?? 'unknown', outcome: 'ok', target: { deviceId } });
    }
    for (const { deviceId, code } of result.rejected) {
      const outcome: Outcome = (OUTCOMES as readonly string[]).includes(code) ? (code as Outcome) : 'internal';
      this.#audit.record({ type: 'device.attach', actor: actorOf(socket, session), conferenceId: conferenceOf.get(deviceId) ?? 'unknown', outcome, target: { deviceId } });
    }
  }

  /** Revoked since the handshake, or expired a moment ago (the socket's timer may not have fired yet)? */
  async #stillValid(claims: AgentClaims): Promise<void> {
    try {
      await this.#auth.recheck(claims, 'uplink');
    } catch (err) {
      throw new HoichanError('unauthorized', (err as Error).message);
    }
  }

  #conn(session: UplinkSession): AgentConnection {
    if (!session.conn) throw badRequest('send hello first');
    return session.conn;
  }

  #handle<S extends z.ZodTypeAny>(socket: Socket, session: UplinkSession, name: string, schema: S, handler: (payload: z.output<S>, receivedAt: number) => Promise<Record<string, unknown>>): void {
    socket.on(name, async (...args: unknown[]) => {
      const receivedAt = Date.now();
      // The ack is socket.io's last argument, however many the agent sent (found by the fuzz test).
      const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as Reply) : undefined;
      const payload = args[0];
      if (!ack) {
        log.debug({ message: name }, 'uplink message without ack ignored');
        return;
      }
      const reply = ack;
      try {
        this.#admit(session, name, payload);
        if (args.length > 1) throw badRequest(`${name}: takes one payload argument, got ${args.length}`);
        const parsed = schema.safeParse(payload);
        if (!parsed.success) throw badRequest(`${name}: ${describeIssue(parsed.error)}`);
        reply({ ok: true, ...(await handler(parsed.data, receivedAt)) });
      } catch (err) {
        const known = err instanceof HoichanError;
        const code: ErrorCode = known ? err.code : 'internal';
        deviceMetrics.uplinkRefused.inc({ code });
        if (!known) log.error({ message: name, err: (err as Error).message, stack: (err as Error).stack }, 'uplink message failed');
        else if (code !== 'rate_limited') log.info({ message: name, siteId: session.claims.sub, code, why: err.message }, 'uplink message refused');
        if (code === 'forbidden') this.#audit.record({ type: 'request.forbidden', actor: actorOf(socket, session), outcome: 'forbidden', target: { via: 'uplink', request: name } });
        reply({ ok: false, error: { code, message: known ? err.message : 'internal error' } });
      }
    });
  }

  /**
   * Charges the site's buckets before any parsing: one token per message plus
   * one per reading, and the message's estimated bytes. A message bigger than
   * the whole bytes burst could never pass: refused as limit_exceeded.
   */
  #admit(session: UplinkSession, name: string, payload: unknown): void {
    const readings = (payload as { readings?: unknown } | null)?.readings;
    const cost = 1 + (Array.isArray(readings) ? readings.length : 0);
    const bytes = estimatedBytes(payload);
    const limits = this.#limits;
    if (bytes > limits.bytesBurst) {
      throw new HoichanError('limit_exceeded', `${name}: about ${bytes} bytes of readings in one message, more than this hub takes at once (devices.uplinkBytesBurst = ${limits.bytesBurst}); send smaller batches`);
    }
    let buckets = this.#buckets.get(session.claims.sub);
    if (!buckets) {
      buckets = { readings: new TokenBucket(limits.readingsPerSecond, limits.burst), bytes: new TokenBucket(limits.bytesPerSecond, limits.bytesBurst) };
      this.#buckets.set(session.claims.sub, buckets);
    }
    // (A message the bytes bucket refuses has still spent its readings tokens: slower, never faster.)
    const refusal = !buckets.readings.take(cost)
      ? `this site sends faster than the hub takes (${limits.readingsPerSecond} readings/s)`
      : !buckets.bytes.take(bytes)
        ? `this site sends more bytes than the hub takes (${limits.bytesPerSecond} bytes/s of readings, estimated as 8 a sample plus ${READING_OVERHEAD} a reading)`
        : undefined;
    if (refusal === undefined) return;
    const now = Date.now();
    if (now - session.limitLoggedAt > 10_000) {
      session.limitLoggedAt = now;
      log.warn({ siteId: session.claims.sub, message: name, readingsPerSecond: limits.readingsPerSecond, bytesPerSecond: limits.bytesPerSecond }, 'site agent over the uplink rate limit: refusing (it resends from its last ack)');
    }
    throw new HoichanError('rate_limited', `${refusal}; resend from the last ack, slower`);
  }
}

function actorOf(socket: Socket, session: UplinkSession): Actor {
  return { sub: session.claims.sub, role: session.claims.role, ip: socketClientAddress(socket) };
}

/**
 * readingBytes over an unparsed message, cheaply and defensively (nothing is
 * validated yet): what the bytes bucket charges. A 1 MB frame of one-digit
 * samples comes to about 4 MB.
 */
export function estimatedBytes(payload: unknown): number {
  const readings = (payload as { readings?: unknown } | null)?.readings;
  const reading = (payload as { reading?: unknown } | null)?.reading;
  const list: unknown[] = Array.isArray(readings) ? readings : reading !== undefined ? [reading] : [];
  let bytes = 0;
  for (const r of list) {
    const samples = (r as { samples?: unknown } | null)?.samples;
    bytes += READING_OVERHEAD + (Array.isArray(samples) ? samples.length * 8 : 0);
  }
  return bytes;
}

const KNOWN = new Set(['clock', 'hello', 'refreshToken', 'batch', 'alarm', 'status']);
