// window.hoichan: what tests and the load bench read. Times are performance.now()
// values, i.e. milliseconds since navigation started.

export interface ConsumerStatsRow {
  consumerId: string;
  producerId: string;
  peerId: string;
  kind: string;
  source: string;
  framesDecoded: number;
  packetsReceived: number;
  bytesReceived: number;
}

export interface Telemetry {
  view: string;
  peerId: string;
  joinRequestedAt: number;
  joinedAt: number;
  firstRemoteFrameAt: number;
  /** Contract events received, in order (names and payloads; no media). */
  events: { name: string; data: unknown }[];
  stats(): Promise<ConsumerStatsRow[]>;
  /** The last setVideoPreferences this page sent and the hub's reply (last-N), once sent. */
  videoPreferences?: { onStage: string[]; thumbnails: number };
  videoChoice?: { stage: string[]; thumbnails: string[] };
  /** Device panels as drawn: shown values, stale flags, samples swept. */
  devices(): unknown;
  /** Remote tiles' honest state: peerId -> '' (live video) | 'bandwidth' | 'reconnecting' | 'audioOnly'. */
  tiles(): Record<string, string>;
}

export const telemetry: Telemetry = {
  view: '',
  peerId: '',
  joinRequestedAt: 0,
  joinedAt: 0,
  firstRemoteFrameAt: 0,
  events: [],
  stats: async () => [],
  devices: () => [],
  tiles: () => ({}),
};

declare global {
  interface Window {
    hoichan: Telemetry;
  }
}

window.hoichan = telemetry;

/** Records the first decoded remote video frame (load-time metric). */
export function watchFirstFrame(video: HTMLVideoElement): void {
  if (telemetry.firstRemoteFrameAt) return;
  const mark = () => {
    if (!telemetry.firstRemoteFrameAt) telemetry.firstRemoteFrameAt = performance.now();
  };
  if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(mark);
  else (video as HTMLVideoElement).addEventListener('loadeddata', mark, { once: true });
}
