// Seeded fuzzing of the framer and the HL7 parser: no exception may escape
// except the parser's own refusal errors, and every run is bounded in time.
// A failure prints the seed and case number so it can be replayed.

import type { DeviceReadingBody } from '../../src/devices/driver.js';
import { MllpDeframer } from '../../src/devices/hl7/framing.js';
import { Hl7SyntaxError, parseHl7 } from '../../src/devices/hl7/message.js';
import { Hl7ContentError, interpretObservations, readHeader } from '../../src/devices/hl7/observations.js';
import { Hl7MessageProcessor } from '../../src/devices/hl7/processor.js';
import { DeviceRouter } from '../../src/devices/hl7/routing.js';
import { seededRandom } from '../../src/sim/random.js';
import { expect, frame, PCD01_EXAMPLE, R40_EXAMPLE, WAVEFORM_EXAMPLE } from './hl7-support.js';

const SEED = Number(process.env.HL7_FUZZ_SEED ?? 20260912);
const CASES = 10_000;
const SPECIAL = [0x0b, 0x1c, 0x0d, 0x0a, 0x7c, 0x5e, 0x7e, 0x5c, 0x26];

function randomBytes(random: () => number, maxLength: number): Buffer {
  const out = Buffer.alloc(Math.floor(random() * maxLength));
  for (let i = 0; i < out.length; i++) {
    out[i] = random() < 0.3 ? SPECIAL[Math.floor(random() * SPECIAL.length)]! : Math.floor(random() * 256);
  }
  return out;
}

/** Feeds bytes in random chunks; returns frames and totals. */
function feed(d: MllpDeframer, bytes: Buffer, random: () => number | undefined) {
  const frames: string[] = [];
  let discarded = 0;
  let at = 0;
  while (at < bytes.length) {
    const r = random();
    const size = r === undefined ? bytes.length : 1 + Math.floor(r * 64);
    const res = d.push(bytes.subarray(at, at + size));
    frames.push(...res.frames.map((f) => f.toString('latin1')));
    discarded += res.discarded;
    at += size;
  }
  return { frames, discarded, pending: d.pendingBytes };
}

const SAMPLES = [PCD01_EXAMPLE, WAVEFORM_EXAMPLE, R40_EXAMPLE];
const MUTATION_TOKENS = ['|', '^', '~', '\\', '&', '\r', '\n', '\\X', '\\F\\', '\\X4\\', '-999', '8388607', 'NA', 'NM', 'CWE', 'OBX|', 'MSH|', '.', '-', '+0700', '99999999999999999999', 'MDC_ATTR_SAMP_RATE', 'é'];

function mutate(random: () => number, text: string): string {
  let s = text;
  const edits = 1 + Math.floor(random() * 6);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * (s.length + 1));
    const op = random();
    if (op < 0.3) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(random() * 8));
    else if (op < 0.6) s = s.slice(0, at) + MUTATION_TOKENS[Math.floor(random() * MUTATION_TOKENS.length)] + s.slice(at);
    else if (op < 0.75) s = s.slice(0, at);
    else if (op < 0.9) s = s.slice(0, at) + String.fromCharCode(Math.floor(random() * 0x3000)) + s.slice(at + 1);
    else {
      const lines = s.split('\r');
      const i = Math.floor(random() * lines.length);
      lines.splice(i, 0, lines[Math.floor(random() * lines.length)]!);
      s = lines.join('\r');
    }
  }
  return s;
}

describe('hl7 fuzz', function () {
  this.timeout(30_000);

  it(`framer: ${CASES} random inputs give the same result whole and in random chunks (seed ${SEED})`, () => {
    const random = seededRandom(SEED);
    const started = Date.now();
    for (let n = 0; n < CASES; n++) {
      const input =
        random() < 0.5
          ? randomBytes(random, 400)
          : Buffer.concat([randomBytes(random, 40), frame(mutate(random, SAMPLES[n % 3]!)), randomBytes(random, 40), frame('MSH|x')]);
      try {
        const whole = feed(new MllpDeframer(256), input, () => undefined);
        const chunked = feed(new MllpDeframer(256), input, random);
        expect(chunked).to.deep.equal(whole);
        for (const f of whole.frames) expect(f).not.to.match(/[\x0b\x1c]/);
      } catch (err) {
        throw new Error(`framer case ${n} (seed ${SEED}): ${(err as Error).message}`);
      }
    }
    expect(Date.now() - started).to.be.below(20_000);
  });

  it(`parser: ${CASES} random and mutated messages throw only refusal errors (seed ${SEED})`, () => {
    const random = seededRandom(SEED + 1);
    const started = Date.now();
    let decoded = 0;
    for (let n = 0; n < CASES; n++) {
      const text = random() < 0.2 ? randomBytes(random, 300).toString('latin1') : mutate(random, SAMPLES[n % 3]!);
      try {
        const message = parseHl7(text);
        const header = readHeader(message, 420);
        interpretObservations(message, header, 420, 0);
        decoded++;
      } catch (err) {
        if (!(err instanceof Hl7SyntaxError) && !(err instanceof Hl7ContentError)) {
          throw new Error(`parser case ${n} (seed ${SEED + 1}) threw ${(err as Error).stack}`);
        }
      }
    }
    // The mutations must leave plenty of decodable messages, or the fuzz proves little.
    expect(decoded).to.be.above(CASES / 5);
    expect(Date.now() - started).to.be.below(20_000);
  });

  it(`processor: ${CASES} mutated frames always get an ACK and never half-deliver (seed ${SEED})`, async () => {
    const random = seededRandom(SEED + 2);
    const delivered: DeviceReadingBody[][] = [];
    const processor = new Hl7MessageProcessor({
      router: new DeviceRouter([{ deviceId: 'dev' }]),
      offsetMinutes: 420,
      processingId: 'P',
      sendAcks: true,
      deliver: async (r) => {
        delivered.push(r);
      },
    });
    const started = Date.now();
    for (let n = 0; n < CASES; n++) {
      const text = mutate(random, SAMPLES[n % 3]!);
      const before = delivered.length;
      const { reply, outcome } = await processor.process(Buffer.from(text, 'utf8'), 0);
      if (outcome.ack === 'none') continue; // the mutation produced an ACK message
      expect(reply, `case ${n}`).to.not.equal(undefined);
      const msa = reply!.toString('utf8').split('\r').find((l) => l.startsWith('MSA|'));
      expect(msa?.split('|')[1], `case ${n}`).to.equal(outcome.ack);
      if (outcome.ack !== 'AA') expect(delivered.length, `case ${n}`).to.equal(before);
      expect(outcome.reason ?? '', `case ${n}`).not.to.match(/NGUYEN/);
    }
    expect(Date.now() - started).to.be.below(20_000);
  });
});
