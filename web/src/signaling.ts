import type { DefaultEventsMap } from '@socket.io/component-emitter';
import { io, type Socket } from 'socket.io-client';
import type { PeerEventMap, PeerEventName, Reply, RequestName, RequestPayload, RequestReply } from './contract';

/** What the hub emits on this socket, typed by the contract: `socket.on('deviceReadings', (e) => ...)` needs no cast. */
export type HubEvents = { [E in PeerEventName]: (data: PeerEventMap[E]) => void };

export class RequestFailed extends Error {
  constructor(
    readonly request: string,
    readonly code: string,
    message: string,
    readonly redirect?: { hubId: string; url: string },
  ) {
    super(`${request}: ${code}: ${message}`);
  }
}

/** socket.io connection to the hub, with promise-based requests (docs/PROTOCOL.md, "Signaling"). */
export class SignalingClient {
  // Emits stay socket.io's default map: request() below is the one typed way to send
  // (socket.io's own emit types cannot follow a generic request name through the ack).
  readonly socket: Socket<HubEvents, DefaultEventsMap>;

  /** `extraAuth` is read at every (re)connect: e.g. the device seqs already seen, so the hub resumes after them. */
  constructor(token: string, extraAuth: () => Record<string, unknown> = () => ({})) {
    this.socket = io({ auth: (cb) => cb({ token, ...extraAuth() }), transports: ['websocket'] });
  }

  /** Request `name` with its contract payload; resolves with its contract reply, rejects with RequestFailed. */
  request<N extends RequestName>(name: N, payload: RequestPayload<N>, timeoutMs = 10000): Promise<{ ok: true } & RequestReply<N>> {
    return new Promise((resolve, reject) => {
      this.socket.timeout(timeoutMs).emit(name, payload, (err: Error | null, reply: Reply<N>) => {
        if (err) return reject(new RequestFailed(name, 'timeout', 'no reply from hub'));
        if (!reply.ok) return reject(new RequestFailed(name, reply.error.code, reply.error.message, reply.error.redirect));
        resolve(reply);
      });
    });
  }
}
