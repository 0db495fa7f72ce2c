import { expect } from 'chai';
import type { Hub } from '../../src/hub/Hub.js';
import { Publisher, Subscriber } from '../../src/loadtest/client.js';
import { loadAudioClip, loadVideoClip, SIMULCAST_LAYERS, type AudioClip, type VideoClip } from '../../src/loadtest/media.js';
import { mintToken } from '../../src/loadtest/signaling.js';
import { TestClient, joinWithTransports, rtpParametersFor, startTestHub, testAuth, token, waitUntil } from '../support/hub.js';

// One conference over several routers (docs/SCALING.md), with real workers
// and real WebRTC clients (libdatachannel: ICE, DTLS, SRTP) from
// src/loadtest: publishers send a 180p VP8 clip and opus, subscribers
// consume every producer and count what arrives.

describe('a conference over several routers (real workers, real WebRTC clients)', function () {
  this.timeout(120_000);
  let video: VideoClip;
  /** The three simulcast layers of a camera, low to high. */
  let simulcast: VideoClip[];
  let audio: AudioClip;
  const clients: { close(): void }[] = [];

  before(function () {
    this.timeout(600_000); // the clips are encoded once per machine
    audio = loadAudioClip();
    video = loadVideoClip('vp8', SIMULCAST_LAYERS[0]);
    simulcast = SIMULCAST_LAYERS.map((layer) => loadVideoClip('vp8', layer));
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  async function publisher(hub: Hub, conferenceId: string, id: string, audioLevel?: () => number, layers: VideoClip[] = [video]): Promise<Publisher> {
    const p = new Publisher(id, layers, audio, audioLevel);
    clients.push(p);
    expect(await p.start(hub.url, mintToken(testAuth, id, conferenceId, 600), conferenceId), JSON.stringify(p.failure)).to.equal(true);
    return p;
  }
  async function subscriber(hub: Hub, conferenceId: string, id: string): Promise<Subscriber> {
    const s = new Subscriber(id, 'vp8');
    clients.push(s);
    expect(await s.start(hub.url, mintToken(testAuth, id, conferenceId, 600), conferenceId), JSON.stringify(s.failure)).to.equal(true);
    return s;
  }
  /**
   * RFC 6464 levels for a publisher's microphone: while `speaking()`, speech in
   * 240 ms bursts at -10..-30 dBov with 120 ms pauses (a constant level looks
   * like background noise to the dominant-speaker algorithm); else silence
   * (127). Counted in 20 ms packets, not wall time: a sender whose timer runs
   * late on a loaded machine and catches up in a burst still sends the pattern.
   */
  function speech(speaking: () => boolean): () => number {
    let packets = 0;
    return () => {
      const n = packets++;
      return speaking() && Math.floor(n / 6) % 3 !== 0 ? 10 + Math.floor(Math.random() * 20) : 127;
    };
  }
  /** Packets a subscriber received of one producer (RTP, retransmissions included). */
  const packetsOf = (s: Subscriber, producerId: string) => [...s.received.values()].filter((r) => r.producerId === producerId).reduce((n, r) => n + r.stream.packets, 0);
  const producerIdsOf = (hub: Hub, conferenceId: string, peerId: string) => {
    const peer = hub.conferences.get(conferenceId)!.getPeer(peerId)!;
    const ids = { video: '', audio: '' };
    for (const p of peer.producers.values()) ids[p.kind] = p.id;
    return ids;
  };

  describe('placement and pipes', () => {
    let hub: Hub;
    before(async () => {
      hub = await startTestHub({ media: { numWorkers: 2, maxConsumersPerRouter: 2 } });
    });
    after(() => hub.close());

    it('opens a router on the second worker when the first is full; media crosses by one pipe per (producer, router), closed with the producer', async () => {
      const conf = 'span';
      const pub = await publisher(hub, conf, 'pub');
      const near = await subscriber(hub, conf, 'near');
      const conference = hub.conferences.get(conf)!;
      // The first router holds the publisher and a viewer of its two producers: full at 2 consumers.
      expect(conference.homeOf(near.peerId!)).to.deep.equal(conference.homeOf(pub.peerId!));
      expect(conference.routers).to.have.length(1);

      const far = await subscriber(hub, conf, 'far');
      const farther = await subscriber(hub, conf, 'farther');
      const slots = conference.routers.map((r) => r.workerSlot).sort();
      expect(slots, 'one router on each worker').to.deep.equal([0, 1]);
      const pubSlot = conference.homeOf(pub.peerId!)!.workerSlot;
      expect(conference.homeOf(far.peerId!)!.workerSlot).to.not.equal(pubSlot);
      // Both workers are used and both routers are full: the third viewer goes to the least-loaded router, far's.
      expect(conference.homeOf(farther.peerId!)!.workerSlot).to.not.equal(pubSlot);

      const { video: videoId, audio: audioId } = producerIdsOf(hub, conf, pub.peerId!);
      for (const s of [near, far, farther]) {
        await waitUntil(() => packetsOf(s, videoId) > 60 && packetsOf(s, audioId) > 30, 20_000, `${s.id} receives video and audio`);
      }
      // Two producers piped once to the far router, whatever the number of viewers there.
      const farRouter = conference.routers.find((r) => r.workerSlot !== pubSlot)!;
      expect(farRouter.pipes).to.equal(2);
      expect(conference.pipes).to.equal(2);

      pub.close();
      await waitUntil(() => conference.pipes === 0, 10_000, 'the pipes to close with their producers');
    });

    it('shows routers per worker and the pipe count in /api/ops and /metrics', async () => {
      const conf = 'ops-span';
      await publisher(hub, conf, 'ops-pub');
      await subscriber(hub, conf, 'ops-near');
      await subscriber(hub, conf, 'ops-far');
      const conference = hub.conferences.get(conf)!;
      await waitUntil(() => conference.pipes === 2, 10_000, 'two pipes');
      const engineer = token('engineer', '*');
      const ops = (await (await fetch(`${hub.url}/api/ops`, { headers: { authorization: `Bearer ${engineer}` } })).json()) as {
        conferences: { conferenceId: string; pipes: number; routers: { workerSlot: number; peers: number; pipes: number }[] }[];
      };
      const row = ops.conferences.find((c) => c.conferenceId === conf)!;
      expect(row.pipes).to.equal(2);
      expect(row.routers.map((r) => r.workerSlot).sort()).to.deep.equal([0, 1]);
      expect(row.routers.reduce((n, r) => n + r.peers, 0)).to.equal(3);
      await waitUntil(
        async () => {
          const text = await (await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${engineer}` } })).text();
          return text.includes(`hoichan_conference_pipes{conference="${conf}"} 2`) && text.includes(`hoichan_conference_routers{conference="${conf}",worker="1"} 1`);
        },
        15_000,
        'the conference gauges on /metrics',
      );
    });
  });

  describe('a worker that dies', () => {
    let hub: Hub;
    before(async () => {
      hub = await startTestHub({ media: { numWorkers: 2, maxConsumersPerRouter: 2 } });
    });
    after(() => hub.close());

    it("takes only its router: the other router's viewer keeps receiving, the lost peers republish and pipes are made again", async () => {
      const conf = 'half';
      const pubA = await publisher(hub, conf, 'pub-a');
      const subA = await subscriber(hub, conf, 'sub-a');
      const pubB = await publisher(hub, conf, 'pub-b');
      const subB = await subscriber(hub, conf, 'sub-b');
      const conference = hub.conferences.get(conf)!;
      const slotA = conference.homeOf(pubA.peerId!)!.workerSlot;
      expect(conference.homeOf(subA.peerId!)!.workerSlot).to.equal(slotA);
      expect(conference.homeOf(pubB.peerId!)!.workerSlot).to.not.equal(slotA);
      expect(conference.homeOf(subB.peerId!)!.workerSlot).to.not.equal(slotA);
      // A signaling-only peer on the doomed router, to follow the recovery events.
      const site = await TestClient.connect(hub.url, token('site', conf));
      clients.push(site);
      const joined = await joinWithTransports(site, conf, 'Site');
      const siteSlot = conference.homeOf(joined.joined.peerId)!.workerSlot;

      const b = producerIdsOf(hub, conf, pubB.peerId!);
      const a = producerIdsOf(hub, conf, pubA.peerId!);
      await waitUntil(() => packetsOf(subB, a.video) > 30 && packetsOf(subB, b.video) > 30, 20_000, 'sub-b receives both publishers');

      const doomed = hub.pool.workers.find((w) => w.slot === slotA)!;
      process.kill(doomed.worker.pid, 'SIGKILL');
      // The lost publisher's producers close for everyone.
      await waitUntil(() => conference.routers.every((r) => r.workerSlot !== slotA) && conference.homeOf(pubA.peerId!) === undefined, 10_000, 'the lost router gone');
      expect(conference.closed).to.equal(false);
      if (siteSlot === slotA) expect((await site.waitFor('transportClosed', (d) => d.transportId === joined.send)).reason).to.equal('router closed');
      await site.waitFor('producerClosed', (d) => d.producerId === a.video);

      // The other router's viewer keeps receiving the other router's publisher, with no gap the NACKs could not fill.
      const before = packetsOf(subB, b.video);
      await waitUntil(() => packetsOf(subB, b.video) > before + 60, 10_000, 'sub-b still receiving pub-b');
      const totals = [...subB.received.values()].find((r) => r.producerId === b.video)!.stream.totals();
      // Generous: the machine is shared; what matters is that the stream did not stop.
      expect(totals.lost / totals.expected, 'share of pub-b packets sub-b never got').to.be.below(0.02);
      expect(subB.failure).to.equal(undefined);

      // A lost peer republishes: it is placed on a live router, and a viewer on another router gets it through a new pipe.
      await waitUntil(() => hub.pool.ready, 15_000, 'the pool to replace the worker');
      const pubC = await publisher(hub, conf, 'pub-c');
      const c = producerIdsOf(hub, conf, pubC.peerId!);
      await waitUntil(() => packetsOf(subB, c.video) > 30, 20_000, 'sub-b receives the new publisher');
      const send = (await site.ok('createTransport', { direction: 'send' })).transport.id;
      const again = await site.ok('produce', { transportId: send, kind: 'video', rtpParameters: rtpParametersFor('video') });
      expect(again.producerId).to.be.a('string');
      expect(conference.homeOf(joined.joined.peerId), 'the site placed on a live router').to.not.equal(undefined);
      if (conference.homeOf(pubC.peerId!)!.workerSlot !== conference.homeOf(subB.peerId!)!.workerSlot) expect(conference.pipes).to.be.greaterThan(0);
    });
  });

  describe('an idle router', () => {
    let hub: Hub;
    before(async () => {
      // A grace long enough for a signaling-only rejoin on a loaded machine, short enough for the test.
      hub = await startTestHub({ media: { numWorkers: 2, maxConsumersPerRouter: 2, idleRouterCloseMs: 4000 } });
    });
    after(() => hub.close());

    /** producerClosed events the conference sent its peers, by producer id. */
    function producerClosedEvents(conferenceId: string): string[] {
      const closed: string[] = [];
      hub.conferences.get(conferenceId)!.on('broadcast', (e) => {
        if (e.event === 'producerClosed') closed.push(e.data.producerId);
      });
      return closed;
    }
    const metricsText = async () => (await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${token('engineer', '*')}` } })).text();

    it('closes the second router after the grace once its last peer left: its pipes close, nobody hears producerClosed, and it opens again when the conference grows', async () => {
      const conf = 'shrink';
      const pub = await publisher(hub, conf, 'shrink-pub');
      const near = await subscriber(hub, conf, 'shrink-near');
      const conference = hub.conferences.get(conf)!;
      const closedProducers = producerClosedEvents(conf);
      const far = await subscriber(hub, conf, 'shrink-far');
      const farther = await subscriber(hub, conf, 'shrink-farther');
      const pubSlot = conference.homeOf(pub.peerId!)!.workerSlot;
      const farHome = conference.homeOf(far.peerId!)!;
      expect(farHome.workerSlot, 'far on the second router').to.not.equal(pubSlot);
      expect(conference.homeOf(farther.peerId!)).to.deep.equal(farHome);
      const ids = producerIdsOf(hub, conf, pub.peerId!);
      for (const s of [near, far, farther]) await waitUntil(() => packetsOf(s, ids.video) > 30, 20_000, `${s.id} receives the publisher`);
      await waitUntil(() => conference.pipes === 2, 10_000, 'two pipes into the second router');
      const farWorker = hub.pool.workers.find((w) => w.slot === farHome.workerSlot)!;
      const routersOnFarWorker = farWorker.counts.routers;
      const nearPeer = conference.getPeer(near.peerId!)!;
      const nearConsumers = [...nearPeer.consumers.keys()].sort();

      // One of two leaves: the router keeps its other peer.
      far.close();
      await waitUntil(() => conference.getPeer(far.peerId!) === undefined, 10_000, 'far to leave');
      expect(conference.routers).to.have.length(2);
      // The last leaves, and a peer joins within the grace: it is placed on that router again, not on a new one.
      farther.close();
      await waitUntil(() => conference.getPeer(farther.peerId!) === undefined, 10_000, 'farther to leave');
      const rejoin = await TestClient.connect(hub.url, token('site', conf, 'shrink-rejoin'));
      clients.push(rejoin);
      const rejoined = (await rejoin.ok('join', { conferenceId: conf })) as { peerId: string };
      expect(conference.homeOf(rejoined.peerId), 'the rejoining peer on the idle router').to.deep.equal(farHome);
      rejoin.close();
      await waitUntil(() => conference.getPeer(rejoined.peerId) === undefined, 10_000, 'the rejoined peer to leave');

      await waitUntil(() => conference.routers.length === 1, 20_000, 'the idle router to close');
      expect(conference.routers[0]!.workerSlot).to.equal(pubSlot);
      expect(farWorker.counts.routers, 'the router closed on its worker').to.equal(routersOnFarWorker - 1);
      // Its pipes are gone at both ends: the pipe consumers on the publisher's router closed with them.
      expect(conference.pipes).to.equal(0);
      await waitUntil(() => conference.routers[0]!.consumers === 2, 10_000, "only near's consumers left on the first router");
      // No producer closed, so nobody was told one did; near's consumers are the same and still receive.
      expect(closedProducers).to.deep.equal([]);
      expect(producerIdsOf(hub, conf, pub.peerId!)).to.deep.equal(ids);
      expect([...nearPeer.consumers.keys()].sort()).to.deep.equal(nearConsumers);
      const before = packetsOf(near, ids.video);
      await waitUntil(() => packetsOf(near, ids.video) > before + 60, 10_000, 'near still receiving');
      await waitUntil(
        async () => {
          const text = await metricsText();
          return text.includes(`hoichan_conference_pipes{conference="${conf}"} 0`) && !text.includes(`hoichan_conference_routers{conference="${conf}",worker="${farHome.workerSlot}"}`);
        },
        15_000,
        'the gauges on /metrics to drop the router and its pipes',
      );

      // It grows again: a router opens on the spare worker (a new one), and the publisher is piped to it.
      const again = await subscriber(hub, conf, 'shrink-again');
      const againHome = conference.homeOf(again.peerId!)!;
      expect(againHome.workerSlot).to.equal(farHome.workerSlot);
      expect(againHome.routerId).to.not.equal(farHome.routerId);
      await waitUntil(() => packetsOf(again, ids.video) > 30, 20_000, 'the newcomer receives the publisher');
      expect(conference.pipes).to.equal(2);
      expect(closedProducers).to.deep.equal([]);
    });

    it('moves the active-speaker observer when the oldest router is the idle one, and the conference goes on', async () => {
      const conf = 'shrink-oldest';
      let loud = 'b';
      const level = (who: string) => speech(() => loud === who);
      const pubA = await publisher(hub, conf, 'oldest-pub-a', level('a'));
      const subA = await subscriber(hub, conf, 'oldest-sub-a');
      const conference = hub.conferences.get(conf)!;
      const closedProducers = producerClosedEvents(conf);
      const speakers: string[] = [];
      conference.on('broadcast', (e) => {
        if (e.event === 'activeSpeaker') speakers.push(e.data.peerId);
      });
      const pubB = await publisher(hub, conf, 'oldest-pub-b', level('b'));
      const subB = await subscriber(hub, conf, 'oldest-sub-b');
      const oldest = conference.routers[0]!;
      expect(conference.homeOf(pubA.peerId!)!.routerId).to.equal(oldest.routerId);
      expect(conference.homeOf(subA.peerId!)!.routerId).to.equal(oldest.routerId);
      const second = conference.homeOf(pubB.peerId!)!;
      expect(second.routerId, 'pub-b on the second router').to.not.equal(oldest.routerId);
      expect(conference.homeOf(subB.peerId!), 'sub-b on the second router').to.deep.equal(second);
      const a = producerIdsOf(hub, conf, pubA.peerId!);
      const b = producerIdsOf(hub, conf, pubB.peerId!);
      await waitUntil(() => packetsOf(subB, b.video) > 30 && packetsOf(subB, a.video) > 30, 20_000, 'sub-b receives both');
      await waitUntil(() => speakers.at(-1) === pubB.peerId, 30_000, 'pub-b to be the dominant speaker');
      // Quiet from here: the observer made on the second router starts with no one speaking, so the
      // first to speak there is named without a long history of pub-b's to outweigh.
      loud = '';

      // Everyone on the oldest router (where the observer is) leaves.
      pubA.close();
      subA.close();
      await waitUntil(() => conference.routers.length === 1, 20_000, 'the oldest router to close');
      expect(conference.routers[0]!.routerId).to.equal(second.routerId);
      expect(conference.router.id, 'the second router is the primary now').to.equal(second.routerId);
      expect(conference.pipes).to.equal(0);
      // Only pub-a's producers closed, once each; pub-b's were never said to.
      expect([...closedProducers].sort()).to.deep.equal([a.video, a.audio].sort());
      const before = packetsOf(subB, b.video);
      await waitUntil(() => packetsOf(subB, b.video) > before + 60, 10_000, 'sub-b still receiving pub-b');

      // It grows: a newcomer past the cap opens a router on the freed worker; its microphone is piped
      // to the observer, now on the second router, which names it when it speaks.
      loud = 'c';
      const pubC = await publisher(hub, conf, 'oldest-pub-c', level('c'));
      const third = conference.homeOf(pubC.peerId!)!;
      expect(third.workerSlot).to.equal(oldest.workerSlot);
      expect(third.routerId).to.not.equal(oldest.routerId);
      // mediasoup's ActiveSpeakerObserver switches slowly (three switches took 39 s on an idle machine, last-N below):
      // the same 45 s bound.
      await waitUntil(() => speakers.at(-1) === pubC.peerId, 45_000, 'pub-c to be named the dominant speaker');
      const c = producerIdsOf(hub, conf, pubC.peerId!);
      await waitUntil(() => packetsOf(subB, c.video) > 30, 20_000, 'sub-b receives pub-c through a pipe');
      expect(closedProducers).to.have.length(2);
    });
  });

  describe('last-N', () => {
    let hub: Hub;
    before(async () => {
      hub = await startTestHub({ media: { numWorkers: 2 } });
    });
    after(() => hub.close());

    it('forwards only the stage and the n most recent dominant speakers, and follows the speaker', async function () {
      this.timeout(240_000);
      const conf = 'lastn';
      let loud = 0;
      // Joined first: it hears every activeSpeaker.
      const watcher = await TestClient.connect(hub.url, token('specialist', conf));
      clients.push(watcher);
      await watcher.ok('join', { conferenceId: conf });
      const pubs: Publisher[] = [];
      for (let i = 0; i < 8; i++) {
        const index = i;
        // The loud one speaks; the others are silent.
        pubs.push(await publisher(hub, conf, `speaker-${i}`, speech(() => index === loud)));
      }
      const viewer = await subscriber(hub, conf, 'viewer');
      const cameras = pubs.map((p) => producerIdsOf(hub, conf, p.peerId!).video);
      const pinned = cameras[7]!;

      const receiving = async (expected: string[]) => {
        const want = new Set(expected);
        // Settled: the hub forwards exactly these (its consumers of the others paused).
        const peer = hub.conferences.get(conf)!.getPeer(viewer.peerId!)!;
        await waitUntil(
          () => [...peer.consumers.values()].filter((c) => c.kind === 'video').every((c) => c.paused === !want.has(c.producerId)),
          10_000,
          'the hub to pause and resume the viewer consumers',
        ).catch((err: Error) => {
          const state = [...peer.consumers.values()].filter((c) => c.kind === 'video').map((c) => `${cameras.indexOf(c.producerId)}:${c.paused ? 'paused' : 'on'}`);
          throw new Error(`${err.message}: want ${expected.map((id) => cameras.indexOf(id)).join(',')}, hub has ${state.join(' ')}`);
        });
        await new Promise((resolve) => setTimeout(resolve, 300)); // packets already on the loopback wire arrive
        const before = new Map(cameras.map((id) => [id, packetsOf(viewer, id)]));
        await waitUntil(() => expected.every((id) => packetsOf(viewer, id) > before.get(id)! + 30), 15_000, 'the forwarded cameras to arrive');
        const got = cameras.filter((id) => packetsOf(viewer, id) > before.get(id)!);
        expect(new Set(got)).to.deep.equal(want);
      };

      const reply = await viewer.setVideoPreferences([pinned], 2);
      expect(reply.stage).to.deep.equal([pinned]);
      expect(reply.thumbnails).to.have.length(2);

      const speakerEvents = () => watcher.events.filter((e) => e.name === 'activeSpeaker').map((e) => pubs.findIndex((p) => p.peerId === e.data.peerId));
      for (const speaker of [0, 3, 5]) {
        // The latest event, not any: the observer may have named this one once while they joined.
        loud = speaker;
        // mediasoup's dominant-speaker detection weighs each speaker's recent history: on a busy CI box a
        // switch took up to ~20 s (three switches, 39 s in all, on an idle one), so the bound is generous.
        await waitUntil(() => speakerEvents().at(-1) === speaker, 45_000, `speaker-${speaker} to become the dominant speaker`).catch(() => {
          throw new Error(`speaker-${speaker} never became the dominant speaker (events: ${JSON.stringify(speakerEvents())})`);
        });
        await new Promise((resolve) => setTimeout(resolve, 100));
        // Thumbnails: the two most recent dominant speakers but the pinned one (the observer may have
        // named a silent one while they joined), then the earliest other cameras.
        const recent: number[] = [];
        for (const e of watcher.events.filter((e) => e.name === 'activeSpeaker').reverse()) {
          const index = pubs.findIndex((p) => p.peerId === e.data.peerId);
          if (index >= 0 && index !== 7 && !recent.includes(index)) recent.push(index);
        }
        expect(recent[0]).to.equal(speaker);
        for (let i = 0; recent.length < 2; i++) if (i !== 7 && !recent.includes(i)) recent.push(i);
        await receiving([pinned, ...recent.slice(0, 2).map((i) => cameras[i]!)]);
      }

      // Thumbnails 0 and nothing pinned: no video at all.
      await viewer.setVideoPreferences([], 0);
      const peer = hub.conferences.get(conf)!.getPeer(viewer.peerId!)!;
      await waitUntil(() => [...peer.consumers.values()].filter((c) => c.kind === 'video').every((c) => c.paused), 10_000, 'every video consumer paused on the hub');
      // Audio is not last-N's: still forwarded.
      expect([...peer.consumers.values()].filter((c) => c.kind === 'audio').every((c) => !c.paused)).to.equal(true);
    });

    it('gives thumbnails the lowest simulcast layer and the stage the highest, and moves a camera pinned to the stage up', async () => {
      const conf = 'lastn-layers';
      const pubs: Publisher[] = [];
      for (let i = 0; i < 3; i++) pubs.push(await publisher(hub, conf, `layered-${i}`, undefined, simulcast));
      // No preferences yet: the defaults (no speaker, so three thumbnails) at the layer the viewer would ask, the highest.
      const viewer = await subscriber(hub, conf, 'layers-viewer');
      const cameras = pubs.map((p) => producerIdsOf(hub, conf, p.peerId!).video);
      const peer = hub.conferences.get(conf)!.getPeer(viewer.peerId!)!;
      const consumerOf = (producerId: string) => [...peer.consumers.values()].find((c) => c.producerId === producerId)!;
      for (const id of cameras) expect(consumerOf(id).type).to.equal('simulcast');
      const top = SIMULCAST_LAYERS.length - 1;
      const state = () => cameras.map((id, i) => `${i}:${consumerOf(id).preferredLayers?.spatialLayer}/${consumerOf(id).currentLayers?.spatialLayer}`).join(' ');
      await waitUntil(() => cameras.every((id) => consumerOf(id).currentLayers?.spatialLayer === top), 20_000, 'every camera at its top layer before the viewer says what it shows').catch(
        (err: Error) => {
          throw new Error(`${err.message}: preferred/current ${state()}`);
        },
      );

      /** The stage camera at its top layer and the thumbnails at layer 0: on the hub, and in the bytes the viewer gets. */
      const expectLayers = async (stage: number, thumbnails: number[]) => {
        const want = new Map<number, number>([[stage, top], ...thumbnails.map((t): [number, number] => [t, 0])]);
        await waitUntil(
          () => [...want].every(([i, layer]) => consumerOf(cameras[i]!).preferredLayers?.spatialLayer === layer && consumerOf(cameras[i]!).currentLayers?.spatialLayer === layer),
          20_000,
          'the layers last-N asked for',
        ).catch((err: Error) => {
          throw new Error(`${err.message}: want stage ${stage}, thumbnails ${thumbnails.join(',')}; preferred/current ${state()}`);
        });
        // When mediasoup shares a bandwidth estimate out, the stage goes first.
        await waitUntil(() => [...want].every(([i, layer]) => consumerOf(cameras[i]!).priority === (layer === top ? 2 : 1)), 10_000, 'the stage consumer at priority 2, thumbnails at 1');
        // The worker forwards the publisher's stream of that layer (its SSRC), not another.
        for (const [i, layer] of want) {
          const inbound = (await consumerOf(cameras[i]!).getStats()).find((s) => s.type === 'inbound-rtp');
          expect(inbound?.ssrc, `camera ${i} forwarded from layer ${layer}`).to.equal(pubs[i]!.streams.video[layer]!.ssrc);
        }
        // Over the same few seconds: a thumbnail carries less than its sender's middle layer, the stage more.
        const received = (i: number) => viewer.received.get(consumerOf(cameras[i]!).id)!.stream.bytes;
        const middle = (i: number) => pubs[i]!.streams.video[1]!.bytes;
        const start = [...want.keys()].map((i) => ({ i, received: received(i), middle: middle(i) }));
        await new Promise((resolve) => setTimeout(resolve, 3000));
        for (const { i, received: r0, middle: m0 } of start) {
          const got = received(i) - r0;
          const sentMiddle = middle(i) - m0;
          if (i === stage) expect(got, `stage camera ${i}: bytes received vs its middle layer's`).to.be.greaterThan(sentMiddle);
          else {
            expect(got, `thumbnail ${i} receives`).to.be.greaterThan(0);
            expect(got, `thumbnail ${i}: bytes received vs its middle layer's`).to.be.lessThan(sentMiddle);
          }
        }
      };

      const reply = await viewer.setVideoPreferences([cameras[0]!], 2);
      expect(reply.stage).to.deep.equal([cameras[0]]);
      expect([...reply.thumbnails].sort()).to.deep.equal([cameras[1], cameras[2]].sort());
      await expectLayers(0, [1, 2]);
      // A specialist pins camera 1: it moves up to the stage's layer, camera 0 down to a thumbnail's.
      await viewer.setVideoPreferences([cameras[1]!], 2);
      await expectLayers(1, [0, 2]);
    });

    it('bounds the request and answers bad ones with clear errors', async () => {
      const conf = 'lastn-bounds';
      const client = await TestClient.connect(hub.url, token('specialist', conf));
      clients.push(client);
      await client.ok('join', { conferenceId: conf });
      const tooMany = await client.request('setVideoPreferences', { onStage: Array.from({ length: 17 }, (_, i) => `p${i}`), thumbnails: 2 });
      expect(!tooMany.ok && tooMany.error.code).to.equal('bad_request');
      expect(!tooMany.ok && tooMany.error.message).to.match(/^onStage/);
      const big = await client.request('setVideoPreferences', { onStage: [], thumbnails: 26 });
      expect(!big.ok && big.error.message).to.match(/^thumbnails/);
      // Unknown producers (another conference's, or closed) are not shown and reveal nothing.
      expect(await client.ok('setVideoPreferences', { onStage: ['no-such-producer'], thumbnails: 25 })).to.deep.equal({ ok: true, stage: [], thumbnails: [] });
    });
  });
});
