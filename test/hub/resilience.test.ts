import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Hub } from '../../src/hub/Hub.js';
import { PROJECT_ROOT, TestClient, joinWithTransports, rtpParametersFor, startTestHub, token, waitUntil } from '../support/hub.js';

describe('resilience: worker death, vanished peers, reconnects', function () {
  this.timeout(90_000);
  const clients: TestClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  describe('worker death', () => {
    let hub: Hub;
    before(async () => {
      hub = await startTestHub({ media: { numWorkers: 2 } });
    });
    after(() => hub.close());

    it('replaces a killed worker, moves its conference to a live worker, and tells peers what to republish', async () => {
      const a = await TestClient.connect(hub.url, token('site', 'icu-1'));
      const b = await TestClient.connect(hub.url, token('specialist', 'icu-1'));
      clients.push(a, b);
      const pa = await joinWithTransports(a, 'icu-1', 'Site');
      const pb = await joinWithTransports(b, 'icu-1', 'Dr B');
      const { producerId } = await a.ok('produce', { transportId: pa.send, kind: 'video', rtpParameters: rtpParametersFor('video') });
      const { consumer } = await b.ok('consume', { transportId: pb.recv, producerId, rtpCapabilities: pb.joined.routerRtpCapabilities });

      const conference = hub.conferences.get('icu-1')!;
      const doomed = conference.worker;
      const doomedPid = doomed.worker.pid;
      const restartsBefore = hub.pool.restarts;
      process.kill(doomedPid, 'SIGKILL');

      // The owner and the viewer both learn what was lost.
      expect(await a.waitFor('producerClosed')).to.deep.equal({ producerId });
      expect(await b.waitFor('producerClosed')).to.deep.equal({ producerId });
      expect(await b.waitFor('consumerClosed')).to.deep.equal({ consumerId: consumer.id, producerId });
      const closedA = await a.waitFor('transportClosed', (d) => d.transportId === pa.send);
      expect(closedA.reason).to.equal('router closed');
      await b.waitFor('transportClosed', (d) => d.transportId === pb.recv);

      // Pool back to full strength with a new process in the same slot.
      await waitUntil(() => hub.pool.ready, 15_000, 'pool to be ready again');
      expect(hub.pool.restarts).to.equal(restartsBefore + 1);
      const replacement = hub.pool.workers.find((w) => w.slot === doomed.slot)!;
      expect(replacement.worker.pid).to.not.equal(doomedPid);
      const ready = await fetch(`${hub.url}/readyz`);
      expect(ready.status).to.equal(200);

      // Same conference, same peers, a live router: republish and consume again.
      const moved = hub.conferences.get('icu-1')!;
      expect(moved).to.equal(conference);
      expect(moved.router.closed).to.equal(false);
      expect(moved.peers).to.have.length(2);
      const send = (await a.ok('createTransport', { direction: 'send' })).transport.id;
      const recv = (await b.ok('createTransport', { direction: 'recv' })).transport.id;
      const again = await a.ok('produce', { transportId: send, kind: 'video', rtpParameters: rtpParametersFor('video') });
      expect((await b.waitFor('newProducer', (p) => p.producerId === again.producerId)).peerId).to.equal(pa.joined.peerId);
      await b.ok('consume', { transportId: recv, producerId: again.producerId, rtpCapabilities: pb.joined.routerRtpCapabilities });
    });

    it('readyz reports not ready while a worker is down', async () => {
      const victim = hub.pool.workers[0]!;
      const seen: number[] = [];
      const poll = setInterval(() => {
        void fetch(`${hub.url}/readyz`).then((r) => seen.push(r.status), () => undefined);
      }, 20);
      hub.pool.once('workerdied', () => {
        void fetch(`${hub.url}/readyz`).then((r) => seen.push(r.status));
      });
      process.kill(victim.worker.pid, 'SIGKILL');
      await once(hub.pool, 'workerreplaced');
      await waitUntil(() => hub.pool.ready, 10_000, 'ready');
      await new Promise((resolve) => setTimeout(resolve, 100));
      clearInterval(poll);
      expect(seen).to.include(503);
      expect(seen[seen.length - 1]).to.equal(200);
    });
  });

  describe('a peer whose network vanishes silently', () => {
    const frozen: ChildProcess[] = [];
    afterEach(() => {
      for (const child of frozen.splice(0)) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
    });

    async function vanishAndMeasure(hub: Hub, conferenceId: string): Promise<number> {
      const watcher = await TestClient.connect(hub.url, token('specialist', conferenceId));
      clients.push(watcher);
      await watcher.ok('join', { conferenceId, displayName: 'watcher' });
      const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist/test/fixtures/vanishingPeer.js'), hub.url, token('site', conferenceId), conferenceId], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      frozen.push(child);
      const [line] = (await once(child.stdout!, 'data')) as [Buffer];
      const { peerId, producerId } = JSON.parse(line.toString()) as { peerId: string; producerId: string };
      await watcher.waitFor('newProducer', (p) => p.producerId === producerId);
      expect((await hub.conferences.get(conferenceId)!.router.dump()).transportIds).to.have.length(1);

      const frozenAt = Date.now();
      child.kill('SIGSTOP');
      await watcher.waitFor('peerLeft', (d) => d.peerId === peerId, 40_000);
      const elapsed = Date.now() - frozenAt;
      expect(await watcher.waitFor('producerClosed')).to.deep.equal({ producerId });
      expect((await hub.conferences.get(conferenceId)!.router.dump()).transportIds).to.have.length(0);
      return elapsed;
    }

    it('is cleaned up within 30 s with the shipped defaults (socket.io ping timeout + grace)', async function () {
      this.timeout(60_000);
      const hub = await startTestHub();
      try {
        const elapsed = await vanishAndMeasure(hub, 'vanish-default');
        console.log(`      (vanished peer cleaned up after ${(elapsed / 1000).toFixed(1)} s)`);
        expect(elapsed).to.be.below(30_000);
      } finally {
        await hub.close();
      }
    });
  });

  describe('a peer whose connection drops briefly', () => {
    let hub: Hub;
    before(async () => {
      hub = await startTestHub({ signaling: { reconnectGraceMs: 5000 } });
    });
    after(() => hub.close());

    it('gets its session back (same peer, transports, producers) and restarts ICE', async () => {
      const a = await TestClient.connect(hub.url, token('site', 'blip'), { reconnection: true });
      const b = await TestClient.connect(hub.url, token('specialist', 'blip'));
      clients.push(a, b);
      const pa = await joinWithTransports(a, 'blip', 'Site');
      await joinWithTransports(b, 'blip', 'Dr B');
      const { producerId } = await a.ok('produce', { transportId: pa.send, kind: 'audio', rtpParameters: rtpParametersFor('audio') });

      const reconnected = new Promise((resolve) => a.socket.once('connect', () => resolve(undefined)));
      a.socket.io.engine.close(); // the link drops; socket.io-client reconnects by itself
      await reconnected;
      expect(a.socket.recovered).to.equal(true);

      const { iceParameters } = await a.ok('restartIce', { transportId: pa.send });
      expect(iceParameters.usernameFragment).to.be.a('string');
      const peer = hub.conferences.get('blip')!.getPeer(pa.joined.peerId)!;
      expect(peer.producers.has(producerId)).to.equal(true);
      // Events sent while it was away still arrive.
      const c = await TestClient.connect(hub.url, token('specialist', 'blip', 'Dr C'));
      clients.push(c);
      await c.ok('join', { conferenceId: 'blip', displayName: 'Dr C' });
      await a.waitFor('peerJoined', (p) => p.displayName === 'Dr C');
      expect(b.events.some((e) => e.name === 'peerLeft')).to.equal(false);
    });

    it('is cleaned up when it does not come back within the grace period', async () => {
      const a = await TestClient.connect(hub.url, token('site', 'gone'));
      const b = await TestClient.connect(hub.url, token('specialist', 'gone'));
      clients.push(a, b);
      const pa = await joinWithTransports(a, 'gone', 'Site');
      await b.ok('join', { conferenceId: 'gone', displayName: 'Dr B' });
      a.socket.io.engine.close(); // no reconnection on this client
      const left = await b.waitFor('peerLeft', (d) => d.peerId === pa.joined.peerId, 15_000);
      expect(left.peerId).to.equal(pa.joined.peerId);
    });
  });
});
