import { randomBytes } from 'node:crypto';
import type { types } from 'mediasoup';
import type { IngestCodec } from '../contract/ingest.js';

// The ingest request and answer are part of the public contract.
export type { IngestCodec, IngestInfo, IngestRequest, IngestSource } from '../contract/ingest.js';

const CODECS: Record<IngestCodec, { payloadType: number; codec: types.RtpCodecParameters }> = {
  VP8: {
    payloadType: 96,
    codec: { mimeType: 'video/VP8', payloadType: 96, clockRate: 90000 },
  },
  H264: {
    payloadType: 102,
    codec: {
      mimeType: 'video/H264',
      payloadType: 102,
      clockRate: 90000,
      parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
    },
  },
};

/** The RTP parameters a capture sends with: one fixed codec and SSRC, no RTX or simulcast. */
export function ingestRtpParameters(codec: IngestCodec, ssrc: number): types.RtpParameters {
  return {
    codecs: [CODECS[codec].codec],
    encodings: [{ ssrc }],
    rtcp: { cname: `ingest-${ssrc}`, reducedSize: true },
  };
}

export function ingestPayloadType(codec: IngestCodec): number {
  return CODECS[codec].payloadType;
}

/** An unpredictable SSRC in 1..2^31-1: ffmpeg takes -ssrc as a signed 32-bit integer. */
export function randomSsrc(): number {
  return (randomBytes(4).readUInt32BE(0) % 0x7ffffffe) + 1;
}

/** Master key + salt for AES_CM_128_HMAC_SHA1_80: 30 bytes, as ffmpeg and mediasoup expect. */
export function randomSrtpKey(): string {
  return randomBytes(30).toString('base64');
}
