// The hub's edge for site agents: socket.io namespace /uplink, separate from
// the conference namespace so agents are never conference peers. A site
// token (role 'site') is checked at the handshake; every message is checked
// against its one schema; a bad message gets an error reply and the
// connection lives on.

import { randomUUID } from 'node:crypto';
import type { Namespace, Server, Socket } from 'socket.io';
import type { z } from 'zod';
import { HoichanError, badRequest, type ErrorCode } from '../common/errors.js';
import { AuthError, verifyToken, type Claims } from '../signaling/auth.js';
import { describeIssue } from '../signaling/schemas.js';
import { createLogger } from '../telemetry/logger.js';
import type { AgentConnection, DeviceStreams } from './DeviceStreams.js';
import { UPLINK_NAMESPACE, alarmNoticeSchema, batchSchema, clockRequestSchema, helloSchema, statusSchema, type UplinkReply } from './protocol.js';

const log = createLogger('uplink-server');

type Reply = (response: UplinkReply<Record<string, unknown>>) => void;

interface UplinkSession {
  claims: Claims;
  /** Set once hello succeeded. */
  conn?: AgentConnection;
}

export class UplinkServer {
  readonly #nsp: Namespace;
  readonly #streams: DeviceStreams;

  constructor(io: Server, streams: DeviceStreams, jwtSecret: string) {
    this.#streams = streams;
    this.#nsp = io.of(UPLINK_NAMESPACE);
    this.#nsp.use((socket, next) => {
      try {
        const claims = verifyToken(socket.handshake.auth?.token, jwtSecret);
        if (claims.role !== 'site') throw new AuthError(`role ${claims.role} may not use the uplink`);
        (socket.data as UplinkSession).claims = claims;
        next();
      } catch (err) {
        log.info({ reason: err instanceof AuthError ? err.message : 'error', address: socket.handshake.address }, 'uplink handshake refused');
        next(new Error('unauthorized'));
      }
    });
    this.#nsp.on('connection', (socket) => this.#onConnection(socket));
  }

  /** Drops every agent connection (they reconnect and resend from their last ack). */
  disconnectAll(): void {
    this.#nsp.disconnectSockets(true);
  }

  close(): void {
    this.disconnectAll();
    this.#nsp.removeAllListeners();
  }

  #onConnection(socket: Socket): void {
    const session: UplinkSession = { claims: (socket.data as UplinkSession).claims };
    log.info({ siteId: session.claims.sub, socket: socket.id }, 'site agent connected');

    this.#handle(socket, 'clock', clockRequestSchema, async () => {
      const t1 = Date.now();
      return { t1, t2: Date.now() };
    });
    this.#handle(socket, 'hello', helloSchema, async (hello) => {
      if (hello.siteId !== session.claims.sub) {
        throw new HoichanError('forbidden', `this token is for site ${session.claims.sub}, not ${hello.siteId}`);
      }
      if (session.conn) this.#streams.disconnected(session.conn);
      const conn: AgentConnection = {
        id: randomUUID(),
        siteId: hello.siteId,
        conf: session.claims.conf,
        clockOffsetMs: hello.clock.offsetMs,
        rttMs: hello.clock.rttMs,
        lastTo: new Map(),
      };
      session.conn = conn;
      log.info({ siteId: conn.siteId, devices: hello.devices.length, clockOffsetMs: Math.round(conn.clockOffsetMs), rttMs: Math.round(conn.rttMs) }, 'site agent hello');
      return { ...(await this.#streams.hello(conn, hello.devices)) };
    });
    this.#handle(socket, 'batch', batchSchema, async (batch, receivedAt) => {
      const acked = await this.#streams.batch(this.#conn(session), batch, receivedAt);
      return { acked };
    });
    this.#handle(socket, 'alarm', alarmNoticeSchema, async (notice) => {
      this.#streams.alarm(this.#conn(session), notice);
      return {};
    });
    this.#handle(socket, 'status', statusSchema, async (status) => {
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
    });
  }

  #conn(session: UplinkSession): AgentConnection {
    if (!session.conn) throw badRequest('send hello first');
    return session.conn;
  }

  #handle<S extends z.ZodTypeAny>(socket: Socket, name: string, schema: S, handler: (payload: z.output<S>, receivedAt: number) => Promise<Record<string, unknown>>): void {
    socket.on(name, async (payload: unknown, ack: unknown) => {
      const receivedAt = Date.now();
      if (typeof ack !== 'function') {
        log.debug({ message: name }, 'uplink message without ack ignored');
        return;
      }
      const reply = ack as Reply;
      try {
        const parsed = schema.safeParse(payload);
        if (!parsed.success) throw badRequest(`${name}: ${describeIssue(parsed.error)}`);
        reply({ ok: true, ...(await handler(parsed.data, receivedAt)) });
      } catch (err) {
        const known = err instanceof HoichanError;
        const code: ErrorCode = known ? err.code : 'internal';
        if (!known) log.error({ message: name, err: (err as Error).message, stack: (err as Error).stack }, 'uplink message failed');
        else log.info({ message: name, siteId: (socket.data as UplinkSession).claims.sub, code, why: err.message }, 'uplink message refused');
        reply({ ok: false, error: { code, message: known ? err.message : 'internal error' } });
      }
    });
  }
}

const KNOWN = new Set(['clock', 'hello', 'batch', 'alarm', 'status']);
