// Child process of the SFU fan-out bench: UDP sockets on 127.0.0.1 that
// receive RTP and count packets. Loss comes from RTP sequence numbers, so it
// needs no clock alignment with the sender: lost = highest - first + 1 - received.
// Runs apart from the bench process so counting does not starve the server under test.

import dgram from 'node:dgram';

interface Receiver {
  socket: dgram.Socket;
  ssrc: number | undefined;
  /** Extended (wrap-counting) sequence numbers within the current window. */
  first: number | undefined;
  highest: number;
  lastSeq: number;
  cycles: number;
  received: number;
}

export type ReceiverCommand = { cmd: 'open'; count: number } | { cmd: 'reset' } | { cmd: 'report' } | { cmd: 'close' };
export interface ReceiverReport {
  receivers: number;
  received: number;
  expected: number;
  /** Receivers that got nothing in the window. */
  silent: number;
}

const receivers: Receiver[] = [];

function onPacket(r: Receiver, packet: Buffer): void {
  if (packet.length < 12 || packet[0]! >> 6 !== 2) return;
  const payloadType = packet[1]! & 0x7f;
  if (payloadType >= 64 && payloadType <= 95) return; // RTCP, muxed on the same port
  if (payloadType === 127) return; // mediasoup bandwidth probation padding
  const ssrc = packet.readUInt32BE(8);
  r.ssrc ??= ssrc;
  if (ssrc !== r.ssrc) return;
  const seq = packet.readUInt16BE(2);
  if (r.first === undefined) {
    r.cycles = 0;
    r.lastSeq = seq;
    r.first = seq;
    r.highest = seq;
    r.received = 1;
    return;
  }
  if (seq < r.lastSeq && r.lastSeq - seq > 0x8000) r.cycles += 0x10000;
  else if (seq > r.lastSeq && seq - r.lastSeq > 0x8000) return; // late packet from before a wrap
  r.lastSeq = seq;
  const extended = r.cycles + seq;
  if (extended > r.highest) r.highest = extended;
  r.received++;
}

async function open(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    const r: Receiver = { socket, ssrc: undefined, first: undefined, highest: 0, lastSeq: 0, cycles: 0, received: 0 };
    socket.on('message', (packet) => onPacket(r, packet));
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    receivers.push(r);
    ports.push(socket.address().port);
  }
  return ports;
}

function report(): ReceiverReport {
  let received = 0;
  let expected = 0;
  let silent = 0;
  for (const r of receivers) {
    if (r.first === undefined) {
      silent++;
      continue;
    }
    received += r.received;
    expected += Math.max(r.received, r.highest - r.first + 1);
  }
  return { receivers: receivers.length, received, expected, silent };
}

process.on('message', (message: ReceiverCommand) => {
  void (async () => {
    switch (message.cmd) {
      case 'open':
        process.send!({ ports: await open(message.count) });
        break;
      case 'reset':
        for (const r of receivers) r.first = undefined;
        process.send!({ ok: true });
        break;
      case 'report':
        process.send!(report());
        break;
      case 'close':
        for (const r of receivers) r.socket.close();
        process.exit(0);
    }
  })();
});
process.on('disconnect', () => process.exit(0));
