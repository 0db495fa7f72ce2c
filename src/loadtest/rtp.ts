// RTP and RTCP on the wire, as much as a synthetic WebRTC client needs: the
// 12-byte RTP header (RFC 3550), the VP8 payload descriptor (RFC 7741), H.264
// FU-A fragmentation (RFC 6184), and the three RTCP feedback messages a browser
// sends or answers (generic NACK, PLI, FIR; RFC 4585/5104). Pure functions on
// Buffers; client.ts does the sending.

/** Payload bytes per RTP packet: below a 1280-byte path MTU after SRTP, UDP and IP overhead, like browsers. */
export const MAX_PAYLOAD = 1100;

export interface RtpHeader {
  payloadType: number;
  marker: boolean;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
}

/**
 * One RTP packet. `audioLevel` (RFC 6464, 0 = loudest, 127 = silence) adds a
 * one-byte header extension (RFC 8285) with that id, as a browser's
 * microphone sends it: mediasoup's active-speaker observer reads it.
 */
export function buildRtp(header: RtpHeader, payload: Buffer, audioLevel?: { id: number; level: number }): Buffer {
  const extensionBytes = audioLevel ? 8 : 0;
  const packet = Buffer.allocUnsafe(12 + extensionBytes + payload.length);
  packet[0] = audioLevel ? 0x90 : 0x80; // V=2, no padding, extension bit as given, no CSRC
  packet[1] = (header.marker ? 0x80 : 0) | (header.payloadType & 0x7f);
  packet.writeUInt16BE(header.sequenceNumber & 0xffff, 2);
  packet.writeUInt32BE(header.timestamp >>> 0, 4);
  packet.writeUInt32BE(header.ssrc >>> 0, 8);
  if (audioLevel) {
    packet.writeUInt16BE(0xbede, 12); // one-byte header extensions
    packet.writeUInt16BE(1, 14); // one 32-bit word follows
    packet[16] = (audioLevel.id & 0x0f) << 4; // element: id, length 1 (encoded as 0)
    packet[17] = 0x80 | (audioLevel.level & 0x7f); // V (voice activity) set, level
    packet[18] = 0;
    packet[19] = 0;
  }
  payload.copy(packet, 12 + extensionBytes);
  return packet;
}

/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
const NTP_UNIX_OFFSET_S = 2_208_988_800;

/**
 * An RTCP sender report (RFC 3550 6.4.1) with no report blocks: the wall
 * clock (NTP) time `wallMs` and the stream's RTP timestamp at that instant.
 * mediasoup needs them to switch a viewer between simulcast layers (it
 * lines up the layers' RTP clocks by them), as a browser's sender sends them.
 */
export function buildSenderReport(ssrc: number, wallMs: number, rtpTimestamp: number, packets: number, payloadOctets: number): Buffer {
  const packet = Buffer.alloc(28);
  packet[0] = 0x80; // V=2, no padding, no report blocks
  packet[1] = 200;
  packet.writeUInt16BE(6, 2); // length in 32-bit words minus one
  packet.writeUInt32BE(ssrc >>> 0, 4);
  packet.writeUInt32BE((Math.floor(wallMs / 1000) + NTP_UNIX_OFFSET_S) >>> 0, 8);
  packet.writeUInt32BE(Math.floor(((wallMs % 1000) / 1000) * 0x1_0000_0000) >>> 0, 12);
  packet.writeUInt32BE(rtpTimestamp >>> 0, 16);
  packet.writeUInt32BE(packets >>> 0, 20);
  packet.writeUInt32BE(payloadOctets >>> 0, 24);
  return packet;
}

/** RTCP packet types live in 192..223 of the second byte; RTP with a dynamic payload type (96-127) never does, marker or not. */
export function isRtcp(packet: Buffer): boolean {
  return packet.length >= 8 && packet[1]! >= 192 && packet[1]! <= 223;
}

export interface ParsedRtp {
  payloadType: number;
  marker: boolean;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  /** Where the payload starts, after CSRCs and any header extension (mediasoup adds some, e.g. on RTX). */
  payloadOffset: number;
  /** Payload bytes without padding; 0 for a padding-only packet (bandwidth probing). */
  payloadLength: number;
}

export function parseRtp(packet: Buffer): ParsedRtp | undefined {
  if (packet.length < 12 || packet[0]! >> 6 !== 2) return undefined;
  let offset = 12 + 4 * (packet[0]! & 0x0f);
  if (packet[0]! & 0x10) {
    if (packet.length < offset + 4) return undefined;
    offset += 4 + 4 * packet.readUInt16BE(offset + 2);
  }
  const padding = packet[0]! & 0x20 ? packet[packet.length - 1]! : 0;
  const payloadLength = packet.length - offset - padding;
  if (payloadLength < 0) return undefined;
  return {
    payloadType: packet[1]! & 0x7f,
    marker: (packet[1]! & 0x80) !== 0,
    sequenceNumber: packet.readUInt16BE(2),
    timestamp: packet.readUInt32BE(4),
    ssrc: packet.readUInt32BE(8),
    payloadOffset: offset,
    payloadLength,
  };
}

/** VP8 payload descriptor with a 15-bit PictureID (X=1, I=1, M=1), as Chrome sends: mediasoup's simulcast consumer rewrites it. */
export function vp8Descriptor(startOfFrame: boolean, pictureId: number): Buffer {
  return Buffer.from([startOfFrame ? 0x90 : 0x80, 0x80, 0x80 | ((pictureId >> 8) & 0x7f), pictureId & 0xff]);
}

/** Splits one VP8 frame into RTP payloads (descriptor + fragment). */
export function packetizeVp8(frame: Buffer, pictureId: number): Buffer[] {
  const payloads: Buffer[] = [];
  const chunk = MAX_PAYLOAD - 4;
  for (let offset = 0; offset < frame.length; offset += chunk) {
    payloads.push(Buffer.concat([vp8Descriptor(offset === 0, pictureId), frame.subarray(offset, offset + chunk)]));
  }
  return payloads;
}

/** Splits one H.264 access unit (its NAL units, without start codes) into RTP payloads: single NAL or FU-A. */
export function packetizeH264(nalUnits: Buffer[]): Buffer[] {
  const payloads: Buffer[] = [];
  for (const nal of nalUnits) {
    if (nal.length <= MAX_PAYLOAD) {
      payloads.push(nal);
      continue;
    }
    const header = nal[0]!;
    const indicator = (header & 0xe0) | 28; // FU-A, keeping F and NRI
    const type = header & 0x1f;
    const chunk = MAX_PAYLOAD - 2;
    for (let offset = 1; offset < nal.length; offset += chunk) {
      const start = offset === 1;
      const end = offset + chunk >= nal.length;
      payloads.push(Buffer.concat([Buffer.from([indicator, (start ? 0x80 : 0) | (end ? 0x40 : 0) | type]), nal.subarray(offset, offset + chunk)]));
    }
  }
  return payloads;
}

/** Generic NACK (RTCP RTPFB, FMT 1) for the given lost sequence numbers, packed into PID+BLP pairs. */
export function buildNack(senderSsrc: number, mediaSsrc: number, lost: number[]): Buffer {
  // Order by distance from the first one, so a window across the 65535 -> 0 wrap stays in order.
  const base = lost[0] ?? 0;
  const sorted = [...new Set(lost)].sort((a, b) => ((a - base + 0x8000) & 0xffff) - ((b - base + 0x8000) & 0xffff));
  const items: [number, number][] = [];
  for (const seq of sorted) {
    const last = items[items.length - 1];
    const delta = last ? (seq - last[0] + 0x10000) & 0xffff : 0;
    if (last && delta >= 1 && delta <= 16) last[1] |= 1 << (delta - 1);
    else items.push([seq, 0]);
  }
  const packet = Buffer.alloc(12 + 4 * items.length);
  packet[0] = 0x80 | 1;
  packet[1] = 205;
  packet.writeUInt16BE(2 + items.length, 2);
  packet.writeUInt32BE(senderSsrc >>> 0, 4);
  packet.writeUInt32BE(mediaSsrc >>> 0, 8);
  items.forEach(([pid, blp], i) => {
    packet.writeUInt16BE(pid, 12 + 4 * i);
    packet.writeUInt16BE(blp, 14 + 4 * i);
  });
  return packet;
}

/** Picture Loss Indication (RTCP PSFB, FMT 1). */
export function buildPli(senderSsrc: number, mediaSsrc: number): Buffer {
  const packet = Buffer.alloc(12);
  packet[0] = 0x80 | 1;
  packet[1] = 206;
  packet.writeUInt16BE(2, 2);
  packet.writeUInt32BE(senderSsrc >>> 0, 4);
  packet.writeUInt32BE(mediaSsrc >>> 0, 8);
  return packet;
}

export type RtcpFeedback = { type: 'nack'; mediaSsrc: number; seqs: number[] } | { type: 'keyframe'; mediaSsrc: number };

/** The feedback messages of a (compound) RTCP packet that a sender must act on: NACK, PLI and FIR. Others are skipped. */
export function parseFeedback(packet: Buffer): RtcpFeedback[] {
  const out: RtcpFeedback[] = [];
  let offset = 0;
  while (offset + 4 <= packet.length) {
    const fmt = packet[offset]! & 0x1f;
    const pt = packet[offset + 1]!;
    const length = (packet.readUInt16BE(offset + 2) + 1) * 4;
    if (offset + length > packet.length || length < 4) break;
    if (pt === 205 && fmt === 1 && length >= 16) {
      const mediaSsrc = packet.readUInt32BE(offset + 8);
      const seqs: number[] = [];
      for (let i = offset + 12; i + 4 <= offset + length; i += 4) {
        const pid = packet.readUInt16BE(i);
        const blp = packet.readUInt16BE(i + 2);
        seqs.push(pid);
        for (let bit = 0; bit < 16; bit++) if (blp & (1 << bit)) seqs.push((pid + bit + 1) & 0xffff);
      }
      out.push({ type: 'nack', mediaSsrc, seqs });
    } else if (pt === 206 && (fmt === 1 || fmt === 4) && length >= 12) {
      // PLI carries the media SSRC in the header; FIR in its FCI (first entry), which names the same stream.
      const mediaSsrc = fmt === 1 ? packet.readUInt32BE(offset + 8) : length >= 20 ? packet.readUInt32BE(offset + 12) : 0;
      out.push({ type: 'keyframe', mediaSsrc });
    }
    offset += length;
  }
  return out;
}
