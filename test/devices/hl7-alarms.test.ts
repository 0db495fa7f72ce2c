// PCD-04 alarm groups read by their OBX-4 hierarchy (issue 9): any row order,
// with and without the source-parameter row, continue updates, the monitor's
// escaped UTF-8 alert text, several groups per message, senders without
// sub-ids; one reading per measurement; an alarm end through the real driver.

import { parseHl7 } from '../../src/devices/hl7/message.js';
import { interpretObservations, readHeader } from '../../src/devices/hl7/observations.js';
import { createHl7Driver, type Hl7Driver } from '../../src/devices/hl7/index.js';
import type { AlarmBody } from '../../src/devices/reading.js';
import { EQUIPMENT, RecordingSink, TestClient, expect, frame } from './hl7-support.js';
import { seededRandom } from '../../src/sim/random.js';

const RECEIVED = Date.UTC(2030, 0, 1);
const PLUS7 = 420;
const T = Date.UTC(2026, 0, 24, 5, 47, 38);
const EQ = `${EQUIPMENT}^BIG_DIPPER^${EQUIPMENT}^EUI-64`;

function decode(text: string) {
  const message = parseHl7(text);
  const header = readHeader(message, PLUS7);
  return interpretObservations(message, header, PLUS7, RECEIVED);
}

function message(rows: string[], opts: { type?: string; controlId?: string; obr?: boolean } = {}): string {
  return [
    `MSH|^~\\&|MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64|MINDRAY|||20260124124740+0700||${opts.type ?? 'ORU^R40^ORU_R40'}|${opts.controlId ?? '9100'}|P|2.6|||AL|NE||UNICODE UTF-8`,
    'PID|||^^^Hospital^PI||SIMULATED^PATIENT',
    ...(opts.obr === false ? [] : ['OBR|1|9100^MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64||196616^MDC_EVT_ALARM^MDC|||20260124124738+0700']),
    ...rows,
  ].join('\r') + '\r';
}

/** "SpO2 thấp | giới hạn^90": \F\ is the field separator, \Xhh\ UTF-8 bytes, the ^ left unescaped by the monitor. */
const ESCAPED_TEXT = 'SpO2 th\\XE1BAA5\\p \\F\\ gi\\XE1BB9B\\i h\\XE1BAA1\\n^90';
const DECODED_TEXT = 'SpO2 thấp | giới hạn^90';

/** The SpO2-low group of issue 9, keyed by facet; OBX-1 is renumbered by `rowsOf`. */
function spo2Group(phase: string, state: string, opts: { value?: string; prefix?: string; text?: string } = {}): Record<string, string> {
  const p = opts.prefix ?? '1.3.1.150456';
  return {
    event: `CWE|196616^MDC_EVT_ALARM^MDC|${p}.1|196674^MDC_EVT_LO_VAL_LT_LIM^MDC|||L~PM~SP|||R|||20260124124738+0700||||${EQ}`,
    source: `NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|${p}.2|${opts.value ?? '93'}|262688^MDC_DIM_PERCENT^MDC|||||R`,
    phase: `ST|68481^MDC_ATTR_EVENT_PHASE^MDC|${p}.3|${phase}`,
    state: `ST|68482^MDC_ATTR_ALARM_STATE^MDC|${p}.4|${state}`,
    inactivation: `ST|68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC|${p}.5|enabled`,
    priority: `ST|68484^MDC_ATTR_ALARM_PRIORITY^MDC|${p}.6|PM`,
    type: `ST|68485^MDC_ATTR_ALERT_TYPE^MDC|${p}.7|SP`,
    text: `ST|68546^MDC_ATTR_ALERT_TEXT^MDC|${p}.8|${opts.text ?? ESCAPED_TEXT}`,
  };
}

function rowsOf(bodies: string[], firstSetId = 1): string[] {
  return bodies.map((b, i) => `OBX|${firstSetId + i}|${b}`);
}

const SPO2_ID = 'MDC_EVT_LO_VAL_LT_LIM|MDC_PULS_OXIM_SAT_O2|1.3.1.150456';

function onlyAlarm(text: string): AlarmBody {
  const { observations } = decode(text);
  expect(observations, 'one reading').to.have.length(1);
  const body = observations[0]!.body;
  expect(body.kind).to.equal('alarm');
  return body as AlarmBody;
}


describe('hl7 alarms: PCD-04 groups by OBX-4 sub-id', () => {
  it('decodes the SpO2-low end of issue 9: phase, state, priority, source, the monitor\'s text, identity', () => {
    const g = spo2Group('end', 'inactive');
    const { observations, skipped } = decode(message(rowsOf([g.event!, g.source!, g.phase!, g.state!, g.priority!, g.text!])));
    expect(skipped).to.equal(0);
    expect(observations).to.deep.equal([
      {
        equipmentId: EQUIPMENT,
        body: {
          kind: 'alarm',
          code: 'MDC_EVT_LO_VAL_LT_LIM',
          unit: '',
          t: T,
          rt: RECEIVED,
          priority: 'medium',
          text: DECODED_TEXT,
          active: false,
          phase: 'end',
          state: 'inactive',
          source: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', value: 93 },
          alarmId: SPO2_ID,
        },
      },
    ]);
  });

  it('gives the same alarm whatever the order of the rows in the group', () => {
    const g = spo2Group('end', 'inactive');
    const all = [g.event!, g.source!, g.phase!, g.state!, g.inactivation!, g.priority!, g.type!, g.text!];
    const expected = onlyAlarm(message(rowsOf(all)));
    expect(expected).to.include({ active: false, phase: 'end', state: 'inactive', text: DECODED_TEXT, alarmId: SPO2_ID });
    const random = seededRandom(9);
    const orders = [all.slice().reverse(), [...all.slice(1), all[0]!]];
    for (let i = 0; i < 40; i++) {
      const order = all.slice();
      for (let j = order.length - 1; j > 0; j--) {
        const k = Math.floor(random() * (j + 1));
        [order[j], order[k]] = [order[k]!, order[j]!];
      }
      orders.push(order);
    }
    for (const order of orders) {
      expect(onlyAlarm(message(rowsOf(order))), order.map((r) => r.split('|')[2]).join(' ')).to.deep.equal(expected);
    }
  });

  it('decodes a group without the source-parameter row, and leaves source and its code out of the identity', () => {
    const g = spo2Group('start', 'active');
    const body = onlyAlarm(message(rowsOf([g.event!, g.phase!, g.state!, g.priority!])));
    expect(body).to.deep.include({ active: true, phase: 'start', state: 'active', priority: 'medium', text: 'MDC_EVT_LO_VAL_LT_LIM' });
    expect(body.source).to.equal(undefined);
    expect(body.alarmId).to.equal('MDC_EVT_LO_VAL_LT_LIM||1.3.1.150456');
  });

  it('pairs start, continue and end under one identity; continue updates the source value', () => {
    const bodies = (['start/active/89', 'continue/active/88', 'end/inactive/93'] as const).map((s) => {
      const [phase, state, value] = s.split('/') as [string, string, string];
      const g = spo2Group(phase, state, { value });
      return onlyAlarm(message(rowsOf([g.event!, g.source!, g.phase!, g.state!, g.priority!, g.type!, g.text!])));
    });
    expect(bodies.map((b) => [b.phase, b.state, b.active, b.source?.value])).to.deep.equal([
      ['start', 'active', true, 89],
      ['continue', 'active', true, 88],
      ['end', 'inactive', false, 93],
    ]);
    expect(new Set(bodies.map((b) => b.alarmId))).to.deep.equal(new Set([SPO2_ID]));
  });

  it('without a state row, active follows the phase', () => {
    const g = spo2Group('end', 'unused');
    expect(onlyAlarm(message(rowsOf([g.event!, g.source!, g.phase!])))).to.include({ active: false, phase: 'end' });
    const c = spo2Group('continue', 'unused');
    expect(onlyAlarm(message(rowsOf([c.event!, c.source!, c.phase!])))).to.include({ active: true, phase: 'continue' });
  });

  it('decodes alert text escapes: split \\X\\ UTF-8, \\S\\ \\T\\ \\R\\ \\E\\, raw UTF-8, and a coded text', () => {
    const split = spo2Group('start', 'active', { text: 'SpO2 th\\XE1\\\\XBAA5\\p \\S\\ \\T\\ \\R\\ \\E\\ 88%' });
    expect(onlyAlarm(message(rowsOf([split.event!, split.text!]))).text).to.equal('SpO2 thấp ^ & ~ \\ 88%');
    const raw = spo2Group('start', 'active', { text: 'Nhịp tim cao 130>120' });
    expect(onlyAlarm(message(rowsOf([raw.event!, raw.text!]))).text).to.equal('Nhịp tim cao 130>120');
    const coded = spo2Group('start', 'active');
    const cwe = coded.text!.replace('ST|', 'CWE|').replace(ESCAPED_TEXT, '1^SpO2 Low^99MNDRY');
    expect(onlyAlarm(message(rowsOf([coded.event!, cwe]))).text).to.equal('SpO2 Low');
    // Blank alert text: the event's name.
    const blank = spo2Group('start', 'active', { text: '  ' });
    expect(onlyAlarm(message(rowsOf([blank.event!, blank.text!]))).text).to.equal('MDC_EVT_LO_VAL_LT_LIM');
  });

  it('clips an overlong alert text to the uplink bound without splitting a character', () => {
    const g = spo2Group('start', 'active', { text: `${'a'.repeat(511)}\\XF09F9293\\tail` });
    const text = onlyAlarm(message(rowsOf([g.event!, g.text!]))).text;
    expect(text).to.equal('a'.repeat(511));
  });

  it('keeps two groups in one message apart, even interleaved, with their own sources and texts', () => {
    const spo2 = spo2Group('start', 'active');
    const hr = {
      event: `CWE|196616^MDC_EVT_ALARM^MDC|1.7.4.147842.1|196652^MDC_EVT_HI_VAL_GT_LIM^MDC|||H~PH~SP|||R|||20260124124738+0700`,
      source: `NM|147842^MDC_ECG_HEART_RATE^MDC|1.7.4.147842.2|135|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R`,
      phase: `ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.7.4.147842.3|continue`,
      state: `ST|68482^MDC_ATTR_ALARM_STATE^MDC|1.7.4.147842.4|active`,
      priority: `ST|68484^MDC_ATTR_ALARM_PRIORITY^MDC|1.7.4.147842.6|PH`,
      text: `ST|68546^MDC_ATTR_ALERT_TEXT^MDC|1.7.4.147842.8|HR 135 > 120`,
    };
    const rows = [spo2.event!, hr.event, hr.source, spo2.phase!, hr.phase, spo2.source!, hr.state, spo2.state!, spo2.text!, hr.priority, hr.text, spo2.priority!];
    const { observations, skipped } = decode(message(rowsOf(rows), { type: 'ORU^R01^ORU_R01' }));
    expect(skipped).to.equal(0);
    const [a, b] = observations.map((o) => o.body as AlarmBody);
    expect(observations).to.have.length(2);
    expect(a).to.deep.include({ code: 'MDC_EVT_LO_VAL_LT_LIM', phase: 'start', state: 'active', priority: 'medium', text: DECODED_TEXT, alarmId: SPO2_ID });
    expect(a!.source).to.deep.equal({ code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', value: 93 });
    expect(b).to.deep.include({ code: 'MDC_EVT_HI_VAL_GT_LIM', phase: 'continue', state: 'active', priority: 'high', text: 'HR 135 > 120' });
    expect(b!.source).to.deep.equal({ code: 'MDC_ECG_HEART_RATE', unit: '/min', value: 135 });
    expect(b!.alarmId).to.equal('MDC_EVT_HI_VAL_GT_LIM|MDC_ECG_HEART_RATE|1.7.4.147842');
  });

  it('keeps alarms under separate OBRs apart when a sender reuses one sub-id prefix for all', () => {
    const group = (event: string, phase: string, state: string, setId: number) => [
      `OBR|${setId}|X${setId}||196616^MDC_EVT_ALARM^MDC|||20260124124738+0700`,
      `OBX|1|CWE|196616^MDC_EVT_ALARM^MDC|1.0.0.0.1|${event}|||A~PM~ST|||R`,
      `OBX|2|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.0.0.0.3|${phase}`,
      `OBX|3|ST|68482^MDC_ATTR_ALARM_STATE^MDC|1.0.0.0.4|${state}`,
    ];
    const text = message([...group('196680^MDC_EVT_LEAD_OFF^MDC', 'end', 'inactive', 1), ...group('196674^MDC_EVT_LO_VAL_LT_LIM^MDC', 'start', 'active', 2)], { obr: false });
    const bodies = decode(text).observations.map((o) => o.body as AlarmBody);
    expect(bodies.map((b) => [b.code, b.phase, b.state, b.active])).to.deep.equal([
      ['MDC_EVT_LEAD_OFF', 'end', 'inactive', false],
      ['MDC_EVT_LO_VAL_LT_LIM', 'start', 'active', true],
    ]);
  });

  it('lets a later alarm row with another prefix not touch an earlier group', () => {
    const spo2 = spo2Group('start', 'active');
    const stray = 'ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.9.9.9.3|end';
    expect(onlyAlarm(message(rowsOf([spo2.event!, spo2.phase!, stray])))).to.include({ phase: 'start', active: true });
  });

  it('still emits the PCD-01 numerics around an alarm group in an ORU^R01', () => {
    const spo2 = spo2Group('start', 'active');
    const rows = [
      `NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|89|262688^MDC_DIM_PERCENT^MDC|||||R|||20260124124738+0700||||${EQ}`,
      spo2.event!, spo2.source!, spo2.phase!,
      `NM|147842^MDC_ECG_HEART_RATE^MDC|1.7.4.147842|70|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||20260124124738+0700`,
      spo2.state!,
    ];
    const { observations } = decode(message(rowsOf(rows), { type: 'ORU^R01^ORU_R01' }));
    expect(observations.map((o) => o.body.kind === 'numeric' ? [o.body.code, o.body.value] : [o.body.code, (o.body as AlarmBody).state])).to.deep.equal([
      ['MDC_PULS_OXIM_SAT_O2', 89],
      ['MDC_EVT_LO_VAL_LT_LIM', 'active'],
      ['MDC_ECG_HEART_RATE', 70],
    ]);
  });
});

describe('hl7 alarms: senders without OBX-4 sub-ids', () => {
  const noSubId = (body: string) => {
    const parts = body.split('|');
    parts[2] = '';
    return parts.join('|');
  };

  it('reads the rows after the event row; the source-parameter row does not end the group', () => {
    const g = spo2Group('end', 'inactive');
    const rows = [g.event!, g.source!, g.phase!, g.state!, g.priority!, g.text!].map(noSubId);
    rows.push(noSubId(`NM|147842^MDC_ECG_HEART_RATE^MDC||70|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||20260124124738+0700`));
    const { observations } = decode(message(rowsOf(rows)));
    expect(observations).to.have.length(2);
    expect(observations[0]!.body).to.deep.include({
      active: false,
      phase: 'end',
      state: 'inactive',
      text: DECODED_TEXT,
      source: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', value: 93 },
      alarmId: 'MDC_EVT_LO_VAL_LT_LIM|MDC_PULS_OXIM_SAT_O2|',
    });
    expect(observations[1]!.body).to.include({ kind: 'numeric', code: 'MDC_ECG_HEART_RATE', value: 70 });
  });

  it('an ordinary numeric right after the event row (no alarm rows after it) stays a numeric and ends the group', () => {
    const g = spo2Group('start', 'active');
    const rows = [g.event!, g.source!].map(noSubId);
    const { observations } = decode(message(rowsOf(rows), { type: 'ORU^R01^ORU_R01' }));
    expect(observations.map((o) => o.body.kind)).to.deep.equal(['alarm', 'numeric']);
    expect((observations[0]!.body as AlarmBody).source).to.equal(undefined);
  });

  it('an event row with a four-part sub-id does not swallow the PCD-01 numerics that share its first parts', () => {
    const rows = [
      `CWE|196616^MDC_EVT_ALARM^MDC|1.3.1.1|196674^MDC_EVT_LO_VAL_LT_LIM^MDC|||L~PM~SP|||R|||20260124124738+0700||||${EQ}`,
      'ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.3.1.3|start',
      'NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|89|262688^MDC_DIM_PERCENT^MDC|||||R',
      'NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.3.1.149530|101|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R',
    ];
    const { observations } = decode(message(rowsOf(rows), { type: 'ORU^R01^ORU_R01' }));
    expect(observations.map((o) => [o.body.kind, o.body.code])).to.deep.equal([
      ['alarm', 'MDC_EVT_LO_VAL_LT_LIM'],
      ['numeric', 'MDC_PULS_OXIM_SAT_O2'],
      ['numeric', 'MDC_PULS_OXIM_PULS_RATE'],
    ]);
    expect(observations[0]!.body).to.include({ phase: 'start', alarmId: 'MDC_EVT_LO_VAL_LT_LIM||' });
  });

  it('two alarms in a row do not bleed into each other', () => {
    const a = spo2Group('end', 'inactive');
    const b = spo2Group('start', 'active', { prefix: '1.7.0.196680' });
    const lead = b.event!.replace('196674^MDC_EVT_LO_VAL_LT_LIM^MDC', '196680^MDC_EVT_LEAD_OFF^MDC');
    const rows = [a.event!, a.phase!, a.state!, lead, b.phase!, b.state!].map(noSubId);
    const bodies = decode(message(rowsOf(rows))).observations.map((o) => o.body as AlarmBody);
    expect(bodies.map((x) => [x.code, x.phase, x.active, x.alarmId])).to.deep.equal([
      ['MDC_EVT_LO_VAL_LT_LIM', 'end', false, 'MDC_EVT_LO_VAL_LT_LIM||'],
      ['MDC_EVT_LEAD_OFF', 'start', true, 'MDC_EVT_LEAD_OFF||'],
    ]);
  });
});

describe('hl7: one reading per measurement', () => {
  const pvc = (code: string, value: string, time = '20260124124738+0700', equipment = '') =>
    `NM|${code}|1.7.4.${code.split('^')[0]}|${value}|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||${time}||||${equipment}`;
  const PRIVATE = '352^MNDRY_ECG_VPB_RATE^99MNDRY';
  const STANDARD = '148066^MDC_ECG_V_P_C_RATE^MDC';

  it('the MDC code wins over the Mindray private code for the same quantity, time and device, in either order', () => {
    for (const rows of [[pvc(PRIVATE, '0', undefined, EQ), pvc(STANDARD, '1')], [pvc(STANDARD, '1', undefined, EQ), pvc(PRIVATE, '0')]]) {
      const { observations, skipped } = decode(message(rowsOf(rows), { type: 'ORU^R01^ORU_R01' }));
      expect(observations.map((o) => o.body)).to.deep.equal([
        { kind: 'numeric', code: 'MDC_ECG_V_P_C_RATE', unit: '/min', t: T, rt: RECEIVED, value: 1 },
      ]);
      expect(skipped).to.equal(1);
    }
  });

  it('keeps the private reading when no MDC row of that time or device is in the message', () => {
    const alone = decode(message(rowsOf([pvc(PRIVATE, '2', undefined, EQ)]), { type: 'ORU^R01^ORU_R01' }));
    expect(alone.observations.map((o) => o.body)).to.deep.include({ kind: 'numeric', code: 'MDC_ECG_V_P_C_RATE', unit: '/min', t: T, rt: RECEIVED, value: 2 });
    const otherTime = decode(message(rowsOf([pvc(STANDARD, '1', undefined, EQ), pvc(PRIVATE, '0', '20260124124739+0700')]), { type: 'ORU^R01^ORU_R01' }));
    expect(otherTime.observations).to.have.length(2);
    const otherDevice = decode(message(rowsOf([pvc(STANDARD, '1', undefined, EQ), pvc(PRIVATE, '0', undefined, '00A037FFFE000002^X^00A037FFFE000002^EUI-64')]), { type: 'ORU^R01^ORU_R01' }));
    expect(otherDevice.observations.map((o) => o.equipmentId)).to.deep.equal([EQUIPMENT, '00A037FFFE000002']);
  });
});

describe('hl7 alarms through the driver (real MLLP on 127.0.0.1)', function () {
  this.timeout(20_000);
  let driver: Hl7Driver | undefined;
  let client: TestClient | undefined;
  afterEach(async () => {
    await client?.close();
    await driver?.stop();
  });

  it('an SpO2-low end with its source row reaches the sink inactive, paired with its start', async () => {
    const sink = new RecordingSink();
    driver = createHl7Driver([{ deviceId: 'bed5', settings: { port: 0, equipmentId: EQUIPMENT } }], sink);
    await driver.start();
    client = await TestClient.open(driver.serverAddress('bed5')!.port);
    for (const [id, phase, state] of [['A1', 'start', 'active'], ['A2', 'end', 'inactive']] as const) {
      const g = spo2Group(phase, state);
      client.write(frame(message(rowsOf([g.event!, g.source!, g.phase!, g.state!, g.inactivation!, g.priority!, g.type!, g.text!]), { controlId: id })));
      expect((await client.nextReply()).fields('MSA').slice(1, 3)).to.deep.equal(['AA', id]);
    }
    const alarms = sink.readings.filter((r): r is AlarmBody & { deviceId: string } => r.kind === 'alarm');
    expect(sink.readings).to.have.length(2);
    expect(alarms.map((a) => [a.deviceId, a.phase, a.state, a.active, a.priority, a.text, a.alarmId])).to.deep.equal([
      ['bed5', 'start', 'active', true, 'medium', DECODED_TEXT, SPO2_ID],
      ['bed5', 'end', 'inactive', false, 'medium', DECODED_TEXT, SPO2_ID],
    ]);
    expect(alarms[1]!.source).to.deep.equal({ code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', value: 93 });
  });
});
