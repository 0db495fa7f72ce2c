import type { Device } from 'mediasoup-client';
import type { Producer, Transport } from 'mediasoup-client/types';
import type { ProducerSource } from '../contract';
import type { SignalingClient } from '../signaling';

// Two simulcast layers (Chromium allows two at 640x480). The low one (320x240,
// 15 fps, 80 kb/s) fits a 3G or satellite uplink next to the audio: Chromium
// stops sending the upper layer when its estimate falls, and the hub falls back
// to this one for a thin downlink (docs/LINKS.md); it is also what the
// low-bandwidth switch asks for with setConsumerLayers(spatialLayer 0).
const CAMERA_ENCODINGS: RTCRtpEncodingParameters[] = [
  { scaleResolutionDownBy: 2, maxBitrate: 80_000, maxFramerate: 15 },
  { scaleResolutionDownBy: 1, maxBitrate: 900_000 },
];

// Start video at 300 kb/s, not libwebrtc's 1 Mb/s hint, which overflows a thin
// uplink's queue before the first estimate; a good link ramps up in seconds.
const VIDEO_START_KBPS = 300;

// Audio first on a congested link: DSCP/queue priority for the audio sender, and
// opus in-band FEC (recovers single lost packets) with DTX (no packets in silence).
const AUDIO_ENCODINGS: RTCRtpEncodingParameters[] = [{ priority: 'high', networkPriority: 'high' }];
const AUDIO_CODEC_OPTIONS = { opusFec: true, opusDtx: true };

/** Which camera and microphone to open (the site's device picker); undefined = default. */
export interface InputChoice {
  cameraId?: string;
  microphoneId?: string;
}

/** What local media needs from the session that owns the transports. */
export interface LocalMediaHost {
  readonly signaling: SignalingClient;
  readonly device: Device;
  /** The current send transport, if any. */
  sendTransport(): Transport | undefined;
  /** Runs a setup step in the session's queue (transports and producers must not interleave). */
  run(task: () => Promise<void>): Promise<void>;
  localMedia(stream: MediaStream | undefined): void;
  ownProducersChanged(): void;
}

/**
 * This page's own media: camera, microphone and screen tracks and the
 * producers that send them on the session's send transport. The session
 * calls publish() after each new send transport; views call the actions.
 */
export class LocalMedia {
  readonly producers = new Map<ProducerSource, Producer>();
  stream: MediaStream | undefined;
  micEnabled = true;
  cameraEnabled = true;

  readonly #host: LocalMediaHost;
  readonly #inputs: InputChoice;
  #screenTrack: MediaStreamTrack | undefined;

  constructor(host: LocalMediaHost, inputs: InputChoice) {
    this.#host = host;
    this.#inputs = inputs;
  }

  get sharingScreen(): boolean {
    return this.producers.has('screen');
  }

  async setMicEnabled(on: boolean): Promise<void> {
    this.micEnabled = on;
    await this.#setProducerPaused('microphone', !on);
  }

  async setCameraEnabled(on: boolean): Promise<void> {
    this.cameraEnabled = on;
    await this.#setProducerPaused('camera', !on);
  }

  async startScreenShare(): Promise<void> {
    if (this.sharingScreen || !this.#host.sendTransport()) return;
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const track = stream.getVideoTracks()[0];
    if (!track) return;
    this.#screenTrack = track;
    track.addEventListener('ended', () => void this.stopScreenShare());
    await this.#host.run(() => this.#produce(track, 'screen'));
  }

  async stopScreenShare(): Promise<void> {
    const producer = this.producers.get('screen');
    this.#screenTrack?.stop();
    this.#screenTrack = undefined;
    if (!producer) return;
    this.producers.delete('screen');
    producer.close();
    this.#host.ownProducersChanged();
    await this.#host.signaling.request('closeProducer', { producerId: producer.id }).catch(() => undefined);
  }

  /** Replaces the camera or microphone track (device picker) without renegotiating. */
  async switchInput(kind: 'audio' | 'video', deviceId: string): Promise<void> {
    if (kind === 'audio') this.#inputs.microphoneId = deviceId;
    else this.#inputs.cameraId = deviceId;
    const constraints = kind === 'audio' ? { audio: { deviceId: { exact: deviceId } } } : { video: { deviceId: { exact: deviceId }, width: 640, height: 480 } };
    const fresh = await navigator.mediaDevices.getUserMedia(constraints);
    const track = fresh.getTracks()[0]!;
    const source: ProducerSource = kind === 'audio' ? 'microphone' : 'camera';
    const old = this.stream?.getTracks().find((t) => t.kind === kind);
    if (old) {
      this.stream!.removeTrack(old);
      old.stop();
    }
    this.stream ??= new MediaStream();
    this.stream.addTrack(track);
    track.enabled = kind === 'audio' ? this.micEnabled : this.cameraEnabled;
    const producer = this.producers.get(source);
    if (producer) await producer.replaceTrack({ track });
    else await this.#host.run(() => this.#produce(track, source));
    this.#host.localMedia(this.stream);
  }

  /** On a fresh send transport: open camera and microphone (once) and produce every live track. */
  async publish(): Promise<void> {
    await this.#open();
    for (const track of this.stream?.getTracks() ?? []) await this.#produce(track, sourceOf(track));
    if (this.#screenTrack?.readyState === 'live') await this.#produce(this.#screenTrack, 'screen');
  }

  /** The hub closed one of our producers without our asking (worker restart): publish it again. */
  producerClosed(producerId: string): void {
    for (const [source, own] of this.producers) {
      if (own.id !== producerId) continue;
      own.close();
      this.producers.delete(source);
      const track = source === 'screen' ? this.#screenTrack : this.stream?.getTracks().find((t) => sourceOf(t) === source);
      if (track && track.readyState === 'live') void this.#host.run(() => this.#produce(track, source));
    }
  }

  /** Closes the producers (their transport is going); the tracks stay open. */
  closeProducers(): void {
    for (const producer of this.producers.values()) producer.close();
    this.producers.clear();
  }

  /** Releases camera and microphone (and the screen, when asked): the page is leaving or its access ended. */
  release(screenToo: boolean): void {
    if (screenToo) this.#screenTrack?.stop();
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = undefined;
    this.#host.localMedia(undefined);
  }

  async #open(): Promise<void> {
    if (this.stream || !this.#host.device.canProduce('video')) return;
    const { cameraId, microphoneId } = this.#inputs;
    const video = { width: 640, height: 480, ...(cameraId ? { deviceId: { exact: cameraId } } : {}) };
    const audio = microphoneId ? { deviceId: { exact: microphoneId } } : true;
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio, video });
    } catch {
      // Maybe only one of the two exists (a specialist's desktop without camera).
      this.stream = await navigator.mediaDevices.getUserMedia({ audio }).catch(() => undefined);
    }
    for (const track of this.stream?.getTracks() ?? []) track.enabled = track.kind === 'audio' ? this.micEnabled : this.cameraEnabled;
    this.#host.localMedia(this.stream);
  }

  async #produce(track: MediaStreamTrack, source: ProducerSource): Promise<void> {
    const transport = this.#host.sendTransport();
    if (!transport || this.producers.has(source) || !this.#host.device.canProduce(track.kind as 'audio' | 'video')) return;
    // A shared screen is read, not watched: keep its resolution, give up frames first.
    if (source === 'screen') track.contentHint = 'detail';
    const producer = await transport.produce({
      track,
      appData: { source },
      stopTracks: false,
      ...(source === 'camera' ? { encodings: CAMERA_ENCODINGS } : {}),
      ...(track.kind === 'video' ? { codecOptions: { videoGoogleStartBitrate: VIDEO_START_KBPS } } : { encodings: AUDIO_ENCODINGS, codecOptions: AUDIO_CODEC_OPTIONS }),
    });
    if (source === 'screen') await preferResolution(producer);
    this.producers.set(source, producer);
    if ((source === 'microphone' && !this.micEnabled) || (source === 'camera' && !this.cameraEnabled)) {
      await this.#setProducerPaused(source, true);
    }
    this.#host.ownProducersChanged();
  }

  async #setProducerPaused(source: ProducerSource, paused: boolean): Promise<void> {
    const track = this.stream?.getTracks().find((t) => sourceOf(t) === source);
    if (track) track.enabled = !paused; // also blanks the local preview
    const producer = this.producers.get(source);
    if (!producer) return;
    if (paused) producer.pause();
    else producer.resume();
    this.#host.ownProducersChanged();
    await this.#host.signaling.request(paused ? 'pauseProducer' : 'resumeProducer', { producerId: producer.id });
  }
}

/** Camera and microphone tracks map to their contract source; the screen is tracked apart. */
function sourceOf(track: MediaStreamTrack): ProducerSource {
  return track.kind === 'audio' ? 'microphone' : 'camera';
}

/** Screen share degrades frame rate before resolution (where the browser lets us say so). */
async function preferResolution(producer: Producer): Promise<void> {
  const sender = producer.rtpSender;
  if (!sender) return;
  try {
    await sender.setParameters({ ...sender.getParameters(), degradationPreference: 'maintain-resolution' });
  } catch {
    // contentHint 'detail' already implies it in Chromium.
  }
}
