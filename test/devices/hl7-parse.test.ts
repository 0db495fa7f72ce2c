import { Hl7SyntaxError, parseHl7, Hl7Reader, unescapeHl7, STANDARD_ENCODING } from '../../src/devices/hl7/message.js';
import { Hl7ContentError, interpretObservations, readHeader } from '../../src/devices/hl7/observations.js';
import { parseHl7Time, formatHl7Time } from '../../src/devices/hl7/time.js';
import { buildAck } from '../../src/devices/hl7/ack.js';
import { unitToUcum } from '../../src/devices/hl7/codes.js';
import { EQUIPMENT, PCD01_EXAMPLE, R40_EXAMPLE, WAVEFORM_EXAMPLE, expect } from './hl7-support.js';

const RECEIVED = Date.UTC(2030, 0, 1);
const PLUS7 = 420;

function decode(text: string, offset = PLUS7) {
  const message = parseHl7(text);
  const header = readHeader(message, offset);
  return { header, ...interpretObservations(message, header, offset, RECEIVED) };
}

describe('hl7 parsing: devices.md 4a examples', () => {
  it('decodes the PCD-01 numerics example exactly', () => {
    const { header, observations } = decode(PCD01_EXAMPLE);
    expect(header.controlId).to.equal('23545');
    expect(header.messageType).to.equal('ORU^R01');
    expect(header.processingId).to.equal('P');
    const t = Date.UTC(2026, 8, 12, 5, 0, 0);
    expect(observations).to.deep.equal([
      { equipmentId: EQUIPMENT, body: { kind: 'numeric', code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', t, rt: RECEIVED, value: 98 } },
      { equipmentId: EQUIPMENT, body: { kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t, rt: RECEIVED, value: 66 } },
    ]);
  });

  it('decodes the waveform example: raw x resolution, unit from the resolution row, time from OBR-7', () => {
    const { observations } = decode(WAVEFORM_EXAMPLE);
    expect(observations).to.have.length(1);
    expect(observations[0]!.body).to.deep.equal({
      kind: 'waveform',
      code: 'MDC_ECG_ELEC_POTL_I',
      unit: 'mV',
      t: Date.UTC(2026, 8, 12, 4, 59, 59, 500),
      rt: RECEIVED,
      sampleRate: 500,
      samples: [0.09768, 0.107448, 0.112332],
    });
  });

  it('decodes the R40 alarm example', () => {
    const { header, observations } = decode(R40_EXAMPLE);
    expect(header.messageType).to.equal('ORU^R40');
    expect(observations).to.deep.equal([
      {
        equipmentId: EQUIPMENT,
        body: {
          kind: 'alarm',
          code: 'MDC_EVT_LEAD_OFF',
          unit: '',
          t: Date.UTC(2026, 0, 24, 5, 47, 38),
          rt: RECEIVED,
          priority: 'low',
          text: 'MDC_EVT_LEAD_OFF',
          active: true,
          phase: 'start',
          state: 'active',
          alarmId: 'MDC_EVT_LEAD_OFF||1.7.0.196680',
        },
      },
    ]);
  });

  it('maps alarm priorities and an ended inactive alarm', () => {
    const ended = R40_EXAMPLE.replace('A~PL~ST', 'A~PH~SP').replace('|start', '|end').replace('|active', '|inactive').replace('|PL\r', '|PH\r');
    const body = decode(ended).observations[0]!.body;
    expect(body).to.include({ kind: 'alarm', priority: 'high', active: false, phase: 'end' });
    const noAttributes = R40_EXAMPLE.split('\r').slice(0, 5).join('\r').replace('A~PL~ST', 'A~PM~ST');
    expect(decode(noAttributes).observations[0]!.body).to.include({ priority: 'medium', active: true });
  });
});

describe('hl7 parsing: times', () => {
  it('applies the offset in the time, else the site offset', () => {
    expect(parseHl7Time('20260912120000.0000+0700', 0)).to.equal(Date.UTC(2026, 8, 12, 5, 0, 0));
    expect(parseHl7Time('20260912120000', PLUS7)).to.equal(Date.UTC(2026, 8, 12, 5, 0, 0));
    expect(parseHl7Time('20260912120000.25-0130', PLUS7)).to.equal(Date.UTC(2026, 8, 12, 13, 30, 0, 250));
    expect(parseHl7Time('202609121200', 0)).to.equal(Date.UTC(2026, 8, 12, 12, 0));
    expect(parseHl7Time('20260231120000', 0)).to.equal(undefined);
    expect(parseHl7Time('2026091212xx00', 0)).to.equal(undefined);
    expect(parseHl7Time('', 0)).to.equal(undefined);
    expect(formatHl7Time(Date.UTC(2026, 8, 12, 5, 0, 0), PLUS7)).to.equal('20260912120000+0700');
  });

  it('falls back from OBX-14 to OBR-7 to MSH-7 to receipt time', () => {
    const msg = (msh7: string, obr7: string, obx14: string) =>
      [
        `MSH|^~\\&|A|B|||${msh7}||ORU^R01|1|P|2.6`,
        `OBR|1||||||${obr7}`,
        `OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC||70|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||${obx14}`,
      ].join('\r');
    const t = (text: string) => decode(text).observations[0]!.body.t;
    expect(t(msg('20260101000003', '20260101000002', '20260101000001'))).to.equal(Date.UTC(2025, 11, 31, 17, 0, 1));
    expect(t(msg('20260101000003', '20260101000002', ''))).to.equal(Date.UTC(2025, 11, 31, 17, 0, 2));
    expect(t(msg('20260101000003', '', ''))).to.equal(Date.UTC(2025, 11, 31, 17, 0, 3));
    expect(t(msg('', '', ''))).to.equal(RECEIVED);
    expect(t(msg('', '', 'garbage'))).to.equal(RECEIVED);
  });
});

describe('hl7 parsing: values, codes and encoding', () => {
  const one = (obx: string, msh = 'MSH|^~\\&|A|B|||20260101000000||ORU^R01|1|P|2.6') => decode(`${msh}\r${obx}\r`).observations;

  it('turns sentinels into null values', () => {
    for (const sentinel of ['-999', '-99.9', '-100', '-1', '8388607', '-8388608']) {
      const [o] = one(`OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC||${sentinel}|264864^MDC_DIM_BEAT_PER_MIN^MDC`);
      expect(o!.body, sentinel).to.include({ value: null });
    }
    // -1 is a real value for a quantity that may be negative (unknown code kept by name).
    const [st] = one('OBX|1|NM|131841^MDC_ECG_AMPL_ST_I^MDC||-1|266418^MDC_DIM_MILLI_VOLT^MDC');
    expect(st!.body).to.include({ code: 'MDC_ECG_AMPL_ST_I', unit: 'mV', value: -1 });
    const [empty] = one('OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|||264864^MDC_DIM_BEAT_PER_MIN^MDC');
    expect(empty!.body).to.include({ value: null });
  });

  it('turns waveform sentinels and empty samples into null samples', () => {
    const obs = decode(
      'MSH|^~\\&|A|B|||20260101000000||ORU^R01|1|P|2.6\rOBX|1|NA|150452^MDC_PULS_OXIM_PLETH^MDC||1^8388607^^-8388608^5\rOBX|2|NM|2436^MDC_ATTR_SAMP_RATE^MDC||125|264640^MDC_DIM_HZ^MDC\r',
    ).observations;
    expect(obs[0]!.body).to.include({ sampleRate: 125, unit: '' });
    expect((obs[0]!.body as { samples: unknown }).samples).to.deep.equal([1, null, null, null, 5]);
  });

  it('maps legacy PDS codes and Mindray private codes', () => {
    const pds = decode(
      [
        'MSH|^~\\&|Mindray|PDS|||||ORU^R01|7|P|2.3.1',
        'OBX|1|NM|101^HR|2101|72||||||F',
        'OBX|2|NM|151^RR|2151|16||||||F',
        'OBX|3|NM|160^SpO2|2160|98||||||F',
        'OBX|4|NM|161^PR|2161|71||||||F',
        'OBX|5|NM|170^Sys|2170|121||||||F',
        'OBX|6|NM|171^Dia|2171|79||||||F',
        'OBX|7|NM|200^T1|2200|36.9||||||F',
        'OBX|8|NM|250^CO2Et|2250|35||||||F',
        'OBX|9|NM|999^Unknown|2999|1||||||F',
      ].join('\r'),
    );
    expect(pds.observations.map((o) => [o.body.code, o.body.unit, (o.body as { value: number }).value])).to.deep.equal([
      ['MDC_ECG_HEART_RATE', '/min', 72],
      ['MDC_TTHOR_RESP_RATE', '/min', 16],
      ['MDC_PULS_OXIM_SAT_O2', '%', 98],
      ['MDC_PULS_OXIM_PULS_RATE', '/min', 71],
      ['MDC_PRESS_BLD_NONINV_SYS', 'mm[Hg]', 121],
      ['MDC_PRESS_BLD_NONINV_DIA', 'mm[Hg]', 79],
      ['MDC_TEMP', 'Cel', 36.9],
      ['MDC_CONC_AWAY_CO2_ET', 'mm[Hg]', 35],
    ]);
    expect(pds.skipped).to.equal(1);
    const [vpb] = one('OBX|8|NM|352^MNDRY_ECG_VPB_RATE^99MNDRY|1.7.2.352|3|264864^MDC_DIM_BEAT_PER_MIN^MDC');
    expect(vpb!.body).to.include({ code: 'MDC_ECG_V_P_C_RATE', unit: '/min', value: 3 });
    const [pause] = one('OBX|7|NM|108^MNDRY_ECG_PAUSE_RATE^99MNDRY|1.7.2.108|0|264864^MDC_DIM_BEAT_PER_MIN^MDC');
    expect(pause!.body).to.include({ code: 'MNDRY_ECG_PAUSE_RATE', value: 0 });
  });

  it('maps MDC_DIM units to UCUM', () => {
    expect(unitToUcum(['266016', 'MDC_DIM_MMHG', 'MDC'])).to.equal('mm[Hg]');
    expect(unitToUcum(['268192', 'MDC_DIM_DEGC', 'MDC'])).to.equal('Cel');
    expect(unitToUcum(['264928', '', 'MDC'])).to.equal('/min');
    expect(unitToUcum(['mm[Hg]', '', 'UCUM'])).to.equal('mm[Hg]');
    expect(unitToUcum([])).to.equal(undefined);
  });

  it('reads delimiters from MSH-1/MSH-2 and decodes escape sequences', () => {
    const msg = parseHl7('MSH#$~\\&#A$B#C#D\rOBX#1#ST#X$Y##a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X41C3A9\\g\\.br\\h\\H\\i~rep2\r');
    expect(msg.encoding).to.deep.equal({ field: '#', component: '$', repetition: '~', escape: '\\', subcomponent: '&' });
    const reader = new Hl7Reader(msg.encoding);
    const obx = msg.segments[1]!;
    expect(reader.value(msg.segments[0]!, 3, 2)).to.equal('B');
    expect(reader.value(obx, 5)).to.equal('a#b$c&d~e\\fAég\nhi');
    expect(reader.repetitions(obx, 5)).to.have.length(2);
    expect(reader.components(obx, 3)).to.deep.equal(['X', 'Y']);
    expect(unescapeHl7('no escapes', STANDARD_ENCODING)).to.equal('no escapes');
    expect(unescapeHl7('open \\F', STANDARD_ENCODING)).to.equal('open \\F');
  });

  it('tolerates empty and repeated fields and \\n segment ends', () => {
    const { observations } = decode('MSH|^~\\&|||||||ORU^R01|1|P|2.6\nOBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC~x^y||70\n\nOBX||||||\n');
    expect(observations.map((o) => o.body.code)).to.deep.equal(['MDC_ECG_HEART_RATE']);
    expect(observations[0]!.equipmentId).to.equal(undefined);
  });

  it('refuses what is not HL7 and content it cannot read', () => {
    expect(() => parseHl7('hello')).to.throw(Hl7SyntaxError);
    expect(() => parseHl7('MSH|^~|x')).to.throw(Hl7SyntaxError);
    expect(() => parseHl7('MSH|^~\\&|A\robx|1')).to.throw(Hl7SyntaxError);
    expect(() => one('OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC||7O')).to.throw(Hl7ContentError);
    expect(() => one('OBX|1|NA|131329^MDC_ECG_ELEC_POTL_I^MDC||1^2^3')).to.throw(Hl7ContentError, /SAMP_RATE/);
  });
});

describe('hl7 ACK', () => {
  it('swaps sender and receiver and acknowledges MSH-10', () => {
    const header = readHeader(parseHl7(PCD01_EXAMPLE), PLUS7);
    const ack = buildAck(header, { code: 'AA', ackControlId: 'HOI1', now: Date.UTC(2026, 8, 12, 5, 0, 1), offsetMinutes: PLUS7 });
    const [msh, msa] = ack.split('\r');
    const f = msh!.split('|');
    expect(f[2]).to.equal(''); // MSH-3 <- MSH-5
    expect(f[4]).to.equal('MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64'); // MSH-5 <- MSH-3
    expect(f[5]).to.equal('MINDRAY');
    expect(f[6]).to.equal('20260912120001+0700');
    expect(f[8]).to.equal('ACK^R01^ACK');
    expect(msa).to.equal('MSA|AA|23545');
    const ae = buildAck(header, { code: 'AE', ackControlId: 'HOI2', now: 0, offsetMinutes: 0, reason: 'sink | rejected' });
    expect(ae).to.contain('MSA|AE|23545|sink \\F\\ rejected\r').and.to.contain('ERR|||207^');
  });
});
