// A fake legacy Mindray PDS monitor (server mode): listens, waits for the
// QRY^R02 subscription, then streams ORU^R01 results on that connection.

import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { RunningSimulator, SimulatorEvents } from '../simulator.js';
import { pdsResultMessage } from './messages.js';
import { Patient } from '../physiology.js';
import { FrameCollector, fieldOf, wrap } from './wire.js';

export interface PdsMonitorOptions {
  host: string;
  port: number;
  intervalMs: number;
  nibpEveryMs: number;
  random: () => number;
}

export class PdsMonitorSimulator extends EventEmitter<SimulatorEvents> implements RunningSimulator {
  readonly #options: PdsMonitorOptions;
  readonly #patient: Patient;
  readonly #server: Server;
  readonly #subscribers = new Set<Socket>();
  readonly #sockets = new Set<Socket>();
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;
  #lastNibp = -Infinity;
  /** Queries and heartbeats received, for tests. */
  readonly stats = { queries: 0, heartbeats: 0 };

  private constructor(options: PdsMonitorOptions) {
    super();
    this.#options = options;
    this.#patient = new Patient(options.random);
    this.#server = createServer((socket) => this.#accept(socket));
  }

  static async start(options: PdsMonitorOptions): Promise<PdsMonitorSimulator> {
    const sim = new PdsMonitorSimulator(options);
    await new Promise<void>((resolve, reject) => {
      sim.#server.once('error', reject);
      sim.#server.listen(options.port, options.host, () => resolve());
    });
    sim.#timer = setInterval(() => sim.#tick(), options.intervalMs);
    return sim;
  }

  get port(): number {
    const address = this.#server.address();
    return address && typeof address === 'object' ? address.port : 0;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    const collector = new FrameCollector();
    socket.on('data', (chunk: Buffer) => {
      for (const message of collector.push(chunk)) {
        const type = fieldOf(message, 'MSH', 9);
        if (type.startsWith('QRY')) {
          this.stats.queries++;
          this.#subscribers.add(socket);
        } else if (type.startsWith('ORU')) {
          this.stats.heartbeats++;
        }
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#sockets.delete(socket);
      this.#subscribers.delete(socket);
    });
  }

  #tick(): void {
    if (this.#subscribers.size === 0) return;
    const now = Date.now();
    const vitals = this.#patient.vitals();
    const nibp = now - this.#lastNibp >= this.#options.nibpEveryMs ? this.#patient.bloodPressure() : undefined;
    if (nibp) this.#lastNibp = now;
    this.#seq++;
    const built = pdsResultMessage(String(this.#seq), now, vitals, nibp);
    const bytes = wrap(built.text);
    for (const socket of this.#subscribers) socket.write(bytes);
    // PDS has no ACK: what was written is what was sent.
    this.emit('sent', built.sent);
  }
}
