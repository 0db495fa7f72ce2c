// Pure decisions of the track recorder: the SDP ffmpeg reads one RTP stream
// from, and the container each codec is written to (no transcoding).

import type { types } from 'mediasoup';

export interface TrackFormat {
  /** ffmpeg muxer name. */
  muxer: 'webm' | 'matroska';
  extension: 'webm' | 'mkv';
  /** MIME type the file is served with. */
  contentType: string;
}

/** VP8, VP9 and opus go to WebM (browsers play it); H.264 to Matroska. Anything else is not recorded. */
export function formatFor(mimeType: string): TrackFormat | undefined {
  switch (mimeType.toLowerCase()) {
    case 'video/vp8':
    case 'video/vp9':
      return { muxer: 'webm', extension: 'webm', contentType: 'video/webm' };
    case 'audio/opus':
      return { muxer: 'webm', extension: 'webm', contentType: 'audio/webm' };
    case 'video/h264':
      return { muxer: 'matroska', extension: 'mkv', contentType: 'video/x-matroska' };
    default:
      return undefined;
  }
}

/**
 * One media section for the consumer's codec on 127.0.0.1:port. RTCP comes
 * muxed on the same port (the PlainTransport has rtcpMux); ffmpeg's RTP
 * demuxer sorts it out by payload type, and still binds port + 1 for RTCP of
 * its own, so the caller reserves both.
 */
export function sdpFor(rtpParameters: types.RtpParameters, kind: types.MediaKind, port: number): string {
  const codec = rtpParameters.codecs[0];
  if (!codec) throw new Error('consumer has no codec');
  const encoding = codec.mimeType.split('/')[1]!;
  const rtpmap = `${encoding}/${codec.clockRate}${codec.channels && codec.channels > 1 ? `/${codec.channels}` : ''}`;
  const fmtp = Object.entries(codec.parameters ?? {})
    .filter(([key]) => !key.startsWith('x-google'))
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(';');
  return [
    'v=0',
    'o=- 0 0 IN IP4 127.0.0.1',
    's=hoichan-recording',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=${kind} ${port} RTP/AVP ${codec.payloadType}`,
    `a=rtpmap:${codec.payloadType} ${rtpmap}`,
    ...(fmtp ? [`a=fmtp:${codec.payloadType} ${fmtp}`] : []),
    'a=rtcp-mux',
    'a=recvonly',
    '',
  ].join('\r\n');
}

/** Milliseconds since 1970 of an NTP timestamp (seconds since 1900 and a 32-bit fraction). */
export function ntpToMs(ntpSec: number, ntpFrac: number): number {
  return (ntpSec - 2_208_988_800) * 1000 + (ntpFrac / 2 ** 32) * 1000;
}

/** b − a for 32-bit RTP timestamps, taking the shorter way round the wrap. */
export function rtpDiff(a: number, b: number): number {
  let d = (b - a) % 2 ** 32;
  if (d > 2 ** 31) d -= 2 ** 32;
  if (d < -(2 ** 31)) d += 2 ** 32;
  return d;
}
