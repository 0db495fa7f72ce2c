// Bare mediasoup-client page for the join-latency bench (bundled by esbuild at
// bench time), speaking the subset of Hoichan's signaling that server.ts
// answers ({ ok, ... } acks). Same steps as Hoichan's page: join, load the device, recv
// transport, consume (paused, then resume) every producer, then send transport,
// camera + microphone, produce. Exposes window.hoichan.{joinRequestedAt, firstRemoteFrameAt}.
import { Device } from 'mediasoup-client';
import { io } from 'socket.io-client';

const timing = { joinRequestedAt: 0, joinedAt: 0, firstRemoteFrameAt: 0, error: '' };
window.hoichan = timing;

const socket = io({ transports: ['websocket'] });
const request = (name, payload = {}) =>
  new Promise((resolve, reject) =>
    socket.emit(name, payload, (reply) => (reply && reply.ok ? resolve(reply) : reject(new Error(reply?.error?.message ?? `${name} failed`)))),
  );

function watchFirstFrame(video) {
  const mark = () => {
    if (!timing.firstRemoteFrameAt) timing.firstRemoteFrameAt = performance.now();
  };
  video.requestVideoFrameCallback(mark);
}

async function createTransport(device, direction) {
  const { transport: options } = await request('createTransport', { direction });
  const transport = direction === 'send' ? device.createSendTransport(options) : device.createRecvTransport(options);
  transport.on('connect', ({ dtlsParameters }, callback, errback) =>
    request('connectTransport', { transportId: transport.id, dtlsParameters }).then(() => callback(), errback),
  );
  if (direction === 'send') {
    transport.on('produce', ({ kind, rtpParameters }, callback, errback) =>
      request('produce', { transportId: transport.id, kind, rtpParameters }).then(({ producerId }) => callback({ id: producerId }), errback),
    );
  }
  return transport;
}

async function consume(device, recvTransport, producerId) {
  const { consumer: options } = await request('consume', { transportId: recvTransport.id, producerId, rtpCapabilities: device.rtpCapabilities });
  const consumer = await recvTransport.consume(options);
  await request('resumeConsumer', { consumerId: consumer.id });
  if (consumer.kind === 'video') {
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.srcObject = new MediaStream([consumer.track]);
    document.body.appendChild(video);
    watchFirstFrame(video);
  }
}

async function main() {
  await new Promise((resolve) => socket.once('connect', resolve));
  const device = new Device();
  timing.joinRequestedAt = performance.now();
  const { routerRtpCapabilities, producers } = await request('join', { conferenceId: 'join-bench' });
  timing.joinedAt = performance.now();
  await device.load({ routerRtpCapabilities });
  const recvTransport = await createTransport(device, 'recv');
  for (const { producerId } of producers) await consume(device, recvTransport, producerId);
  socket.on('newProducer', ({ producerId }) => void consume(device, recvTransport, producerId));
  const sendTransport = await createTransport(device, 'send');
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  for (const track of stream.getTracks()) await sendTransport.produce({ track });
}

main().catch((err) => (timing.error = String(err)));
