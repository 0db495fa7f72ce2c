import { expect } from 'chai';
import { DataType, DataValue, StatusCodes, Variant, VariantArrayType } from 'node-opcua';
import { opcuaDeviceConfigSchema } from '../../src/devices/opcua/index.js';
import { convertDataValue, valueIdentity } from '../../src/devices/opcua/convert.js';
import type { OpcuaMapping } from '../../src/devices/opcua/config.js';

const HR: OpcuaMapping = { code: 'MDC_ECG_HEART_RATE', unit: '/min', kind: 'numeric' };
const ECG: OpcuaMapping = { code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', kind: 'waveform', sampleRate: 250 };
const RECEIVED = Date.UTC(2026, 8, 12, 5, 0, 0);
const SOURCE = new Date(RECEIVED - 700);
const SERVER = new Date(RECEIVED - 300);

function dv(value: Variant, times: { source?: Date | null; server?: Date | null } = {}, statusCode = StatusCodes.Good): DataValue {
  return new DataValue({ value, statusCode, sourceTimestamp: times.source ?? null, serverTimestamp: times.server ?? null });
}

function convert(dataValue: DataValue, mapping: OpcuaMapping, waveformTimestamp: 'lastSample' | 'firstSample' = 'lastSample') {
  return convertDataValue(dataValue, { deviceId: 'd1', mapping, receivedAt: RECEIVED, waveformTimestamp });
}

const double = (value: number) => new Variant({ dataType: DataType.Double, value });

describe('OPC UA value conversion', () => {
  it('takes t from the source timestamp, else the server timestamp, else receipt', () => {
    const times = [
      convert(dv(double(1), { source: SOURCE, server: SERVER }), HR),
      convert(dv(double(1), { server: SERVER }), HR),
      convert(dv(double(1)), HR),
    ].map((c) => (c.ok === true ? c.reading.t : undefined));
    expect(times).to.deep.equal([SOURCE.getTime(), SERVER.getTime(), RECEIVED]);
  });

  it('scales numerics, turns NaN and bad status into null, reads Int64 words', () => {
    const scaled = convert(dv(double(369), { source: SOURCE }), { ...HR, scale: 0.1, offset: -1 });
    expect(scaled.ok === true && scaled.reading).to.deep.include({ value: 369 * 0.1 - 1, t: SOURCE.getTime(), rt: RECEIVED });
    const nan = convert(dv(double(NaN)), HR);
    expect(nan.ok === true && nan.reading).to.deep.include({ value: null });
    const bad = convert(dv(double(72), {}, StatusCodes.BadSensorFailure), HR);
    expect(bad).to.deep.include({ ok: true, quality: 'bad', statusName: 'BadSensorFailure' });
    expect(bad.ok === true && bad.reading).to.deep.include({ value: null });
    const int64 = convert(dv(new Variant({ dataType: DataType.Int64, arrayType: VariantArrayType.Scalar, value: [1, 5] })), HR);
    expect(int64.ok === true && int64.reading).to.deep.include({ value: 2 ** 32 + 5 });
  });

  it('dates a waveform chunk by its first sample', () => {
    const samples = new Float32Array([0.5, 1.25, -0.75]);
    const value = new Variant({ dataType: DataType.Float, arrayType: VariantArrayType.Array, value: samples });
    const last = convert(dv(value, { source: SOURCE }), ECG, 'lastSample');
    expect(last.ok === true && last.reading).to.deep.equal({
      deviceId: 'd1', kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV',
      t: SOURCE.getTime() - 8, rt: RECEIVED, sampleRate: 250, samples: [0.5, 1.25, -0.75],
    });
    const first = convert(dv(value, { source: SOURCE }), ECG, 'firstSample');
    expect(first.ok === true && first.reading.t).to.equal(SOURCE.getTime());
  });

  it('rejects shape mismatches and bad waveform blocks, ignores empty nodes', () => {
    expect(convert(dv(double(1)), ECG)).to.deep.include({ ok: false, error: 'expected an array for a waveform mapping, got a scalar' });
    const array = new Variant({ dataType: DataType.Double, arrayType: VariantArrayType.Array, value: new Float64Array([1, 2]) });
    expect(convert(dv(array), HR)).to.deep.include({ ok: false, error: 'expected a scalar for a numeric mapping, got an array' });
    expect(convert(dv(new Variant({ dataType: DataType.String, value: 'x' })), HR)).to.deep.include({ ok: false, error: 'expected a numeric value, got String' });
    expect(convert(dv(array, {}, StatusCodes.BadCommunicationError), ECG)).to.deep.include({ ok: false, error: 'waveform block with status BadCommunicationError' });
    expect(convert(dv(new Variant()), HR)).to.deep.equal({ ok: 'empty' });
  });

  it('identifies a repeated value only when it has a source time', () => {
    expect(valueIdentity(dv(double(5), { source: SOURCE }))).to.equal(valueIdentity(dv(double(5), { source: SOURCE, server: SERVER })));
    expect(valueIdentity(dv(double(5), { source: SOURCE }))).to.not.equal(valueIdentity(dv(double(6), { source: SOURCE })));
    expect(valueIdentity(dv(double(5), { server: SERVER }))).to.equal(undefined);
  });
});

describe('OPC UA device settings', () => {
  const base = { endpoint: 'opc.tcp://10.0.0.5:4840', mappings: { 'ns=1;s=Monitor.HR': { code: 'MDC_ECG_HEART_RATE', unit: '/min' } } };
  const issues = (input: unknown) => {
    const result = opcuaDeviceConfigSchema.safeParse(input);
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('applies defaults', () => {
    const settings = opcuaDeviceConfigSchema.parse(base);
    expect(settings).to.deep.include({ securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', acceptUnknownServerCertificate: false, publishingIntervalMs: 100, samplingIntervalMs: 0, queueSize: 20, discardOldest: true, dataChangeTrigger: 'StatusValueTimestamp', waveformTimestamp: 'lastSample' });
    expect(settings.mappings['ns=1;s=Monitor.HR']).to.deep.equal({ code: 'MDC_ECG_HEART_RATE', unit: '/min', kind: 'numeric' });
  });

  it('names the bad key', () => {
    expect(issues({ ...base, endpoint: 'http://x' })).to.deep.equal(['endpoint: Expected an opc.tcp:// endpoint URL']);
    expect(issues({ ...base, securityMode: 'Sign', securityPolicy: 'None' })).to.deep.equal(['securityPolicy: Must not be "None" when securityMode is "Sign"']);
    expect(issues({ ...base, securityMode: 'None', securityPolicy: 'Basic256Sha256' })).to.deep.equal(['securityPolicy: Must be "None" when securityMode is "None"']);
    expect(issues({ ...base, username: 'nurse' })).to.deep.equal(['password: username and password must be given together']);
    expect(issues({ ...base, mappings: { 'ns=1;s=ECG': { code: 'X', unit: 'mV', kind: 'waveform' } } })).to.deep.equal(['mappings.ns=1;s=ECG.sampleRate: Required for kind "waveform"']);
    expect(issues({ ...base, mappings: { 'Monitor HR': { code: 'X', unit: '' } } })[0]).to.match(/^mappings\.Monitor HR: not an OPC UA nodeId/);
    expect(issues({ ...base, mappings: {} })).to.deep.equal(['mappings: At least one nodeId mapping is required']);
  });
});
