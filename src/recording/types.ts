// What a recording leaves on disk (manifest.json, one sidecar per track,
// readings.jsonl) and the events RecordingManager emits. The manifest and
// sidecars are read back by the HTTP routes and the review page: one zod
// schema each, since they cross a boundary (the disk).

import { z } from 'zod';
import type { Assert, RecordingManifest as ContractManifest, SameShape, TrackSidecar as ContractSidecar } from '../contract/index.js';

/** Why a recording stopped. */
export type StopReason = 'requested' | 'max-duration' | 'disk-floor' | 'conference-closed' | 'shutdown';

/** Who started or stopped it: token subject and role (no display name on disk; the audit log holds the same). */
export const actorSchema = z.object({ sub: z.string().max(256), role: z.enum(['specialist', 'site', 'engineer', 'system']) });
export type RecordingActor = z.infer<typeof actorSchema>;

/** The RTP → wall-clock mapping of one track; the review page and the tests line tracks up with it. */
export const sidecarSchema = z.object({
  version: z.literal(1),
  recordingId: z.string(),
  producerId: z.string(),
  peerId: z.string(),
  kind: z.enum(['audio', 'video']),
  source: z.string(),
  codec: z.object({ mimeType: z.string(), clockRate: z.number(), payloadType: z.number() }),
  file: z.string(),
  /**
   * The first RTP packet the hub sent to ffmpeg: its RTP timestamp and the hub's
   * wall clock (ms since 1970) when it went. ffmpeg writes that packet at file
   * time 0 (-copyts: file time = (rtp − firstPacket.rtpTimestamp) / clockRate),
   * so a file time t was sent at firstPacket.wallMs + 1000 t.
   */
  firstPacket: z.object({ rtpTimestamp: z.number(), wallMs: z.number(), ssrc: z.number(), producerRtpTimestamp: z.number().nullable() }).nullable(),
  /**
   * The sender's own RTP → NTP mapping from its first RTCP sender reports
   * after the track started, one per SSRC (a simulcast camera has one per
   * layer): capture time = ntpMs + 1000 (rtp − rtpTimestamp) / clockRate.
   */
  senderReports: z.array(z.object({ ssrc: z.number(), rtpTimestamp: z.number(), ntpMs: z.number(), receivedWallMs: z.number() })),
  /** The producer's SSRC the consumer forwarded at its first packet (the simulcast layer), when known. */
  producerSsrc: z.number().nullable(),
  startedWallMs: z.number(),
  /** When the track was told to end ('q' to ffmpeg): the file ends at or just after it. */
  endedWallMs: z.number().nullable(),
  /** When ffmpeg had exited, the file final. */
  finalisedWallMs: z.number().nullable(),
  bytes: z.number().nullable(),
  /** ffprobe's duration of the finished file. */
  durationS: z.number().nullable(),
  /** recording; done (finalised, ffprobe reads it); failed (ffmpeg died or the file does not parse); empty (no media: no packet came, or it stopped while ffmpeg still probed). */
  state: z.enum(['recording', 'done', 'failed', 'empty']),
});
export type TrackSidecar = z.infer<typeof sidecarSchema>;

export const manifestSchema = z.object({
  version: z.literal(1),
  recordingId: z.string(),
  conferenceId: z.string(),
  startedAt: z.number(),
  stoppedAt: z.number().nullable(),
  startedBy: actorSchema,
  stoppedBy: actorSchema.nullable(),
  stopReason: z.string().nullable(),
  /** Track files and their sidecars, by producer. */
  tracks: z.array(z.object({ producerId: z.string(), peerId: z.string(), kind: z.enum(['audio', 'video']), source: z.string(), file: z.string(), sidecar: z.string(), contentType: z.string() })),
  /** The conference's device readings, JSON lines (docs/RECORDING.md). */
  readings: z.string(),
});
export type RecordingManifest = z.infer<typeof manifestSchema>;

/** One line of readings.jsonl: hubMs is the hub's wall clock when it fanned the event out (the tracks' clock). */
export type ReadingsLine =
  | { hubMs: number; event: 'deviceReadings'; deviceId: string; readings: unknown[]; gaps?: unknown[] }
  | { hubMs: number; event: 'deviceStatus'; device: unknown }
  | { hubMs: number; event: 'deviceAlarm'; deviceId: string; reading: unknown };

/** What a conference's peers see (event `recordingState`, and `recording` in the join reply). */
export interface RecordingState {
  active: boolean;
  recordingId: string | null;
  /** ms since 1970; null when not recording. */
  startedAt: number | null;
  /** The display name of the specialist who started it (what peers already see of them); null when not recording. */
  by: string | null;
  /** Only when it just stopped: why. */
  reason?: StopReason;
}

export interface RecordingStarted {
  recordingId: string;
  conferenceId: string;
  startedAt: number;
  by: RecordingActor;
  dir: string;
}
export interface RecordingStopped {
  recordingId: string;
  conferenceId: string;
  stoppedAt: number;
  by: RecordingActor;
  reason: StopReason;
  tracks: number;
}
export interface TrackEvent {
  recordingId: string;
  conferenceId: string;
  sidecar: TrackSidecar;
}

/** RecordingManager's typed events, for the consultation records (src/records/) to store. */
export interface RecordingEvents {
  started: [RecordingStarted];
  stopped: [RecordingStopped];
  trackStarted: [TrackEvent];
  trackStopped: [TrackEvent];
}

// The public contract's types (src/contract/recording.ts) are what these schemas check.
export type SidecarMatchesContract = Assert<SameShape<TrackSidecar, ContractSidecar>>;
export type ManifestMatchesContract = Assert<SameShape<RecordingManifest, ContractManifest>>;
