import type { IngestInfo } from '../../contract/ingest.js';

/**
 * A simulated ultrasound picture: Conway's life in grey on black looks enough
 * like speckle to test the path, and costs little CPU at 640x480.
 */
export const SIMULATED_ULTRASOUND_INPUT = [
  '-f',
  'lavfi',
  '-i',
  'life=size=640x480:rate=25:ratio=0.12:mold=25:life_color=#d0d0d0:death_color=#080808:mold_color=#404040',
];

/**
 * ffmpeg arguments that send one video stream to a hub ingest: fixed payload
 * type and SSRC (the hub's producer expects exactly these), a keyframe every
 * second (a PlainTransport cannot ask the sender for one, so late viewers
 * wait at most that long), and SRTP when the ingest asks for it. The SRTP
 * suite and key come from `srtpPresetPath` (an ffmpeg preset, see
 * SrtpKeyFile), never from the command line.
 */
export function ffmpegIngestArgs(info: IngestInfo, input: string[], bitrateKbps = 1200, srtpPresetPath?: string): string[] {
  const encoder =
    info.codec === 'VP8'
      ? ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-error-resilient', '1', '-auto-alt-ref', '0', '-lag-in-frames', '0', '-max-intra-rate', '300']
      : ['-c:v', 'libx264', '-profile:v', 'baseline', '-level', '3.1', '-preset', 'ultrafast', '-tune', 'zerolatency', '-bsf:v', 'dump_extra'];
  if (info.srtp && !srtpPresetPath) throw new Error('an SRTP ingest needs the key preset file (SrtpKeyFile)');
  const target = info.srtp
    ? ['-fpre', srtpPresetPath!, `srtp://${info.ip}:${info.port}?rtcpport=${info.rtcpPort}&pkt_size=1200`]
    : [`rtp://${info.ip}:${info.port}?rtcpport=${info.rtcpPort}&pkt_size=1200`];
  return [
    '-hide_banner',
    '-loglevel',
    'error',
    '-re',
    ...input,
    '-an',
    '-pix_fmt',
    'yuv420p',
    ...encoder,
    '-b:v',
    `${bitrateKbps}k`,
    '-maxrate',
    `${bitrateKbps}k`,
    // A small VBV buffer (and, for VP8, keyframes capped at 3 average frames, as
    // WebRTC encoders do) keeps every frame to a few dozen packets: ffmpeg sends
    // a frame's packets back to back, and a burst larger than the hub's UDP
    // receive buffer (~90 packets by default) is dropped by the kernel.
    '-bufsize',
    `${Math.round(bitrateKbps / 2)}k`,
    '-g',
    '25',
    '-keyint_min',
    '25',
    '-payload_type',
    String(info.payloadType),
    '-ssrc',
    String(info.ssrc),
    '-f',
    'rtp',
    ...target,
  ];
}
