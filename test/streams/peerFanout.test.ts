// PeerFanout's per-peer rules, driven through its own seams: the backlog each
// peer's socket has (the hub reads engine.io's and the TCP socket's queues;
// here the test sets it) and the broadcast that sends one payload to a group.
// The conference is a real Peer list behind the two ConferenceManager calls
// PeerFanout makes. End to end, with sockets: device-limits.test.ts (a stalled
// viewer) and recovery.test.ts (a recovered one).

import { expect } from 'chai';
import type { DeviceReadingsEvent, PeerEventName, Reading } from '../../src/contract/index.js';
import type { ConferenceManager } from '../../src/media/ConferenceManager.js';
import { Peer } from '../../src/media/Peer.js';
import { PeerFanout } from '../../src/streams/PeerFanout.js';

const CONF = 'conf-fanout';
const BOUND = 100_000;

type Sent = { peers: string[]; event: PeerEventName; data: any };

function setup() {
  const sent: Sent[] = [];
  const backlog = new Map<string, number>();
  const peers: Peer[] = [];
  const add = (id: string) => {
    const peer = new Peer(id, `user-${id}`, id, 'specialist', (event, data) => sent.push({ peers: [id], event, data }));
    peers.push(peer);
    return peer;
  };
  const conference = { id: CONF, closed: false, peers, getPeer: (id: string) => peers.find((p) => p.id === id) };
  const conferences = { get: (id: string) => (id === CONF ? conference : undefined) } as unknown as ConferenceManager;
  const fanout = new PeerFanout(conferences, {
    maxPeerBacklogBytes: BOUND,
    backlog: (id) => backlog.get(id) ?? 0,
    broadcast: (ids, event, data) => sent.push({ peers: [...ids], event, data }),
    replayPollMs: 5,
  });
  return { fanout, sent, backlog, add, peers };
}

function readings(deviceId: string, from: number): DeviceReadingsEvent {
  const t = Date.now();
  const rs: Reading[] = [
    { deviceId, seq: from, kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t, rt: t, sampleRate: 250, samples: [0.1, 0.2] },
    { deviceId, seq: from + 1, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t, rt: t, value: 72 },
    { deviceId, seq: from + 2, kind: 'alarm', code: 'MDC_EVT_ECG_TACHY', unit: '', t, rt: t, priority: 'high', text: 'TACHY', active: true },
  ];
  return { deviceId, readings: rs };
}

const kinds = (data: DeviceReadingsEvent) => data.readings.map((r) => r.kind);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('PeerFanout', () => {
  it('sends one payload to every peer that gets it as is; behind peers get it without waveforms, stalled ones with alarms only', () => {
    const { fanout, sent, backlog, add } = setup();
    for (const id of ['a', 'b', 'c', 'd']) add(id);
    backlog.set('c', BOUND + 1);
    backlog.set('d', 2 * BOUND + 1);
    expect(fanout.readings(CONF, readings('ecg', 1))).to.equal(4);
    expect(sent.map((s) => s.peers)).to.deep.equal([['a', 'b'], ['c'], ['d']]);
    expect(kinds(sent[0]!.data)).to.deep.equal(['waveform', 'numeric', 'alarm']);
    expect(kinds(sent[1]!.data)).to.deep.equal(['numeric', 'alarm']);
    expect(sent[1]!.data.gaps).to.deep.equal([{ from: 1, to: 1, reason: 'slow-reader' }]);
    expect(kinds(sent[2]!.data)).to.deep.equal(['alarm']);
    expect(sent[2]!.data.gaps).to.deep.equal([{ from: 1, to: 2, reason: 'slow-reader' }]);

    // Alarm notices and status reach every peer, however far behind.
    sent.length = 0;
    fanout.alarm(CONF, 'ecg', readings('ecg', 1).readings[2]!);
    expect(sent.map((s) => [s.event, s.peers])).to.deep.equal([['deviceAlarm', ['a', 'b', 'c', 'd']]]);
  });

  it('waits with each device of a join replay until the peer\u2019s queue is under the bound, holding live readings behind it', async () => {
    const { fanout, sent, backlog, add } = setup();
    const peer = add('late');
    backlog.set('late', 5 * BOUND);
    const history = (deviceId: string): Reading[] => readings(deviceId, 1).readings;
    fanout.join(CONF, 'late', peer.notify.bind(peer), [{ deviceId: 'ecg', upTo: 3 }, { deviceId: 'spo2', upTo: 3 }], async (d) => history(d.deviceId), (err) => {
      throw err;
    });
    await sleep(50);
    expect(sent, 'nothing while its queue is over the bound').to.deep.equal([]);
    // Live readings meanwhile wait behind the replay (gap-only ones merge).
    fanout.readings(CONF, readings('ecg', 4));
    backlog.set('late', BOUND);
    await sleep(50);
    expect(sent.map((s) => [s.data.deviceId, s.data.replay === true])).to.deep.equal([
      ['ecg', true],
      ['spo2', true],
      ['ecg', false],
    ]);
    expect(sent[2]!.data.readings.map((r: Reading) => r.seq)).to.deep.equal([4, 5, 6]);
  });

  it('sends nothing to a peer whose socket is away; a later join (its recovery) replays and resumes it', async () => {
    const { fanout, sent, add } = setup();
    const peer = add('blip');
    add('other');
    fanout.away(CONF, 'blip');
    fanout.readings(CONF, readings('ecg', 1));
    fanout.status({ deviceId: 'ecg', conferenceId: CONF } as never);
    expect(sent.map((s) => s.peers)).to.deep.equal([['other'], ['other']]);
    sent.length = 0;
    fanout.join(CONF, 'blip', peer.notify.bind(peer), [{ deviceId: 'ecg', upTo: 3, resumeAfter: 0 }], async () => readings('ecg', 1).readings, (err) => {
      throw err;
    });
    await sleep(20);
    fanout.readings(CONF, readings('ecg', 4));
    expect(sent.map((s) => [s.peers, s.data.readings.map((r: Reading) => r.seq), s.data.replay === true])).to.deep.equal([
      [['blip'], [1, 2, 3], true],
      [['blip', 'other'], [4, 5, 6], false],
    ]);
  });
});
