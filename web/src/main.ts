import { Device } from 'mediasoup-client';
import type { Consumer, Producer, RtpCapabilities, Transport } from 'mediasoup-client/types';
import { SignalingClient } from './signaling';

interface PeerSummary { peerId: string; displayName: string; role: string }
interface ProducerInfo { producerId: string; peerId: string; kind: 'audio' | 'video'; source: string }
interface TransportOptions { id: string; iceParameters: any; iceCandidates: any[]; dtlsParameters: any }

const params = new URLSearchParams(location.search);
const conferenceId = params.get('conference') ?? '';
const token = params.get('token') ?? '';
const displayName = params.get('name') ?? 'Guest';

const grid = document.getElementById('grid')!;
const stateBadge = document.getElementById('state')!;

function setState(state: 'joining' | 'live' | 'reconnecting' | 'error', text = state): void {
  stateBadge.dataset.state = state;
  stateBadge.textContent = text;
}

function showError(message: string): void {
  const box = document.getElementById('message')!;
  box.textContent = message;
  box.hidden = false;
  setState('error');
}

/** What tests read: timing and per-consumer decode stats. */
const telemetry = {
  joinRequestedAt: 0,
  joinedAt: 0,
  firstRemoteFrameAt: 0,
  peerId: '',
  /** Contract events received, in order (names and payloads; no media). */
  events: [] as { name: string; data: unknown }[],
  async stats() {
    const out: { consumerId: string; peerId: string; kind: string; framesDecoded: number; packetsReceived: number; bytesReceived: number }[] = [];
    for (const [consumerId, entry] of consumers) {
      let framesDecoded = 0, packetsReceived = 0, bytesReceived = 0;
      (await entry.consumer.getStats()).forEach((s: any) => {
        if (s.type === 'inbound-rtp') {
          framesDecoded += s.framesDecoded ?? 0;
          packetsReceived += s.packetsReceived ?? 0;
          bytesReceived += s.bytesReceived ?? 0;
        }
      });
      out.push({ consumerId, peerId: entry.peerId, kind: entry.consumer.kind, framesDecoded, packetsReceived, bytesReceived });
    }
    return out;
  },
};
(window as any).hoichan = telemetry;

const device = new Device();
const peers = new Map<string, PeerSummary>();
const producers = new Map<string, ProducerInfo>();
const consumers = new Map<string, { consumer: Consumer; peerId: string }>();
let sendTransport: Transport | undefined;
let recvTransport: Transport | undefined;
const ownProducers = new Map<string, Producer>();
let localStream: MediaStream | undefined;

const signaling = new SignalingClient(token);

function tile(peerId: string, label: string, self = false): HTMLElement {
  let el = document.getElementById(`peer-${peerId}`);
  if (!el) {
    el = document.createElement('div');
    el.id = `peer-${peerId}`;
    el.className = self ? 'tile self' : 'tile';
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true; // audio plays through its own element
    const name = document.createElement('span');
    name.className = 'label';
    name.textContent = label;
    el.append(video, name);
    grid.append(el);
  }
  return el;
}

function attach(peerId: string, consumer: Consumer): void {
  const peer = peers.get(peerId);
  const el = tile(peerId, peer ? `${peer.displayName} · ${peer.role}` : peerId);
  if (consumer.kind === 'video') {
    const video = el.querySelector('video')!;
    video.srcObject = new MediaStream([consumer.track]);
    const markFirstFrame = () => {
      if (!telemetry.firstRemoteFrameAt) telemetry.firstRemoteFrameAt = performance.now();
    };
    const frameCallback = (video as HTMLVideoElement & { requestVideoFrameCallback?: (cb: () => void) => number }).requestVideoFrameCallback;
    if (frameCallback) frameCallback.call(video, markFirstFrame);
    else video.addEventListener('loadeddata', markFirstFrame, { once: true });
  } else {
    const audio = document.createElement('audio');
    audio.autoplay = true;
    audio.dataset.consumerId = consumer.id;
    audio.srcObject = new MediaStream([consumer.track]);
    el.append(audio);
  }
}

function detach(consumerId: string): void {
  const entry = consumers.get(consumerId);
  if (!entry) return;
  consumers.delete(consumerId);
  entry.consumer.close();
  const el = document.getElementById(`peer-${entry.peerId}`);
  el?.querySelector(`audio[data-consumer-id="${consumerId}"]`)?.remove();
  if (entry.consumer.kind === 'video') {
    const video = el?.querySelector('video');
    if (video) video.srcObject = null;
  }
}

async function createTransport(direction: 'send' | 'recv'): Promise<Transport> {
  const { transport } = await signaling.request<{ transport: TransportOptions }>('createTransport', { direction });
  const t = direction === 'send' ? device.createSendTransport(transport) : device.createRecvTransport(transport);
  t.on('connect', ({ dtlsParameters }, callback, errback) => {
    signaling.request('connectTransport', { transportId: t.id, dtlsParameters }).then(() => callback(), errback);
  });
  if (direction === 'send') {
    t.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
      signaling
        .request<{ producerId: string }>('produce', { transportId: t.id, kind, rtpParameters, source: appData.source })
        .then(({ producerId }) => callback({ id: producerId }), errback);
    });
  }
  t.on('connectionstatechange', (state) => {
    if (state === 'failed') void restartIce(t);
  });
  return t;
}

async function restartIce(t: Transport): Promise<void> {
  try {
    const { iceParameters } = await signaling.request<{ iceParameters: any }>('restartIce', { transportId: t.id });
    await t.restartIce({ iceParameters });
  } catch (err) {
    console.warn('ICE restart failed', err);
  }
}

async function consume(info: ProducerInfo): Promise<void> {
  if (!recvTransport || info.peerId === telemetry.peerId) return;
  const { consumer: params } = await signaling.request<{ consumer: { id: string; producerId: string; kind: 'audio' | 'video'; rtpParameters: any } }>(
    'consume',
    { transportId: recvTransport.id, producerId: info.producerId, rtpCapabilities: device.rtpCapabilities },
  );
  const consumer = await recvTransport.consume(params);
  consumers.set(consumer.id, { consumer, peerId: info.peerId });
  attach(info.peerId, consumer);
  await signaling.request('resumeConsumer', { consumerId: consumer.id });
}

async function publish(): Promise<void> {
  if (!device.canProduce('video') && !device.canProduce('audio')) return;
  localStream ??= await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  const self = tile(telemetry.peerId, `${displayName}`, true);
  self.querySelector('video')!.srcObject = localStream;
  for (const track of localStream.getTracks()) {
    const source = track.kind === 'audio' ? 'microphone' : 'camera';
    const producer = await sendTransport!.produce({ track, appData: { source } });
    ownProducers.set(producer.id, producer);
  }
}

/** (Re)creates both transports, publishes, and consumes every known producer. */
async function setUpMedia(): Promise<void> {
  for (const { consumer } of consumers.values()) consumer.close();
  consumers.clear();
  for (const p of ownProducers.values()) p.close();
  ownProducers.clear();
  sendTransport?.close();
  recvTransport?.close();
  sendTransport = await createTransport('send');
  recvTransport = await createTransport('recv');
  await publish();
  for (const info of producers.values()) await consume(info).catch((err) => console.warn('consume failed', err));
}

async function join(): Promise<void> {
  setState('joining');
  telemetry.joinRequestedAt = performance.now();
  const joined = await signaling.request<{
    peerId: string;
    routerRtpCapabilities: RtpCapabilities;
    peers: PeerSummary[];
    producers: ProducerInfo[];
  }>('join', { conferenceId, displayName });
  telemetry.joinedAt = performance.now();
  telemetry.peerId = joined.peerId;
  if (!device.loaded) await device.load({ routerRtpCapabilities: joined.routerRtpCapabilities });
  peers.clear();
  producers.clear();
  for (const p of joined.peers) {
    peers.set(p.peerId, p);
    tile(p.peerId, `${p.displayName} · ${p.role}`);
  }
  for (const p of joined.producers) producers.set(p.producerId, p);
  await setUpMedia();
  setState('live');
}

let settingUp: Promise<void> = Promise.resolve();
function serially(task: () => Promise<void>): void {
  settingUp = settingUp.then(task).catch((err) => showError(String(err?.message ?? err)));
}

signaling.socket.onAny((name: string, data: unknown) => telemetry.events.push({ name, data }));
signaling.socket.on('peerJoined', (p: PeerSummary) => {
  peers.set(p.peerId, p);
  tile(p.peerId, `${p.displayName} · ${p.role}`);
});
signaling.socket.on('peerLeft', ({ peerId }: { peerId: string }) => {
  peers.delete(peerId);
  document.getElementById(`peer-${peerId}`)?.remove();
});
signaling.socket.on('newProducer', (info: ProducerInfo) => {
  producers.set(info.producerId, info);
  serially(() => consume(info));
});
signaling.socket.on('producerClosed', ({ producerId }: { producerId: string }) => {
  producers.delete(producerId);
  const own = ownProducers.get(producerId);
  if (own) {
    // The hub lost it (worker restart): publish again.
    own.close();
    ownProducers.delete(producerId);
  }
});
signaling.socket.on('consumerClosed', ({ consumerId }: { consumerId: string }) => detach(consumerId));
signaling.socket.on('transportClosed', () => {
  setState('reconnecting');
  serially(async () => {
    await setUpMedia();
    setState('live');
  });
});
signaling.socket.on('connect_error', (err) => {
  if (err.message === 'unauthorized') showError('The hub refused this link: the token is missing, expired or invalid.');
});
signaling.socket.io.on('reconnect_attempt', () => setState('reconnecting'));
signaling.socket.on('connect', () => {
  if (!telemetry.peerId) serially(join);
  else if (signaling.socket.recovered) {
    // Same session: only the network path changed.
    serially(async () => {
      for (const t of [sendTransport, recvTransport]) if (t) await restartIce(t);
      setState('live');
    });
  } else {
    // Session expired on the hub: join again from scratch.
    telemetry.peerId = '';
    grid.replaceChildren();
    serially(join);
  }
});

document.getElementById('conference-label')!.textContent = conferenceId ? `Conference ${conferenceId}` : '';
if (!conferenceId || !token) showError('Open this page with ?conference=ID&token=TOKEN (see README).');
