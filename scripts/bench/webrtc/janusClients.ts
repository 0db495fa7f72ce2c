// `hoichan loadtest`'s clients speaking Janus VideoRoom (HTTP API) instead of
// Hoichan's signaling, for the Janus row of the WebRTC bench: the same
// libdatachannel peers, the same media loop (Publisher), the same counters,
// NACKs, PLIs and receiver reports (Subscriber); only how they get into the
// room differs. One Janus session per client, as one browser holds one.
//
// Publisher: `joinandconfigure` with libdatachannel's offer (VP8 + opus, its
// SSRCs), Janus's answer. Subscriber: `join` as a subscriber of the room's
// publisher; Janus offers (video with RTX, audio), we answer.
// Janus is a full ICE agent and the DTLS role follows the offer, so these
// clients wait for their ICE candidates before sending an SDP (no trickle).

import nodeDataChannel from 'node-datachannel';
import type { PeerConnection } from 'node-datachannel';
import { Publisher, Subscriber, waitConnected, type PeerOptions } from '../../../src/loadtest/client.js';
import type { AudioClip, VideoClip, VideoCodec } from '../../../src/loadtest/media.js';
import type { ClientFactory } from '../../../src/loadtest/run.js';
import { ReceiveStream } from '../../../src/loadtest/stats.js';
import { JanusSession, type JanusReply } from '../support/janus.js';

const { PeerConnection: PeerConnectionCtor } = nodeDataChannel;

/** Time allowed for ICE gathering (host candidates only: milliseconds in practice). */
const GATHER_TIMEOUT_MS = 5000;

/** The local description once every host candidate is in it. */
async function gatheredDescription(pc: PeerConnection, expected: 'offer' | 'answer'): Promise<string> {
  const deadline = performance.now() + GATHER_TIMEOUT_MS;
  for (;;) {
    const local = pc.localDescription();
    if (local && local.type === expected && pc.gatheringState() === 'complete') return local.sdp;
    if (performance.now() > deadline) throw new Error(`ICE gathering not complete in ${GATHER_TIMEOUT_MS} ms (state ${pc.gatheringState()})`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** What a subscriber needs of one m-line of Janus's offer: where the stream comes, on which SSRC, with which RTX. */
export interface OfferedStream {
  mid: string;
  kind: 'audio' | 'video';
  /** its codec's name, lower case (opus, vp8, h264) */
  codec: string;
  clockRate: number;
  ssrc: number;
  rtx?: { payloadType: number; ssrc: number };
}

/** Reads the audio and video m-lines of an SDP offer (Janus's for a subscriber). */
export function offeredStreams(sdp: string): OfferedStream[] {
  const streams: OfferedStream[] = [];
  const sections = sdp.split(/\r?\n(?=m=)/).slice(1);
  for (const section of sections) {
    const lines = section.split(/\r?\n/);
    const m = /^m=(audio|video) (\d+) \S+ (.*)$/.exec(lines[0]!);
    if (!m || m[2] === '0') continue;
    const attr = (name: string) => lines.filter((l) => l.startsWith(`a=${name}:`)).map((l) => l.slice(name.length + 3));
    const mid = attr('mid')[0];
    const rtpmap = new Map(attr('rtpmap').map((v) => {
      const [pt, codec] = v.split(' ');
      const [name, clock] = codec!.split('/');
      return [Number(pt), { name: name!.toLowerCase(), clockRate: Number(clock) }] as const;
    }));
    const payloadTypes = m[3]!.split(' ').map(Number);
    const main = payloadTypes.find((pt) => !['rtx', 'red', 'ulpfec'].includes(rtpmap.get(pt)?.name ?? ''));
    const fid = attr('ssrc-group').map((v) => /^FID (\d+) (\d+)/.exec(v)).find((g) => g);
    const firstSsrc = attr('ssrc').map((v) => Number(v.split(' ')[0]))[0];
    const rtxPt = payloadTypes.find((pt) => rtpmap.get(pt)?.name === 'rtx' && attr('fmtp').some((f) => f.startsWith(`${pt} apt=${main}`)));
    const ssrc = fid ? Number(fid[1]) : firstSsrc;
    if (mid === undefined || main === undefined || ssrc === undefined) continue;
    streams.push({
      mid,
      kind: m[1] as 'audio' | 'video',
      codec: rtpmap.get(main)?.name ?? '',
      clockRate: rtpmap.get(main)?.clockRate ?? 90000,
      ssrc,
      ...(fid && rtxPt !== undefined ? { rtx: { payloadType: rtxPt, ssrc: Number(fid[2]) } } : {}),
    });
  }
  return streams;
}

/** Sessions being destroyed on the server: a generator awaits them before it exits, so Janus is left with none. */
export const closingSessions = new Set<Promise<void>>();

function closeSession(session: JanusSession | undefined): void {
  if (!session) return;
  const closing = session.close().finally(() => closingSessions.delete(closing));
  closingSessions.add(closing);
}

/** The room number a client is given as its "conference". */
function roomOf(conferenceId: string): number {
  const room = Number(conferenceId);
  if (!Number.isInteger(room) || room <= 0) throw new Error(`Janus room must be a positive integer, not ${conferenceId}`);
  return room;
}

export class JanusPublisher extends Publisher {
  #session?: JanusSession;
  #stageName = 'session';

  protected override stage(name: string): void {
    this.#stageName = name;
    super.stage(name);
  }

  /** `janusBase`: http://host:port/janus; `room`: the VideoRoom's number. The token is Hoichan's, unused here. */
  override async start(janusBase: string, _token: string, room: string): Promise<boolean> {
    try {
      this.joinRequestedAt = performance.now();
      this.stage('session');
      const session = (this.#session = await JanusSession.create(janusBase));
      session.onEvent = (e) => this.#onEvent(e);
      const handle = await session.attach();
      const pc = (this.pc = new PeerConnectionCtor(`${this.id}-send`, { iceServers: [] }));
      this.addTracks(pc);
      this.stage('offer');
      pc.setLocalDescription();
      const offer = await gatheredDescription(pc, 'offer');
      this.stage('joinandconfigure');
      const joined = await session.message(handle, { request: 'joinandconfigure', ptype: 'publisher', room: roomOf(room), display: `loadtest ${this.id}` }, { type: 'offer', sdp: offer });
      this.timings.joinMs = performance.now() - this.joinRequestedAt;
      this.peerId = String(joined.data.id);
      if (joined.jsep?.type !== 'answer') throw new Error('joinandconfigure: no SDP answer');
      pc.setRemoteDescription(joined.jsep.sdp, 'answer');
      this.stage('ice/dtls');
      await waitConnected(pc, 'send peer connection');
      this.startMedia();
      return true;
    } catch (err) {
      if (!this.closed) this.failure = { stage: this.#stageName, message: (err as Error).message };
      return false;
    }
  }

  #onEvent(e: JanusReply): void {
    if ((e.janus === 'hangup' || e.janus === 'poll-error') && !this.closed && !this.failure) this.failure = { stage: 'janus', message: `${e.janus}: ${String(e.reason)}` };
  }

  override close(): void {
    super.close();
    closeSession(this.#session);
  }
}

export class JanusSubscriber extends Subscriber {
  #session?: JanusSession;
  #stageName = 'session';

  protected override stage(name: string): void {
    this.#stageName = name;
    super.stage(name);
  }

  override async start(janusBase: string, _token: string, room: string): Promise<boolean> {
    try {
      this.joinRequestedAt = performance.now();
      this.stage('session');
      const session = (this.#session = await JanusSession.create(janusBase));
      session.onEvent = (e) => this.#onEvent(e);
      const handle = await session.attach();
      this.stage('listparticipants');
      const listed = await session.request(handle, { request: 'listparticipants', room: roomOf(room) });
      const feed = (listed.participants as { id: number; publisher?: boolean }[] | undefined)?.find((p) => p.publisher)?.id;
      if (feed === undefined) throw new Error(`room ${room} has no publisher`);
      this.stage('join');
      const attached = await session.message(handle, { request: 'join', ptype: 'subscriber', room: roomOf(room), streams: [{ feed }] });
      this.timings.joinMs = performance.now() - this.joinRequestedAt;
      this.peerId = `${session.id}/${handle}`;
      if (attached.jsep?.type !== 'offer') throw new Error('join: no SDP offer');
      const offer = attached.jsep.sdp;
      const streams = offeredStreams(offer);
      // A room of another codec would still carry video: a row must measure the codec it names.
      const video = streams.find((s) => s.kind === 'video');
      if (video && video.codec !== this.videoCodec) throw new Error(`join: Janus offers ${video.codec} video, not ${this.videoCodec}`);
      for (const s of streams) {
        this.addReceived(s.mid, { consumerId: `${feed}-${s.mid}`, producerId: `${feed}-${s.mid}`, ssrc: s.ssrc, rtx: s.rtx, stream: new ReceiveStream(s.kind, s.clockRate) });
      }
      if (this.received.size === 0) throw new Error('join: the offer has no audio or video');
      const pc = (this.pc = new PeerConnectionCtor(`${this.id}-recv`, { iceServers: [] }));
      pc.onTrack((track) => this.onTrack(track));
      this.stage('answer');
      // As with the hub (src/loadtest/sdp.ts): libdatachannel sends our NACKs and PLIs only on a track
      // it may send on, so it sees 'sendrecv'; Janus is told 'recvonly', what we are.
      pc.setRemoteDescription(offer.replace(/^a=sendonly(\r?)$/gm, 'a=sendrecv$1'), 'offer');
      const answer = (await gatheredDescription(pc, 'answer')).replace(/^a=sendrecv(\r?)$/gm, 'a=recvonly$1');
      this.stage('start');
      await session.message(handle, { request: 'start' }, { type: 'answer', sdp: answer });
      this.stage('ice/dtls');
      await waitConnected(pc, 'recv peer connection');
      this.startFeedback();
      return true;
    } catch (err) {
      if (!this.closed) this.failure = { stage: this.#stageName, message: (err as Error).message };
      return false;
    }
  }

  #onEvent(e: JanusReply): void {
    if ((e.janus === 'hangup' || e.janus === 'poll-error') && !this.closed && !this.failure) this.failure = { stage: 'janus', message: `${e.janus}: ${String(e.reason)}` };
  }

  override close(): void {
    super.close();
    closeSession(this.#session);
  }
}

export const janusClients: ClientFactory = {
  publisher: (id: string, video: VideoClip[], audio: AudioClip) => new JanusPublisher(id, video, audio),
  subscriber: (id: string, video: VideoCodec, options: PeerOptions) => new JanusSubscriber(id, video, options),
};
