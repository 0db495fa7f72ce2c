// The small state file beside the segments: per device the ack watermark,
// the last seq assigned (so seqs survive even when every segment holding a
// device was deleted) and the seq spans whose waveforms the cap dropped.
// Replaced atomically (write tmp, fsync, rename, fsync dir).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './fsutil.js';

export const CHECKPOINT_FILE = 'checkpoint.json';

/** Waveform readings of one device dropped by the size cap. */
export interface DroppedRange {
  /** First and last dropped seq (inclusive). Seqs in between that you do receive were kept. */
  from: number;
  to: number;
  /** How many waveform readings were dropped in [from, to]. */
  count: number;
}

export interface DeviceCheckpoint {
  acked: number;
  lastSeq: number;
  dropped: DroppedRange[];
}

export interface Checkpoint {
  version: 1;
  devices: Record<string, DeviceCheckpoint>;
}

export function emptyCheckpoint(): Checkpoint {
  return { version: 1, devices: {} };
}

/** The checkpoint on disk; undefined when absent; throws when unreadable. */
export async function readCheckpoint(dir: string): Promise<Checkpoint | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, CHECKPOINT_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const parsed = JSON.parse(text) as Checkpoint;
  if (parsed?.version !== 1 || typeof parsed.devices !== 'object' || parsed.devices === null) {
    throw new Error('checkpoint has an unknown version or shape');
  }
  return parsed;
}

export async function writeCheckpoint(dir: string, checkpoint: Checkpoint): Promise<void> {
  await writeFileAtomic(join(dir, CHECKPOINT_FILE), JSON.stringify(checkpoint), dir);
}
