// Child process of the SFU fan-out bench: sits between ffmpeg and the SFU and
// paces the RTP stream the way a WebRTC sender does (libwebrtc's pacer sends at
// 2.5x the target bitrate). ffmpeg's RTP muxer writes each video frame as one
// burst; a keyframe of 100+ packets at once overflows the SFU's ingest socket
// (Linux default receive buffer ~208 KiB, about 90 packets of 1200 B), and that
// loss reaches every receiver alike. This process takes ffmpeg's burst in a
// large buffer and spreads it out. RTCP is passed through unpaced.

import dgram from 'node:dgram';

export type PacerCommand = { cmd: 'start'; ip: string; port: number; rtcpPort: number; bitsPerSecond: number } | { cmd: 'report' } | { cmd: 'close' };
export interface PacerReport {
  received: number;
  sent: number;
  /** RTP sequence gaps in what ffmpeg sent us (should stay 0: the input socket has a large buffer). */
  inputGaps: number;
  /** Longest time a packet waited in the pacing queue since the last report. */
  maxQueueMs: number;
}

/** Largest catch-up burst after an idle or stalled moment, as in libwebrtc's 5 ms pacing interval. */
const BURST_MS = 5;
const rtp = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
const rtcp = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
const queue: { packet: Buffer; at: number }[] = [];
let target: Extract<PacerCommand, { cmd: 'start' }> | undefined;
let nextSendAt = 0;
let timer: NodeJS.Timeout | undefined;
let lastSeq: number | undefined;
const stats: PacerReport = { received: 0, sent: 0, inputGaps: 0, maxQueueMs: 0 };

function pump(): void {
  timer = undefined;
  const now = performance.now();
  // 1 ms slack: Node timers fire with millisecond granularity.
  while (queue.length > 0 && nextSendAt <= now + 1) {
    const { packet, at } = queue.shift()!;
    rtp.send(packet, target!.port, target!.ip);
    stats.sent++;
    stats.maxQueueMs = Math.max(stats.maxQueueMs, now - at);
    nextSendAt = Math.max(nextSendAt, now - BURST_MS) + (packet.length * 8 * 1000) / target!.bitsPerSecond;
  }
  if (queue.length > 0) timer = setTimeout(pump, Math.max(1, nextSendAt - now));
}

rtp.on('message', (packet) => {
  if (!target || packet.length < 12) return;
  stats.received++;
  const seq = packet.readUInt16BE(2);
  if (lastSeq !== undefined) stats.inputGaps += (seq - lastSeq - 1) & 0xffff;
  lastSeq = seq;
  queue.push({ packet, at: performance.now() });
  if (!timer) pump();
});
rtcp.on('message', (packet) => {
  if (target) rtcp.send(packet, target.rtcpPort, target.ip);
});

process.on('message', (message: PacerCommand) => {
  switch (message.cmd) {
    case 'start':
      target = message;
      void Promise.all([rtp, rtcp].map((s) => new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve)))).then(() =>
        process.send!({ port: rtp.address().port, rtcpPort: rtcp.address().port, recvBufferBytes: rtp.getRecvBufferSize() }),
      );
      break;
    case 'report':
      process.send!({ ...stats });
      stats.maxQueueMs = 0;
      break;
    case 'close':
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
