// The simulator's own MLLP and HL7 text handling. Deliberately separate from
// the driver's framing and parsing (src/devices/hl7/framing.ts, message.ts),
// so a shared bug cannot hide in both.

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;

export function wrap(message: string): Buffer {
  return Buffer.concat([Buffer.from([VT]), Buffer.from(message, 'utf8'), Buffer.from([FS, CR])]);
}

/** Splits a byte stream into the messages between VT and FS; keeps the unfinished tail. */
export class FrameCollector {
  #buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const messages: string[] = [];
    for (;;) {
      const start = this.#buffer.indexOf(VT);
      if (start < 0) {
        this.#buffer = Buffer.alloc(0);
        break;
      }
      const end = this.#buffer.indexOf(FS, start + 1);
      if (end < 0) {
        this.#buffer = this.#buffer.subarray(start);
        break;
      }
      messages.push(this.#buffer.subarray(start + 1, end).toString('utf8'));
      this.#buffer = this.#buffer.subarray(end + 1);
    }
    return messages;
  }
}

/** Field n (1-based, MSH-aware) of the first segment named `name`. */
export function fieldOf(message: string, name: string, n: number): string {
  const line = message.split('\r').find((l) => l.startsWith(`${name}|`));
  if (!line) return '';
  const parts = line.split('|');
  return (name === 'MSH' ? ['MSH', '|', ...parts.slice(1)] : parts)[n] ?? '';
}

/** HL7 DTM with milliseconds in the given offset, e.g. 20260912120000.000+0700. */
export function hl7Time(ms: number, offset: string): string {
  const sign = offset.startsWith('-') ? -1 : 1;
  const minutes = sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(3, 5)));
  const local = new Date(ms + minutes * 60_000).toISOString(); // 2026-09-12T12:00:00.000Z
  return `${local.slice(0, 4)}${local.slice(5, 7)}${local.slice(8, 10)}${local.slice(11, 13)}${local.slice(14, 16)}${local.slice(17, 19)}.${local.slice(20, 23)}${offset}`;
}
