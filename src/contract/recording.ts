// Recording (docs/RECORDING.md): the indicator every peer sees, and what
// GET /api/recordings/:id answers (the manifest with each track's sidecar).
// Types only; src/recording/types.ts holds the zod schemas that check them.

/** The conference's recording indicator: event `recordingState`, and `recording` in the join reply. */
export interface RecordingStateEvent {
  active: boolean;
  recordingId: string | null;
  /** ms since 1970; null when not recording. */
  startedAt: number | null;
  /** The display name of the specialist who started it; null when not recording. */
  by: string | null;
  /** When it just stopped: requested | max-duration | disk-floor | conference-closed | shutdown. */
  reason?: string;
}

export interface RecordingActor {
  sub: string;
  role: 'specialist' | 'site' | 'engineer' | 'system';
}

/** One track's sidecar: codec, clock mapping, state (docs/RECORDING.md, "One clock"). */
export interface TrackSidecar {
  version: 1;
  recordingId: string;
  producerId: string;
  peerId: string;
  kind: 'audio' | 'video';
  source: string;
  codec: { mimeType: string; clockRate: number; payloadType: number };
  file: string;
  /** The first RTP packet sent to ffmpeg and the hub's wall clock then: file time t was sent at wallMs + 1000 t. */
  firstPacket: {
    rtpTimestamp: number;
    wallMs: number;
    ssrc: number;
    /** The same packet's timestamp as the sender stamped it (a simulcast consumer rewrites them); null when it could not be matched. */
    producerRtpTimestamp: number | null;
  } | null;
  /** The sender's RTP → NTP mapping, from its first RTCP sender report on each SSRC. */
  senderReports: { ssrc: number; rtpTimestamp: number; ntpMs: number; receivedWallMs: number }[];
  /** The producer SSRC the file holds (a simulcast camera: the layer recorded). */
  producerSsrc: number | null;
  startedWallMs: number;
  /** When the track was told to end: the file ends at or just after it. */
  endedWallMs: number | null;
  /** When ffmpeg had exited. */
  finalisedWallMs: number | null;
  /** ffprobe's duration of the finished file. */
  durationS: number | null;
  bytes: number | null;
  state: 'recording' | 'done' | 'failed' | 'empty';
}

export interface RecordingTrack {
  producerId: string;
  peerId: string;
  kind: 'audio' | 'video';
  source: string;
  file: string;
  sidecar: string;
  contentType: string;
}

export interface RecordingManifest {
  version: 1;
  recordingId: string;
  conferenceId: string;
  startedAt: number;
  stoppedAt: number | null;
  startedBy: RecordingActor;
  stoppedBy: RecordingActor | null;
  stopReason: string | null;
  tracks: RecordingTrack[];
  /** The device readings file (JSON lines). */
  readings: string;
}

/** GET /api/recordings/:id: the manifest with each track's sidecar inlined. */
export interface RecordingDetail extends RecordingManifest {
  sidecars: Record<string, TrackSidecar>;
}
