// The driver over real TCP on 127.0.0.1: ACK semantics, all-or-nothing
// delivery, resynchronisation, routing by equipment id, status.

import { createHl7Driver, type Hl7Driver } from '../../src/devices/hl7/index.js';
import type { Hl7DeviceConfig } from '../../src/devices/hl7/config.js';
import {
  EQUIPMENT,
  PCD01_EXAMPLE,
  R40_EXAMPLE,
  RecordingSink,
  TestClient,
  WAVEFORM_EXAMPLE,
  expect,
  frame,
  numericMessage,
  sleep,
  waitFor,
} from './hl7-support.js';

describe('hl7 driver (server mode, real TCP)', function () {
  this.timeout(20_000);
  let driver: Hl7Driver;
  let sink: RecordingSink;
  let client: TestClient;

  async function startDriver(devices: Array<{ deviceId: string; settings: Hl7DeviceConfig }>): Promise<number> {
    sink = new RecordingSink();
    driver = createHl7Driver(devices, sink);
    await driver.start();
    const port = driver.serverAddress(devices[0]!.deviceId)!.port;
    client = await TestClient.open(port);
    return port;
  }

  afterEach(async () => {
    await client?.close();
    await driver?.stop();
  });

  it('decodes the devices.md examples and ACKs each with AA and swapped MSH', async () => {
    await startDriver([{ deviceId: 'bed5', settings: { port: 0, equipmentId: EQUIPMENT } }]);
    client.write(frame(PCD01_EXAMPLE));
    const ack = await client.nextReply();
    expect(ack.fields('MSA').slice(1, 3)).to.deep.equal(['AA', '23545']);
    expect(ack.fields('MSH')[5]).to.equal('MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64');
    expect(ack.fields('MSH')[6]).to.equal('MINDRAY');
    expect(ack.fields('MSH')[9]).to.equal('ACK^R01^ACK');
    client.write(Buffer.concat([frame(WAVEFORM_EXAMPLE), frame(R40_EXAMPLE)]));
    expect((await client.nextReply()).fields('MSA')[1]).to.equal('AA');
    expect((await client.nextReply()).fields('MSA').slice(1, 3)).to.deep.equal(['AA', '9001']);

    const t = Date.UTC(2026, 8, 12, 5, 0, 0);
    const strip = sink.readings.map(({ rt, ...r }) => {
      expect(rt).to.be.a('number');
      return r;
    });
    expect(strip).to.deep.equal([
      { kind: 'numeric', code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', t, value: 98, deviceId: 'bed5' },
      { kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t, value: 66, deviceId: 'bed5' },
      { kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_I', unit: 'mV', t: t - 500, sampleRate: 500, samples: [0.09768, 0.107448, 0.112332], deviceId: 'bed5' },
      { kind: 'alarm', code: 'MDC_EVT_LEAD_OFF', unit: '', t: Date.UTC(2026, 0, 24, 5, 47, 38), priority: 'low', text: 'MDC_EVT_LEAD_OFF', active: true, phase: 'start', state: 'active', alarmId: 'MDC_EVT_LEAD_OFF||1.7.0.196680', deviceId: 'bed5' },
    ]);
    expect(driver.counters).to.include({ framesDecoded: 3, framesRejected: 0, bytesDiscarded: 0, readingsEmitted: 4 });
    expect(driver.statusOf('bed5')).to.deep.equal({ status: 'online' });
    expect(driver.channelsOf('bed5').map((c) => c.code)).to.include('MDC_ECG_ELEC_POTL_I');
  });

  it('ACKs only after the sink has taken the readings', async () => {
    await startDriver([{ deviceId: 'd', settings: { port: 0 } }]);
    let release!: () => void;
    sink.hold = new Promise((resolve) => (release = resolve));
    client.write(frame(numericMessage('M1')));
    await waitFor(() => sink.calls === 1, 3000, 'sink call');
    await sleep(150);
    expect(client.queuedReplies).to.equal(0);
    release();
    expect((await client.nextReply()).fields('MSA').slice(1, 3)).to.deep.equal(['AA', 'M1']);
    expect(sink.readings).to.have.length(2);
  });

  it('answers AE when the sink rejects, keeps nothing of that message, and reports degraded', async () => {
    await startDriver([{ deviceId: 'd', settings: { port: 0 } }]);
    sink.reject = true;
    client.write(frame(numericMessage('M2')));
    const ae = await client.nextReply();
    expect(ae.fields('MSA').slice(1, 4)).to.deep.equal(['AE', 'M2', 'sink rejected']);
    expect(sink.readings).to.have.length(0);
    expect(driver.statusOf('d')).to.deep.equal({ status: 'degraded', reason: 'AE replies: sink rejected' });
    expect(driver.counters).to.include({ framesRejected: 1, readingsEmitted: 0 });
    // The device resends; now the sink takes it and the status recovers.
    sink.reject = false;
    client.write(frame(numericMessage('M2')));
    expect((await client.nextReply()).fields('MSA')[1]).to.equal('AA');
    expect(sink.readings).to.have.length(2);
    expect(driver.statusOf('d').status).to.equal('online');
  });

  it('answers AE for a message that fails half way, and the sink sees none of it', async () => {
    await startDriver([{ deviceId: 'd', settings: { port: 0 } }]);
    client.write(frame(numericMessage('M3', { hr: 'seventy' })));
    const ae = await client.nextReply();
    expect(ae.fields('MSA').slice(1, 3)).to.deep.equal(['AE', 'M3']);
    expect(ae.fields('MSA')[3]).to.match(/not a number/);
    expect(sink.calls).to.equal(0);
    client.write(frame('this is not HL7'));
    expect((await client.nextReply()).fields('MSA')[1]).to.equal('AE');
  });

  it('answers AR for an unsupported message type, a wrong processing id and an unknown equipment id', async () => {
    await startDriver([
      { deviceId: 'a', settings: { port: 0, equipmentId: EQUIPMENT } },
      { deviceId: 'b', settings: { port: 0, equipmentId: '00-A0-37-00-00-00-00-0B' } },
    ]);
    client.write(frame(numericMessage('T1', { type: 'ADT^A01^ADT_A01' })));
    const ar1 = await client.nextReply();
    expect(ar1.fields('MSA').slice(1, 4)).to.deep.equal(['AR', 'T1', 'unsupported message type ADT\\S\\A01']);
    client.write(frame(numericMessage('T2', { processingId: 'T' })));
    expect((await client.nextReply()).fields('MSA').slice(1, 3)).to.deep.equal(['AR', 'T2']);
    client.write(frame(numericMessage('T3', { equipment: '1111111111111111' })));
    const ar3 = await client.nextReply();
    expect(ar3.fields('MSA').slice(1, 4)).to.deep.equal(['AR', 'T3', 'unknown equipment id 1111111111111111']);
    expect(sink.calls).to.equal(0);
    // Routing: the same listener serves both devices.
    client.write(frame(numericMessage('T4', { equipment: '00a037000000000b' })));
    client.write(frame(numericMessage('T5')));
    expect((await client.nextReply()).fields('MSA')[1]).to.equal('AA');
    expect((await client.nextReply()).fields('MSA')[1]).to.equal('AA');
    expect(sink.readings.map((r) => r.deviceId)).to.deep.equal(['b', 'b', 'a', 'a']);
    expect(driver.counters.framesRejected).to.equal(3);
  });

  it('survives garbage, truncated, split and batched input over TCP and counts what it discarded', async () => {
    await startDriver([{ deviceId: 'd', settings: { port: 0, maxFrameBytes: 2048 } }]);
    const garbage = Buffer.from('GET / HTTP/1.1\r\n\r\n'); // 18 bytes
    const truncated = Buffer.from('\x0bMSH|^~\\&|cut', 'latin1'); // 13 bytes
    client.write(Buffer.concat([garbage, truncated]));
    await client.writeSlowly(frame(numericMessage('S1')), 7);
    expect((await client.nextReply()).fields('MSA').slice(1, 3)).to.deep.equal(['AA', 'S1']);
    client.write(Buffer.concat([frame(numericMessage('S2')), frame(numericMessage('S3')), Buffer.from([0x00, 0xff])]));
    expect((await client.nextReply()).fields('MSA')[2]).to.equal('S2');
    expect((await client.nextReply()).fields('MSA')[2]).to.equal('S3');
    // Oversize: dropped, counted, and the next frame still gets through.
    client.write(Buffer.concat([frame(`MSH|^~\\&|${'x'.repeat(5000)}`), frame(numericMessage('S4'))]));
    expect((await client.nextReply()).fields('MSA')[2]).to.equal('S4');
    await waitFor(() => driver.counters.framesDecoded === 4, 2000, 'frames decoded');
    // garbage + truncated frame + 2 stray bytes + oversize frame (VT + 5009 + FS; its CR is the trailer)
    expect(driver.counters.bytesDiscarded).to.equal(18 + 13 + 2 + 5011);
    expect(driver.counters.framesRejected).to.equal(1);
    expect(sink.readings).to.have.length(8);
  });

  it('does not journal a resent message twice when the ACK was lost', async () => {
    await startDriver([{ deviceId: 'd', settings: { port: 0 } }]);
    client.write(frame(numericMessage('R1')));
    await client.nextReply();
    client.write(frame(numericMessage('R1')));
    expect((await client.nextReply()).fields('MSA')[1]).to.equal('AA');
    expect(sink.readings).to.have.length(2);
  });

  it('goes offline when the sender disconnects or falls silent', async () => {
    const port = await startDriver([{ deviceId: 'd', settings: { port: 0, staleAfterMs: 300 } }]);
    expect(driver.statusOf('d').status).to.equal('offline');
    client.write(frame(numericMessage('Q1')));
    await client.nextReply();
    expect(driver.statusOf('d').status).to.equal('online');
    await waitFor(() => driver.statusOf('d').status === 'offline', 2000, 'stale');
    expect(driver.statusOf('d').reason).to.match(/no message/);
    client.write(frame(numericMessage('Q2')));
    await client.nextReply();
    await client.close();
    await waitFor(() => driver.statusOf('d').reason === 'sender disconnected', 2000, 'disconnect');
    client = await TestClient.open(port);
  });

  it('rejects configurations it cannot serve', () => {
    const s = new RecordingSink();
    expect(() => createHl7Driver([{ deviceId: 'a', settings: { port: 0 } }, { deviceId: 'b', settings: { port: 0 } }], s)).to.throw(/equipmentId/);
    expect(() => createHl7Driver([{ deviceId: 'a', settings: { port: 0, timezoneOffset: '0700' } }], s)).to.throw();
    expect(() =>
      createHl7Driver([
        { deviceId: 'a', settings: { port: 0, equipmentId: '1' } },
        { deviceId: 'b', settings: { port: 0, equipmentId: '2', timezoneOffset: '+0100' } },
      ], s),
    ).to.throw(/timezoneOffset/);
  });
});
