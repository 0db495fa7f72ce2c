// Helpers for the HL7 tests: example frames from devices.md 4a, a raw MLLP
// test client, and sinks that record, reject or hold readings.

import { connect, type Socket } from 'node:net';
import type { DeviceReadingBody, ReadingSink } from '../../src/devices/driver.js';

// chai 5 ships no type declarations and @types/chai is not a dependency (same
// approach as test/agent and the serial tests): one untyped import here.
// @ts-ignore
export { expect } from 'chai';

export const PCD01_EXAMPLE = [
  'MSH|^~\\&|MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64|MINDRAY|||20260912120000.0000+0700||ORU^R01^ORU_R01|23545|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO',
  'PID|||^^^Hospital^PI||NGUYEN^VAN A',
  'PV1||I|ICU^^5^XYZ HOSPITAL',
  'OBR|1|23545^MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64|23545^MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64|182777000^monitoring of patient^SCT|||20260912120000.0000+0700',
  'OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|98|262688^MDC_DIM_PERCENT^MDC|||||R|||20260912120000.0000+0700||||000F14049B507238^BIG_DIPPER^000F14049B507238^EUI-64',
  'OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.7.4.147842|66|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||20260912120000.0000+0700',
].join('\r') + '\r';

export const WAVEFORM_EXAMPLE = [
  'MSH|^~\\&|MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64|MINDRAY|||20260912120000.0000+0700||ORU^R01^ORU_R01|23546|P|2.6',
  'OBR|1|23546^MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64||100001^CONTINUOUS WAVEFORM^99MNDRY|||20260912115959.5000+0700|20260912120000.0000+0700',
  'OBX|1|NA|131329^MDC_ECG_ELEC_POTL_I^MDC|1.7.6.131329|80^88^92||||||R|||||||000F14049B507238^BIG_DIPPER^000F14049B507238^EUI-64',
  'OBX|2|NM|0^MDC_ATTR_SAMP_RATE^MDC|1.7.6.131329.1|500|264640^MDC_DIM_HZ^MDC',
  'OBX|3|NM|2327^MDC_ATTR_NU_MSMT_RES^MDC|1.7.6.131329.2|0.001221|266418^MDC_DIM_MILLI_VOLT^MDC',
].join('\r') + '\r';

export const R40_EXAMPLE = [
  'MSH|^~\\&|MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64|MINDRAY|||20260124124740+0700||ORU^R40^ORU_R40|9001|P|2.6|||AL|NE',
  'PID|||^^^Hospital^PI||NGUYEN^VAN A',
  'PV1||I|ICU^^5^XYZ HOSPITAL',
  'OBR|1|9001^MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64||196616^MDC_EVT_ALARM^MDC|||20260124124738+0700',
  'OBX|1|CWE|196616^MDC_EVT_ALARM^MDC|1.7.0.196680.1|196680^MDC_EVT_LEAD_OFF^MDC|||A~PL~ST|||R|||20260124124738+0700||||000F14049B507238^BIG_DIPPER^000F14049B507238^EUI-64',
  'OBX|3|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.7.0.196680.3|start',
  'OBX|4|ST|68482^MDC_ATTR_ALARM_STATE^MDC|1.7.0.196680.4|active',
  'OBX|6|ST|68484^MDC_ATTR_ALARM_PRIORITY^MDC|1.7.0.196680.6|PL',
].join('\r') + '\r';

export const EQUIPMENT = '000F14049B507238';

export function frame(message: string): Buffer {
  return Buffer.concat([Buffer.from([0x0b]), Buffer.from(message, 'utf8'), Buffer.from([0x1c, 0x0d])]);
}

/** A message like PCD01_EXAMPLE with another control id and values. */
export function numericMessage(controlId: string, opts: { hr?: string; type?: string; processingId?: string; equipment?: string } = {}): string {
  return [
    `MSH|^~\\&|SENDER^${EQUIPMENT}^EUI-64|FAC|RECV|RFAC|20260912120000+0700||${opts.type ?? 'ORU^R01^ORU_R01'}|${controlId}|${opts.processingId ?? 'P'}|2.6`,
    `OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|97|262688^MDC_DIM_PERCENT^MDC|||||R|||20260912120001+0700||||${opts.equipment ?? EQUIPMENT}^X^^EUI-64`,
    `OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.7.4.147842|${opts.hr ?? '70'}|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||20260912120001+0700`,
  ].join('\r') + '\r';
}

export interface Reply {
  text: string;
  fields(segment: string): string[];
}

function toReply(text: string): Reply {
  return {
    text,
    fields(segment: string) {
      const line = text.split('\r').find((l) => l.startsWith(`${segment}|`)) ?? '';
      const parts = line.split('|');
      return segment === 'MSH' ? ['MSH', '|', ...parts.slice(1)] : parts;
    },
  };
}

/** A raw MLLP client for tests: write bytes, await replies in order. */
export class TestClient {
  readonly socket: Socket;
  readonly #replies: Reply[] = [];
  readonly #waiters: Array<(r: Reply) => void> = [];
  #buffer = Buffer.alloc(0);

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      for (;;) {
        const start = this.#buffer.indexOf(0x0b);
        const end = this.#buffer.indexOf(0x1c, start + 1);
        if (start < 0 || end < 0) break;
        const reply = toReply(this.#buffer.subarray(start + 1, end).toString('utf8'));
        this.#buffer = this.#buffer.subarray(end + 2);
        const waiter = this.#waiters.shift();
        if (waiter) waiter(reply);
        else this.#replies.push(reply);
      }
    });
  }

  static open(port: number): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => resolve(new TestClient(socket)));
      socket.once('error', reject);
    });
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  async writeSlowly(bytes: Buffer, pieceSize: number): Promise<void> {
    for (let i = 0; i < bytes.length; i += pieceSize) {
      this.socket.write(bytes.subarray(i, i + pieceSize));
      await sleep(2);
    }
  }

  nextReply(timeoutMs = 3000): Promise<Reply> {
    const ready = this.#replies.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error('no reply in time'));
      }, timeoutMs);
      const waiter = (r: Reply) => {
        clearTimeout(timer);
        resolve(r);
      };
      this.#waiters.push(waiter);
    });
  }

  get queuedReplies(): number {
    return this.#replies.length;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.destroy();
    });
  }
}

export class RecordingSink implements ReadingSink {
  readonly readings: DeviceReadingBody[] = [];
  calls = 0;
  /** When set, accept() rejects. */
  reject = false;
  /** When set, accept() waits for this promise first. */
  hold: Promise<void> | undefined;

  async accept(readings: DeviceReadingBody[]): Promise<void> {
    this.calls++;
    if (this.hold) await this.hold;
    if (this.reject) throw new Error('journal full');
    this.readings.push(...readings);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitFor(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
