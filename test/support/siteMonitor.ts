import { UplinkSite } from './uplinkSite.js';

const HR = 'MDC_ECG_HEART_RATE';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A site agent reduced to its wire protocol, behind the link: a heart rate
 * every 250 ms, journaled in memory (rt = when taken) and sent in order; a
 * send that fails (the link is down) is retried on a fresh connection, so an
 * outage's readings arrive afterwards as backlog (marked late by the hub).
 */
export class SiteMonitor {
  readonly taken: number[] = [];
  readonly deviceId: string;
  readonly #takenAt: number[] = [];
  #sent = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #uplink: UplinkSite;
  #loop: Promise<void> = Promise.resolve();

  /** When each reading was taken (ms since epoch), by index. */
  get takenAt(): readonly number[] {
    return this.#takenAt;
  }

  constructor(url: string, conferenceId: string) {
    this.deviceId = `monitor-${conferenceId}`;
    this.#uplink = new UplinkSite(url, `site-${conferenceId}`, conferenceId, [
      { deviceId: this.deviceId, type: 'vitals', model: 'Bedside monitor (link test)', channels: [{ code: HR, unit: '/min', kind: 'numeric' }] },
    ]);
  }

  get sent(): number {
    return this.#sent;
  }

  async start(): Promise<void> {
    await this.#uplink.connect();
    this.#timer = setInterval(() => {
      this.#takenAt.push(Date.now());
      this.taken.push(60 + (this.taken.length % 40));
    }, 250);
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      if (this.#sent >= this.taken.length) {
        await sleep(50);
        continue;
      }
      // Everything taken so far in one batch (≤ 200), each reading with the time it was taken.
      const count = Math.min(200, this.taken.length - this.#sent);
      const bodies = this.taken.slice(this.#sent, this.#sent + count).map((value, i) => {
        const rt = this.#takenAt[this.#sent + i]!;
        return { kind: 'numeric' as const, code: HR, unit: '/min', value, t: rt, rt };
      });
      try {
        await this.#uplink.sendBatch(this.deviceId, bodies);
        this.#sent += count;
      } catch {
        this.#uplink.disconnect();
        while (!this.#stopped) {
          try {
            await this.#uplink.connect();
            break;
          } catch {
            await sleep(1000);
          }
        }
      }
    }
  }

  /** Stops taking readings; the ones taken are still sent (see drained()). */
  stopTaking(): void {
    clearInterval(this.#timer);
  }

  async stop(): Promise<void> {
    this.stopTaking();
    this.#stopped = true;
    await this.#loop;
    this.#uplink.disconnect();
  }
}

