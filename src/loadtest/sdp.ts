// A minimal "handler", as mediasoup-client has one per browser: it turns the
// mediasoup WebRtcTransport parameters and RTP parameters the hub sends into
// the SDP that libdatachannel (node-datachannel) negotiates with, and reads
// back from libdatachannel's SDP what the hub needs (DTLS fingerprint and role).
//
// mediasoup itself never sees SDP. The remote description we write stands for
// the hub's side of the transport: ICE-lite, its ICE credentials and host
// candidates, its DTLS fingerprint, one m-line per producer or consumer.
//
// DTLS roles: the hub is always the DTLS *client* (a=setup:active in its SDP)
// and we the server. mediasoup starts its handshake only after connectTransport
// has told it our fingerprint, so the order "connectTransport, then let
// libdatachannel finish" never races a ClientHello sent before the hub knows us
// (the race a browser avoids by calling connect before setLocalDescription).

import { z } from 'zod';

export const iceCandidateSchema = z.object({
  foundation: z.string(),
  priority: z.number(),
  // mediasoup 3.12 calls it ip; later versions address.
  ip: z.string().optional(),
  address: z.string().optional(),
  protocol: z.enum(['udp', 'tcp']),
  port: z.number().int(),
  type: z.string(),
});

export const transportParamsSchema = z.object({
  id: z.string(),
  iceParameters: z.object({ usernameFragment: z.string(), password: z.string() }),
  iceCandidates: z.array(iceCandidateSchema),
  dtlsParameters: z.object({ fingerprints: z.array(z.object({ algorithm: z.string(), value: z.string() })) }),
});
export type TransportParams = z.infer<typeof transportParamsSchema>;

export const rtpCodecSchema = z.object({
  mimeType: z.string(),
  payloadType: z.number().int(),
  clockRate: z.number().int(),
  channels: z.number().int().optional(),
  parameters: z.record(z.union([z.string(), z.number()])).optional(),
  rtcpFeedback: z.array(z.object({ type: z.string(), parameter: z.string().optional() })).optional(),
});
export type RtpCodec = z.infer<typeof rtpCodecSchema>;

export const consumerRtpParametersSchema = z.object({
  codecs: z.array(rtpCodecSchema).min(1),
  encodings: z.array(z.object({ ssrc: z.number().int(), rtx: z.object({ ssrc: z.number().int() }).optional() })).min(1),
  rtcp: z.object({ cname: z.string().optional() }).optional(),
});

/** One m-line of the hub's side: a producer we send (the hub receives) or a consumer we receive (the hub sends). */
export interface MediaSection {
  mid: string;
  kind: 'audio' | 'video';
  codec: RtpCodec;
  /** Consumers only: the SSRC and cname the hub sends with, so libdatachannel routes its packets to this track. */
  ssrc?: number;
  cname?: string;
  /**
   * Consumers of video: the RTX stream (RFC 4588) mediasoup retransmits on.
   * Needed, not optional: a retransmission on the media SSRC reuses its SRTP
   * index, and libsrtp's replay protection drops it, as a browser's would.
   */
  rtx?: { payloadType: number; ssrc: number };
}

function fmtp(codec: RtpCodec): string | undefined {
  const params = Object.entries(codec.parameters ?? {});
  return params.length ? `a=fmtp:${codec.payloadType} ${params.map(([k, v]) => `${k}=${v}`).join(';')}` : undefined;
}

function codecName(mimeType: string): string {
  return mimeType.split('/')[1]!;
}

/**
 * The hub's SDP for one transport. `direction` is the hub's: 'recvonly' on our
 * send transport (an answer to our offer); on our recv transport (an offer we
 * answer) 'sendrecv', not 'sendonly': libdatachannel refuses to send anything
 * but its own control messages on a recvonly track, and our NACKs are ours.
 * mediasoup never reads this SDP, and we never send RTP on those tracks.
 * Only UDP candidates: libdatachannel's ICE (libjuice) does not do ICE-TCP.
 */
export function remoteSdp(transport: TransportParams, sections: MediaSection[], direction: 'recvonly' | 'sendrecv', version: number): string {
  const fingerprint = transport.dtlsParameters.fingerprints.find((f) => f.algorithm === 'sha-256') ?? transport.dtlsParameters.fingerprints[0];
  if (!fingerprint) throw new Error('transport has no DTLS fingerprint');
  const candidates = transport.iceCandidates.filter((c) => c.protocol === 'udp');
  if (candidates.length === 0) throw new Error('transport has no UDP ICE candidate');
  const lines = [
    'v=0',
    `o=hoichan-hub ${transport.id.replace(/\D/g, '').slice(0, 15) || '1'} ${version} IN IP4 0.0.0.0`,
    's=-',
    't=0 0',
    'a=ice-lite',
    `a=group:BUNDLE ${sections.map((s) => s.mid).join(' ')}`,
    'a=msid-semantic: WMS *',
    `a=fingerprint:${fingerprint.algorithm} ${fingerprint.value.toUpperCase()}`,
  ];
  for (const section of sections) {
    const { codec } = section;
    const ip = candidates[0]!.ip ?? candidates[0]!.address ?? '0.0.0.0';
    lines.push(
      `m=${section.kind} 7 UDP/TLS/RTP/SAVPF ${codec.payloadType}${section.rtx ? ` ${section.rtx.payloadType}` : ''}`,
      `c=IN IP4 ${ip}`,
      `a=mid:${section.mid}`,
      `a=${direction}`,
      `a=ice-ufrag:${transport.iceParameters.usernameFragment}`,
      `a=ice-pwd:${transport.iceParameters.password}`,
      ...candidates.map((c) => `a=candidate:${c.foundation} 1 udp ${c.priority} ${c.ip ?? c.address} ${c.port} typ host`),
      'a=end-of-candidates',
      'a=setup:active',
      'a=rtcp-mux',
      'a=rtcp-rsize',
      `a=rtpmap:${codec.payloadType} ${codecName(codec.mimeType)}/${codec.clockRate}${codec.channels && codec.channels > 1 ? `/${codec.channels}` : ''}`,
      ...(codec.rtcpFeedback ?? []).map((fb) => `a=rtcp-fb:${codec.payloadType} ${fb.type}${fb.parameter ? ` ${fb.parameter}` : ''}`),
    );
    const f = fmtp(codec);
    if (f) lines.push(f);
    if (section.rtx) lines.push(`a=rtpmap:${section.rtx.payloadType} rtx/${codec.clockRate}`, `a=fmtp:${section.rtx.payloadType} apt=${codec.payloadType}`);
    if (section.ssrc !== undefined) {
      const cname = section.cname ?? 'hub';
      lines.push(`a=ssrc:${section.ssrc} cname:${cname}`);
      if (section.rtx) lines.push(`a=ssrc:${section.rtx.ssrc} cname:${cname}`, `a=ssrc-group:FID ${section.ssrc} ${section.rtx.ssrc}`);
      lines.push(`a=msid:hub-${section.mid} track-${section.mid}`);
    }
  }
  return lines.join('\r\n') + '\r\n';
}

/**
 * Our DTLS parameters for connectTransport, read from libdatachannel's SDP.
 * The role follows a=setup: 'passive' (what we answer to the hub's 'active',
 * or what we became in our own offer's 'actpass') makes us the DTLS server.
 */
export function localDtlsParameters(sdp: string): { role: 'client' | 'server'; fingerprints: { algorithm: string; value: string }[] } {
  const fingerprint = /^a=fingerprint:(\S+) (\S+)/m.exec(sdp);
  if (!fingerprint) throw new Error('local SDP has no a=fingerprint');
  const setup = /^a=setup:(\S+)/m.exec(sdp)?.[1];
  return { role: setup === 'active' ? 'client' : 'server', fingerprints: [{ algorithm: fingerprint[1]!.toLowerCase(), value: fingerprint[2]! }] };
}
