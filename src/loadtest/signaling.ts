// The hub's signaling as a synthetic client speaks it (docs/PROTOCOL.md,
// "Signaling"): socket.io with the JWT in the handshake, request/ack with a
// timeout, and one zod schema per reply the load generator relies on.

import { readFileSync } from 'node:fs';
import { io, type Socket } from 'socket.io-client';
import { z } from 'zod';
import { Authenticator } from '../auth/index.js';
import { consumerRtpParametersSchema, rtpCodecSchema, transportParamsSchema } from './sdp.js';

/** How long a request may wait for its ack before the client counts a signaling failure. */
const REQUEST_TIMEOUT_MS = 15000;

/**
 * The one place tokens are minted: a specialist of the conference, one user per
 * synthetic client, signed as `hoichan token` signs (issuer 'hoichan', the
 * person audiences, a fresh jti each). Kept apart so a change of claims is one edit here.
 */
export function mintToken(auth: Authenticator, clientId: string, conferenceId: string, ttlSeconds: number): string {
  return auth.sign({ kind: 'person', sub: `loadtest-${clientId}`, name: `loadtest ${clientId}`, role: 'specialist', conf: conferenceId, ttlSeconds });
}

export type TokenSource = (clientIndex: number, clientId: string) => string;

export function tokenSource(options: { tokenSecret?: string; tokenIssuer?: string; tokensFile?: string; conferenceId: string; ttlSeconds: number }): TokenSource {
  if (options.tokensFile) {
    const tokens = readFileSync(options.tokensFile, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    if (tokens.length === 0) throw new Error(`${options.tokensFile}: no tokens (one JWT per line)`);
    // Clients take the file's tokens in turn: one per client when there are enough, shared otherwise.
    return (index) => tokens[index % tokens.length]!;
  }
  if (!options.tokenSecret) throw new Error('either a token secret or a tokens file is needed');
  // The hub checks iss against its auth.issuer ('hoichan' unless configured otherwise).
  const auth = Authenticator.forSecret(options.tokenSecret, options.tokenIssuer ? { issuer: options.tokenIssuer } : {});
  return (_index, clientId) => mintToken(auth, clientId, options.conferenceId, options.ttlSeconds);
}

const producerInfoSchema = z.object({ producerId: z.string(), peerId: z.string(), kind: z.enum(['audio', 'video']), source: z.string() });
export type ProducerInfo = z.infer<typeof producerInfoSchema>;

export const replySchemas = {
  join: z.object({
    peerId: z.string(),
    routerRtpCapabilities: z.object({ codecs: z.array(rtpCodecSchema.extend({ kind: z.enum(['audio', 'video']), preferredPayloadType: z.number().optional() }).omit({ payloadType: true }).passthrough()) }),
    producers: z.array(producerInfoSchema),
  }),
  createTransport: z.object({ transport: transportParamsSchema }),
  connectTransport: z.object({}),
  produce: z.object({ producerId: z.string() }),
  consume: z.object({ consumer: z.object({ id: z.string(), producerId: z.string(), kind: z.enum(['audio', 'video']), rtpParameters: consumerRtpParametersSchema }) }),
  resumeConsumer: z.object({}),
  setVideoPreferences: z.object({ stage: z.array(z.string()), thumbnails: z.array(z.string()) }),
  leave: z.object({}),
} as const;
type RequestName = keyof typeof replySchemas;

export const newProducerSchema = producerInfoSchema;
export const producerClosedSchema = z.object({ producerId: z.string() });

export class SignalingError extends Error {
  constructor(
    readonly request: string,
    readonly code: string,
    message: string,
  ) {
    super(`${request}: ${code}: ${message}`);
  }
}

const ackSchema = z.union([
  z.object({ ok: z.literal(true) }).passthrough(),
  z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) }),
]);

export class SignalingClient {
  readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
  }

  static connect(url: string, token: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<SignalingClient> {
    // No reconnection: a load client that loses its socket is a failure to count, not to hide.
    const socket = io(url, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true, timeout: timeoutMs });
    return new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(new SignalingClient(socket)));
      socket.once('connect_error', (err) => {
        socket.close();
        reject(new SignalingError('connect', 'connect_error', err.message));
      });
    });
  }

  async request<N extends RequestName>(name: N, payload: unknown): Promise<z.infer<(typeof replySchemas)[N]>> {
    const raw: unknown = await new Promise((resolve, reject) => {
      this.socket.timeout(REQUEST_TIMEOUT_MS).emit(name, payload, (err: Error | null, reply: unknown) =>
        err ? reject(new SignalingError(name, 'timeout', `no reply in ${REQUEST_TIMEOUT_MS} ms`)) : resolve(reply),
      );
    });
    const ack = ackSchema.safeParse(raw);
    if (!ack.success) throw new SignalingError(name, 'bad_reply', 'reply is not { ok, ... }');
    if (!ack.data.ok) throw new SignalingError(name, ack.data.error.code, ack.data.error.message);
    const parsed = replySchemas[name].safeParse(ack.data);
    if (!parsed.success) throw new SignalingError(name, 'bad_reply', `${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
    return parsed.data as z.infer<(typeof replySchemas)[N]>;
  }

  close(): void {
    this.socket.close();
  }
}
