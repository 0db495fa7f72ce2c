// Last-N: which video a viewer receives. Pure decisions; Conference.ts
// pauses, resumes and layers the consumers accordingly.
import type { ProducerInfo } from './events.js';

/** What a viewer shows (setVideoPreferences). Absent: the defaults below. */
export interface VideoPreferences {
  /** Producers the viewer shows large, in its order. */
  onStage: string[];
  /** Small tiles: cameras of this many most recent dominant speakers. */
  thumbnails: number;
}

export const DEFAULT_THUMBNAILS = 4;
/** Bounds of a setVideoPreferences request (src/signaling/schemas.ts). */
export const MAX_ON_STAGE = 16;
export const MAX_THUMBNAILS = 25;

/** Device and shared-screen video: what a specialist looks at when nobody says otherwise. */
const STAGE_SOURCES: ReadonlySet<ProducerInfo['source']> = new Set(['screen', 'ultrasound', 'device-video']);

export interface VideoChoice {
  /** Producer ids forwarded at the highest layer the viewer's bandwidth allows. */
  stage: Set<string>;
  /** Producer ids forwarded at the lowest simulcast layer. */
  thumbnails: Set<string>;
}

/**
 * The video producers a viewer receives. Stage: the viewer's onStage (those
 * that exist), or by default every shared screen and device video, or if
 * there is none the dominant speaker's camera. Thumbnails: the cameras of
 * the most recent dominant speakers not on stage, then (so that a
 * conference where few have spoken still fills the grid) the other cameras
 * in the order they were published, up to the count asked for.
 *
 * `video`: the conference's video producers in publication order.
 * `speakers`: peer ids, the most recent dominant speaker first.
 */
export function chooseVideo(viewerId: string, preferences: VideoPreferences | undefined, video: ProducerInfo[], speakers: string[]): VideoChoice {
  const others = video.filter((p) => p.peerId !== viewerId);
  const cameraOf = new Map(others.filter((p) => p.source === 'camera').map((p) => [p.peerId, p.producerId]));
  const stage = new Set<string>();
  if (preferences) {
    const exists = new Set(others.map((p) => p.producerId));
    for (const id of preferences.onStage) if (exists.has(id)) stage.add(id);
  } else {
    for (const p of others) if (STAGE_SOURCES.has(p.source)) stage.add(p.producerId);
    if (stage.size === 0) {
      const speaking = speakers.find((peerId) => cameraOf.has(peerId));
      if (speaking) stage.add(cameraOf.get(speaking)!);
    }
  }
  const wanted = preferences?.thumbnails ?? DEFAULT_THUMBNAILS;
  const thumbnails = new Set<string>();
  const take = (producerId: string | undefined) => {
    if (producerId && thumbnails.size < wanted && !stage.has(producerId)) thumbnails.add(producerId);
  };
  for (const peerId of speakers) take(cameraOf.get(peerId));
  for (const producerId of cameraOf.values()) take(producerId);
  return { stage, thumbnails };
}
