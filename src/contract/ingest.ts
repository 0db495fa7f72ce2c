// RTP ingest of ultrasound and device video (docs/PROTOCOL.md, "RTP ingest").
// Types only: the hub answers POST /api/conferences/:id/ingests with an
// IngestInfo, and `hoichan ingest` sends by it.

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
