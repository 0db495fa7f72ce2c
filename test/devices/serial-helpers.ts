// Shared helpers for the serial driver tests: socat pty pairs, a recording sink, waits.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import type { DeviceReadingBody, ReadingSink } from '../../src/devices/driver.js';
import { startPtyPair as startVirtualCable } from '../../src/sim/ptyPair.js';
import type { WaveformBody, NumericBody, StatusBody } from '../../src/devices/reading.js';

// chai 5 ships no type declarations and @types/chai is not a dependency (same
// approach as test/agent): one untyped import here, not in every test file.
// @ts-ignore
export { expect } from 'chai';

type Tagged<T> = T & { deviceId: string };

export interface PtyPair {
  /** The gateway (driver) end. */
  a: string;
  /** The device (simulator / test writer) end. */
  b: string;
  /** Kills socat; its links vanish. */
  kill(): Promise<void>;
  /** Starts socat again with the same link names. */
  restart(): Promise<void>;
}

let pairCounter = 0;

/** A socat pair with unique link names under the temp dir (the project's own virtual cable). */
export async function startPtyPair(label: string): Promise<PtyPair> {
  const base = join(tmpdir(), `hoichan-${label}-${process.pid}-${++pairCounter}`);
  const cable = await startVirtualCable(`${base}-A`, `${base}-B`);
  return { a: cable.agentEnd, b: cable.deviceEnd, kill: cable.stop, restart: cable.restart };
}

export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A sink that records everything it accepts; can be told to refuse. */
export class RecordingSink implements ReadingSink {
  readonly readings: DeviceReadingBody[] = [];
  refuse = false;
  refusals = 0;

  async accept(readings: DeviceReadingBody[]): Promise<void> {
    if (this.refuse) {
      this.refusals++;
      throw new Error('sink refuses (test)');
    }
    this.readings.push(...readings);
  }

  waveforms(code?: string): Tagged<WaveformBody>[] {
    return this.readings.filter((r): r is DeviceReadingBody & WaveformBody => r.kind === 'waveform' && (code === undefined || r.code === code));
  }

  numerics(code?: string): Tagged<NumericBody>[] {
    return this.readings.filter((r): r is DeviceReadingBody & NumericBody => r.kind === 'numeric' && (code === undefined || r.code === code));
  }

  statuses(code?: string): Tagged<StatusBody>[] {
    return this.readings.filter((r): r is DeviceReadingBody & StatusBody => r.kind === 'status' && (code === undefined || r.code === code));
  }

  samples(code: string): (number | null)[] {
    return this.waveforms(code).flatMap((w) => w.samples);
  }
}

/** The device end of a pty pair, for tests that write bytes themselves. */
export async function openDeviceEnd(path: string, baudRate: number, parity: 'none' | 'odd' = 'none'): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate, parity, lock: false, autoOpen: false });
  // Writes fail with EIO once the pty pair is gone; tests watch the driver, not this end.
  port.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  return port;
}

export async function writeAndDrain(port: SerialPort, bytes: Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => port.write(bytes, (err) => (err ? reject(err) : port.drain(() => resolve()))));
}

export async function closePort(port: SerialPort | undefined): Promise<void> {
  if (!port?.isOpen) return;
  await new Promise<void>((resolve) => port.close(() => resolve()));
}

export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}
