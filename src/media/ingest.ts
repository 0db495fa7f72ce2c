import { randomBytes } from 'node:crypto';
import type { types } from 'mediasoup';

export type IngestSource = 'ultrasound' | 'device-video';
export type IngestCodec = 'VP8' | 'H264';

export interface IngestRequest {
  /** The site device the video comes from, e.g. 'us-1'. */
  deviceId: string;
  /** Shown to viewers, e.g. 'Ultrasound (Tram Y te Con Dao)'. */
  displayName: string;
  source: IngestSource;
  codec: IngestCodec;
  /** SRTP (AES_CM_128_HMAC_SHA1_80); plain RTP only where the hub allows it (media.ingestRequireSrtp false) on a trusted LAN. */
  srtp: boolean;
}

/** Where and how a capture device (e.g. ffmpeg) must send its RTP. */
export interface IngestInfo {
  ingestId: string;
  producerId: string;
  deviceId: string;
  source: IngestSource;
  ip: string;
  port: number;
  rtcpPort: number;
  codec: IngestCodec;
  payloadType: number;
  ssrc: number;
  clockRate: number;
  /** For ffmpeg's srtp_out_suite / srtp_out_params (hoichan ingest passes them by file, not on the command line). Absent for plain RTP. */
  srtp?: { cryptoSuite: 'AES_CM_128_HMAC_SHA1_80'; keyBase64: string };
}

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
