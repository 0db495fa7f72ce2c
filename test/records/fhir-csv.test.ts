import { expect } from 'chai';
import { csvCell, csvLine } from '../../src/records/csv.js';
import { sampledData, sessionBundle, stableId, type Bundle } from '../../src/records/fhir.js';
import type { SessionDetail } from '../../src/records/RecordsStore.js';
import { validateBundle } from './fhirCheck.js';

const T = Date.UTC(2026, 10, 30, 9, 0, 0);

function detail(): SessionDetail {
  const sessionId = stableId('test-session');
  return {
    session: { id: sessionId, conferenceId: 'c', hubId: 'hub-1', startedAt: T, endedAt: T + 600_000, endReason: 'conference_closed' },
    participants: [
      { id: 'p1', sessionId, peerId: 'peer', userId: 'u1', displayName: 'Dr A', role: 'specialist', siteId: 'h', hubId: 'hub-1', joinedAt: T, leftAt: null, network: { samples: 0, bitrateInAvg: null, bitrateOutAvg: null, lossInMax: null, lossOutMax: null, rttAvgMs: null, rttMaxMs: null } },
    ],
    devices: [{ id: 'd', sessionId, deviceId: 'mon', siteId: 's', type: 'vitals', model: '', protocol: 'hl7', channels: [{ code: 'MDC_TEMP', unit: 'Cel', kind: 'numeric' }], firstSeenAt: T, lastReadingAt: T, readings: 1, gaps: 0, missingReadings: 0, onlineMs: 1000 }],
    alarms: [{ id: 'a', sessionId, deviceId: 'mon', alarmKey: 'k', code: 'MDC_EVT_ALARM', priority: 'low', text: 'Check', source: null, startedAt: T + 1000, endedAt: null }],
    recordings: [{ id: 'r', sessionId, peerId: 'peer', producerId: 'x', trackKind: 'video', mimeType: 'video/webm', filePath: '/data/rec/r.webm', startedAt: T, endedAt: T + 5000, bytes: 1234, startedBy: 'u1', stoppedBy: 'u1' }],
  };
}

describe('records: FHIR mapping and CSV cells', () => {
  it('maps a session to a Bundle that validates, recordings as Media, open periods without an end', () => {
    const bundle = sessionBundle({ detail: detail(), numerics: [{ sessionId: 's', deviceId: 'mon', code: 'MDC_TEMP', unit: 'Cel', t: T, value: 37.2 }], waveforms: [], type: 'transaction', now: T + 700_000 });
    validateBundle(bundle);
    const media = bundle.entry.find((e) => e.resource.resourceType === 'Media')!.resource as any;
    expect(media.content).to.deep.equal({ contentType: 'video/webm', title: 'r.webm', size: 1234 });
    const alarm = bundle.entry.find((e) => (e.resource as any).valueString)!.resource as any;
    expect(alarm.effectivePeriod).to.deep.equal({ start: new Date(T + 1000).toISOString() });
    // The participant who never left has the session's end.
    expect((bundle.entry[0]!.resource as any).participant[0].period.end).to.equal(new Date(T + 600_000).toISOString());
  });

  it('the checks refuse a Bundle with a wrong type, an unknown property or a dangling reference', () => {
    const good = () => sessionBundle({ detail: detail(), numerics: [{ sessionId: 's', deviceId: 'mon', code: 'MDC_TEMP', unit: 'Cel', t: T, value: 37 }], waveforms: [], type: 'collection', now: T });
    const obs = (b: Bundle) => b.entry.find((e) => e.resource.resourceType === 'Observation' && (e.resource as any).valueQuantity)!.resource as any;
    const wrongType = good();
    obs(wrongType).valueQuantity.value = '37';
    expect(() => validateBundle(wrongType)).to.throw();
    const unknown = good();
    obs(unknown).colour = 'red';
    expect(() => validateBundle(unknown)).to.throw();
    const dangling = good();
    obs(dangling).device = { reference: 'urn:uuid:00000000-0000-4000-8000-000000000000' };
    expect(() => validateBundle(dangling)).to.throw(/refers to/);
  });

  it('encodes samples as integers with a power-of-ten factor; invalid samples as E', () => {
    expect(sampledData([0.5, -1.25, null, 2], 500, 'mV')).to.deep.equal({ origin: { value: 0, unit: 'mV', system: 'http://unitsofmeasure.org', code: 'mV' }, period: 2, factor: 0.01, dimensions: 1, data: '50 -125 E 200' });
    expect(sampledData([1, 2, 3], 125, '')).to.include({ period: 8, data: '1 2 3' });
    expect(sampledData([1, 2, 3], 125, '')).to.not.have.property('factor');
  });

  it('stable ids: same parts, same UUID; other parts, another', () => {
    expect(stableId('a', 'b')).to.equal(stableId('a', 'b'));
    expect(stableId('a', 'b')).to.not.equal(stableId('ab'));
    expect(stableId('a')).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('CSV: quotes what needs it and defuses cells a spreadsheet would run as formulas', () => {
    expect(csvCell('=HYPERLINK("http://x")')).to.equal(`"'=HYPERLINK(""http://x"")"`);
    expect(csvCell('+1')).to.equal("'+1");
    expect(csvCell('-2.5.case')).to.equal("'-2.5.case");
    expect(csvCell('@SUM(A1)')).to.equal("'@SUM(A1)");
    expect(csvCell('\tcmd')).to.equal("'\tcmd");
    expect(csvCell(-3)).to.equal('-3');
    expect(csvCell(null)).to.equal('');
    expect(csvCell('a,b')).to.equal('"a,b"');
    expect(csvLine(['x', 'line\nbreak', 1])).to.equal('x,"line\nbreak",1\r\n');
  });
});
