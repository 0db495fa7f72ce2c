// Pre-encoded media for the synthetic publishers: ffmpeg encodes a test pattern
// once into a cache directory (VP8 in IVF, H.264 Annex B, opus in Ogg), and
// each publisher loops the frames from memory. Encoding once keeps the load
// generator's CPU for RTP and SRTP, so its own limit is not mistaken for the hub's.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type VideoCodec = 'vp8' | 'h264';

export interface VideoFrame {
  /** VP8: one frame; H.264: the NAL units of one access unit (no start codes, no AUD). */
  data: Buffer[];
  keyframe: boolean;
}

export interface VideoClip {
  codec: VideoCodec;
  fps: number;
  frames: VideoFrame[];
  /** Mean bits per second of the clip. */
  bitrate: number;
}

export interface AudioClip {
  /** Opus packets of 20 ms each. */
  packets: Buffer[];
}

/** Simulcast layers, low to high, as a browser sends them for a 720p camera (bitrates in kb/s). */
export const SIMULCAST_LAYERS = [
  { width: 320, height: 180, kbps: 150 },
  { width: 640, height: 360, kbps: 500 },
  { width: 1280, height: 720, kbps: 1500 },
] as const;

/** The single (non-simulcast) stream: the issue's 1.5 Mb/s presenter. */
export const SINGLE_LAYER = { width: 1280, height: 720, kbps: 1500 } as const;

const FPS = 30;
const SECONDS = 10;

export function mediaCacheDir(): string {
  return process.env.HOICHAN_LOADTEST_CACHE ?? join(homedir(), '.cache', 'hoichan', 'loadtest');
}

/** Runs ffmpeg into a temporary name and renames, so a killed run never leaves a half file that later runs would trust. */
function encodeOnce(file: string, args: string[]): string {
  const dir = mediaCacheDir();
  const path = join(dir, file);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args, tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`ffmpeg could not make ${file} (is ffmpeg with libvpx, libx264 and libopus installed?)${stderr ? `: ${stderr}` : ''}`);
  }
  renameSync(tmp, path);
  return path;
}

function videoArgs(codec: VideoCodec, layer: { width: number; height: number; kbps: number }): string[] {
  const input = ['-f', 'lavfi', '-i', `testsrc2=size=${layer.width}x${layer.height}:rate=${FPS}`, '-t', String(SECONDS), '-pix_fmt', 'yuv420p'];
  const rate = [`-b:v`, `${layer.kbps}k`, '-maxrate', `${layer.kbps}k`, '-bufsize', `${layer.kbps}k`];
  // A keyframe every second, as the hub's ingest also asks: a PLI is answered by restarting the loop at frame 0.
  if (codec === 'vp8') return [...input, '-c:v', 'libvpx', ...rate, '-g', String(FPS), '-deadline', 'realtime', '-cpu-used', '8', '-f', 'ivf'];
  return [
    ...input,
    '-c:v', 'libx264', '-profile:v', 'baseline', '-level', '3.1', '-tune', 'zerolatency', '-preset', 'veryfast', ...rate,
    '-g', String(FPS), '-bf', '0', '-x264-params', 'aud=1:repeat-headers=1', '-f', 'h264',
  ];
}

export function loadVideoClip(codec: VideoCodec, layer: { width: number; height: number; kbps: number } = SINGLE_LAYER): VideoClip {
  const name = `${codec}-${layer.width}x${layer.height}-${layer.kbps}k-${SECONDS}s.${codec === 'vp8' ? 'ivf' : 'h264'}`;
  const bytes = readFileSync(encodeOnce(name, videoArgs(codec, layer)));
  const frames = codec === 'vp8' ? parseIvf(bytes) : parseAnnexB(bytes);
  if (frames.length === 0 || !frames[0]!.keyframe) throw new Error(`${name}: no frames, or not starting with a keyframe`);
  const totalBytes = frames.reduce((sum, f) => sum + f.data.reduce((s, d) => s + d.length, 0), 0);
  return { codec, fps: FPS, frames, bitrate: (totalBytes * 8 * FPS) / frames.length };
}

export function loadAudioClip(): AudioClip {
  const path = encodeOnce(`opus-32k-${SECONDS}s.ogg`, [
    '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000`, '-t', String(SECONDS),
    '-c:a', 'libopus', '-b:a', '32k', '-frame_duration', '20', '-application', 'voip', '-f', 'ogg',
  ]);
  const packets = parseOggOpus(readFileSync(path));
  if (packets.length === 0) throw new Error(`${path}: no opus packets`);
  return { packets };
}

/** IVF: a 32-byte file header, then per frame a 12-byte header (size, pts) and the frame. */
export function parseIvf(bytes: Buffer): VideoFrame[] {
  if (bytes.subarray(0, 4).toString('latin1') !== 'DKIF') throw new Error('not an IVF file');
  const headerSize = bytes.readUInt16LE(6);
  const frames: VideoFrame[] = [];
  for (let offset = headerSize; offset + 12 <= bytes.length; ) {
    const size = bytes.readUInt32LE(offset);
    const frame = bytes.subarray(offset + 12, offset + 12 + size);
    // VP8 frame tag: bit 0 of the first byte is 0 for a key frame (RFC 6386 9.1).
    frames.push({ data: [frame], keyframe: (frame[0]! & 1) === 0 });
    offset += 12 + size;
  }
  return frames;
}

/** H.264 Annex B into access units, split at the access unit delimiters ffmpeg was told to write (aud=1). */
export function parseAnnexB(bytes: Buffer): VideoFrame[] {
  const nals: Buffer[] = [];
  let start = -1;
  for (let i = 0; i + 3 <= bytes.length; i++) {
    if (bytes[i] === 0 && bytes[i + 1] === 0 && bytes[i + 2] === 1) {
      if (start >= 0) nals.push(bytes.subarray(start, i > 0 && bytes[i - 1] === 0 ? i - 1 : i));
      start = i + 3;
      i += 2;
    }
  }
  if (start >= 0) nals.push(bytes.subarray(start));
  const frames: VideoFrame[] = [];
  let current: Buffer[] = [];
  const flush = () => {
    if (current.length === 0) return;
    frames.push({ data: current, keyframe: current.some((n) => (n[0]! & 0x1f) === 5) });
    current = [];
  };
  for (const nal of nals) {
    if (nal.length === 0) continue;
    if ((nal[0]! & 0x1f) === 9) flush(); // AUD starts a new access unit; it is not sent
    else current.push(nal);
  }
  flush();
  return frames;
}

/** Ogg pages into opus packets (RFC 7845), skipping the OpusHead and OpusTags header packets. */
export function parseOggOpus(bytes: Buffer): Buffer[] {
  const packets: Buffer[] = [];
  let pending: Buffer[] = [];
  for (let offset = 0; offset + 27 <= bytes.length; ) {
    if (bytes.subarray(offset, offset + 4).toString('latin1') !== 'OggS') throw new Error('bad Ogg page');
    const segments = bytes[offset + 26]!;
    const table = bytes.subarray(offset + 27, offset + 27 + segments);
    let body = offset + 27 + segments;
    for (const lacing of table) {
      pending.push(bytes.subarray(body, body + lacing));
      body += lacing;
      // A lacing value below 255 ends a packet; 255 continues it (in this page or the next).
      if (lacing < 255) {
        packets.push(Buffer.concat(pending));
        pending = [];
      }
    }
    offset = body;
  }
  return packets.filter((p) => !p.subarray(0, 8).toString('latin1').startsWith('Opus'));
}
