import { io, type Socket } from 'socket.io-client';

export type Reply<T> = ({ ok: true } & T) | { ok: false; error: { code: string; message: string } };

export class RequestFailed extends Error {
  constructor(
    readonly request: string,
    readonly code: string,
    message: string,
  ) {
    super(`${request}: ${code}: ${message}`);
  }
}

/** socket.io connection to the hub, with promise-based requests (DESIGN.md section 3). */
export class SignalingClient {
  readonly socket: Socket;

  /** `extraAuth` is read at every (re)connect: e.g. the device seqs already seen, so the hub resumes after them. */
  constructor(token: string, extraAuth: () => Record<string, unknown> = () => ({})) {
    this.socket = io({ auth: (cb) => cb({ token, ...extraAuth() }), transports: ['websocket'] });
  }

  request<T = Record<string, unknown>>(name: string, payload: object = {}, timeoutMs = 10000): Promise<T> {
    return new Promise((resolve, reject) => {
      this.socket.timeout(timeoutMs).emit(name, payload, (err: Error | null, reply: Reply<T>) => {
        if (err) return reject(new RequestFailed(name, 'timeout', 'no reply from hub'));
        if (!reply.ok) return reject(new RequestFailed(name, reply.error.code, reply.error.message));
        resolve(reply);
      });
    });
  }
}
