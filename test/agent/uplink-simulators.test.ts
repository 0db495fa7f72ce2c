// The four device simulators against the real drivers over real transports
// (HL7 over TCP, Cyton and CMS50 over socat ptys, OPC UA server), through the
// site agent and its journal, the uplink and the hub, to a socket.io viewer:
// every seq arrives once and in order, and the values are what the simulators sent.

import type { Reading } from '../../src/devices/reading.js';
import type { SentValues } from '../../src/sim/simulator.js';
import { DemoSite, type DemoSimulatorKind } from '../../src/demo/demoSite.js';
import type { Hub } from '../../src/hub/Hub.js';
import { startTestHub } from '../support/hub.js';
import { Viewer, expect, siteToken, sleep, waitFor } from './uplink-helpers.js';

const DEVICES = ['bed1-mindray', 'bed1-cyton-ecg', 'bed1-cms50', 'bed2-opcua-monitor'];

describe('uplink: simulators -> drivers -> agent -> hub -> viewer', function () {
  this.timeout(90_000);
  let hub: Hub;
  let site: DemoSite | undefined;
  let viewer: Viewer | undefined;

  before(async () => {
    hub = await startTestHub();
  });
  after(async () => {
    viewer?.close();
    await site?.stop();
    await hub.close();
  });

  it('every seq once and in order, values equal to what each simulator sent', async () => {
    viewer = await Viewer.join(hub.url, 'conf-sim');
    const sent = new Map<DemoSimulatorKind, SentValues[]>();
    site = await DemoSite.start(
      { hubUrl: hub.url, token: siteToken('site-sim', 'conf-sim'), siteId: 'site-sim', conferenceId: 'conf-sim', hl7IntervalMs: 200, opcuaNumericIntervalMs: 200, seed: 11 },
      (kind, sim) => {
        const list: SentValues[] = [];
        sent.set(kind, list);
        sim.on('sent', (v) => list.push(v));
      },
    );
    const v = viewer;
    await waitFor(() => DEVICES.every((d) => v.count(d) >= 20), 30_000, () => `readings from all devices (${DEVICES.map((d) => `${d}: ${v.count(d)}`).join(', ')})`);
    await sleep(2000);
    await site.stopSimulators();
    await sleep(500);
    const journal = site.agent.journal;
    await waitFor(() => DEVICES.every((d) => v.lastSeq(d) === journal.lastSeq(d)), 15_000, 'the viewer to have every journaled seq');
    expect(v.problems).to.deep.equal([]);
    for (const d of DEVICES) {
      const seqs = v.readings.get(d)!.map((r) => r.seq);
      expect(seqs, d).to.deep.equal(Array.from({ length: journal.lastSeq(d) }, (_, i) => i + 1));
    }
    const got = (d: string) => v.readings.get(d)!;

    // HL7: every message the simulator had ACKed (so journaled) is at the viewer, same device time and values.
    const hl7 = got('bed1-mindray');
    const byKey = new Map(hl7.map((r) => [`${r.kind}|${r.code}|${r.t}`, r]));
    const hl7Sent = sent.get('mindray-hl7')!;
    expect(hl7Sent.length).to.be.greaterThan(5);
    for (const s of hl7Sent) {
      for (const [code, value] of Object.entries(s.numerics ?? {})) expect(byKey.get(`numeric|${code}|${s.t}`), `${code}@${s.t}`).to.include({ value });
      for (const [code, samples] of Object.entries(s.waveformSamples ?? {})) expect((byKey.get(`waveform|${code}|${s.t}`) as any)?.samples, `${code}@${s.t}`).to.deep.equal(samples);
    }

    // Cyton and CMS50: the sample stream per channel equals what was written to the pty.
    const samplesOf = (readings: Reading[], code: string) => readings.filter((r) => r.kind === 'waveform' && r.code === code).flatMap((r: any) => r.samples);
    // JSON has no -0: a sample the simulator computed as -0 arrives as 0 (the same value).
    const sentSamples = (kind: DemoSimulatorKind, code: string) => sent.get(kind)!.flatMap((s) => s.waveformSamples?.[code] ?? []).map((x) => (x === 0 ? 0 : x));
    for (const code of ['MDC_ECG_ELEC_POTL_I', 'MDC_ECG_ELEC_POTL_II', 'MDC_ECG_ELEC_POTL_V1']) {
      const viewed = samplesOf(got('bed1-cyton-ecg'), code);
      expect(viewed.length, code).to.be.greaterThan(250);
      expect(viewed, code).to.deep.equal(sentSamples('cyton', code).slice(0, viewed.length));
    }
    const pleth = samplesOf(got('bed1-cms50'), 'MDC_PULS_OXIM_PLETH');
    expect(pleth.length).to.be.greaterThan(60);
    expect(pleth).to.deep.equal(sentSamples('cms50', 'MDC_PULS_OXIM_PLETH').slice(0, pleth.length));

    // OPC UA: values keyed by source time (the first ones may predate our listener).
    const opcSent = new Map<string, unknown>();
    for (const s of sent.get('opcua')!) {
      for (const [code, value] of Object.entries(s.numerics ?? {})) opcSent.set(`numeric|${code}|${s.t}`, value);
      for (const [code, samples] of Object.entries(s.waveformSamples ?? {})) opcSent.set(`waveform|${code}|${s.t}`, samples);
    }
    let matched = 0;
    for (const r of got('bed2-opcua-monitor')) {
      const key = `${r.kind}|${r.code}|${r.t}`;
      if (!opcSent.has(key)) continue;
      matched++;
      expect(r.kind === 'numeric' ? (r as any).value : (r as any).samples, key).to.deep.equal(opcSent.get(key));
    }
    expect(matched).to.be.greaterThan(10);

    // Readings keep device time and agent receipt time; none was late on a healthy link.
    for (const d of DEVICES) for (const r of got(d)) expect(r.rt, d).to.be.a('number');
    expect(DEVICES.flatMap((d) => got(d)).filter((r) => r.late).length).to.equal(0);
  });
});
