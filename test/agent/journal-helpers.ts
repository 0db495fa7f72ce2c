// Shared by the journal tests: temp dirs and reading factories.

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceReadingBody } from '../../src/devices/driver.js';

// chai 5 ships no type declarations and @types/chai is not a dependency: one
// untyped import here rather than in every test file. An ignore rather than an
// expect-error directive, so adding the types later breaks nothing.
// @ts-ignore
export { expect } from 'chai';

export async function tempDir(prefix = 'hoichan-journal-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
}

export function numeric(deviceId: string, value: number, t = 1_700_000_000_000): DeviceReadingBody {
  return { deviceId, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t, rt: t + 5, value };
}

export function waveform(deviceId: string, first: number, n = 25, t = 1_700_000_000_000): DeviceReadingBody {
  const samples = Array.from({ length: n }, (_, i) => Math.round(Math.sin((first + i) / 10) * 1000) / 1000);
  return { deviceId, kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t, rt: t + 5, sampleRate: 500, samples };
}

export function alarm(deviceId: string, text: string, t = 1_700_000_000_000): DeviceReadingBody {
  return {
    deviceId,
    kind: 'alarm',
    code: 'MDC_EVT_ECG_TACHY',
    unit: '',
    t,
    rt: t + 5,
    priority: 'high',
    text,
    active: true,
  };
}

export function status(deviceId: string, active: boolean, t = 1_700_000_000_000): DeviceReadingBody {
  return { deviceId, kind: 'status', code: 'MDC_EVT_LEAD_OFF', unit: '', t, rt: t + 5, active, text: 'lead off' };
}
