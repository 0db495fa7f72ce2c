// The web client's alarm model (web/src/devices/alarmModel.ts, issue 9): pure,
// so tested here as it is; test/e2e/web-alarms.test.ts shows it drawn in Chromium.

import { expect } from 'chai';
import { ALARM_T0 as T0, alarmReading, type AlarmReading } from '../support/alarms.js';
import { ALARM_HISTORY_PER_DEVICE, AlarmBook } from '../../web/src/devices/alarmModel.js';

let seq = 0;

function alarm(fields: Partial<AlarmReading> & Pick<AlarmReading, 'active'>): AlarmReading {
  seq++;
  return alarmReading({ deviceId: 'monitor-1', seq, code: 'MDC_EVT_LO_VAL_LT_LIM', t: T0 + seq * 1000, priority: 'medium', text: 'SpO2 thấp', ...fields });
}

const live = (localT: number) => ({ localT, past: false });
const past = (localT: number) => ({ localT, past: true });
const SPO2 = { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' };

describe('web alarm model', () => {
  it('pairs start, continue and end by alarmId: updated in place, then moved to the history', () => {
    const book = new AlarmBook();
    book.apply(alarm({ active: true, phase: 'start', alarmId: 'spo2-low', source: { ...SPO2, value: 89 } }), live(1000));
    book.apply(alarm({ active: true, phase: 'start', alarmId: 'hr-low', priority: 'high', text: 'HR thấp' }), live(1500));
    book.apply(alarm({ active: true, phase: 'continue', alarmId: 'spo2-low', text: 'SpO2 thấp 87', source: { ...SPO2, value: 87 } }), live(2000));
    expect(book.sorted().map((a) => [a.key, a.priority, a.text, a.source?.value, a.since, a.state])).to.deep.equal([
      ['hr-low', 'high', 'HR thấp', undefined, 1500, 'active'],
      ['spo2-low', 'medium', 'SpO2 thấp 87', 87, 1000, 'active'],
    ]);

    book.apply(alarm({ active: false, phase: 'end', state: 'inactive', alarmId: 'spo2-low', source: { ...SPO2, value: 93 } }), live(3000));
    expect(book.sorted().map((a) => a.key)).to.deep.equal(['hr-low']);
    expect(book.history()).to.deep.equal([
      { key: 'spo2-low', code: 'MDC_EVT_LO_VAL_LT_LIM', priority: 'medium', text: 'SpO2 thấp', source: { ...SPO2, value: 93 }, since: 1000, endedAt: 3000 },
    ]);
    expect(book.sounding().map((a) => a.key)).to.deep.equal(['hr-low']);
  });

  it('without alarmId pairs by event code, and an end ends every alarm of its code', () => {
    const book = new AlarmBook();
    book.apply(alarm({ active: true, code: 'MDC_EVT_LEAD_OFF', text: 'Lead off' }), live(1000));
    book.apply(alarm({ active: true, code: 'MDC_EVT_LEAD_OFF', text: 'Lead off V1' }), live(1100));
    expect(book.sorted().map((a) => [a.key, a.text])).to.deep.equal([['MDC_EVT_LEAD_OFF', 'Lead off V1']]);
    book.apply(alarm({ active: true, code: 'MDC_EVT_LEAD_OFF', alarmId: 'lead-off-v2' }), live(1200));
    book.apply(alarm({ active: false, code: 'MDC_EVT_LEAD_OFF', text: '' }), live(1300));
    expect(book.sorted()).to.deep.equal([]);
    expect(book.history().map((a) => [a.key, a.text])).to.deep.equal([
      ['lead-off-v2', 'SpO2 thấp'],
      ['MDC_EVT_LEAD_OFF', 'Lead off V1'],
    ]);
  });

  it('a device going offline turns its active alarms unknown; they stay unknown online until a reading says otherwise', () => {
    const book = new AlarmBook();
    book.apply(alarm({ active: true, alarmId: 'a', priority: 'high' }), live(1000));
    book.apply(alarm({ active: true, alarmId: 'b' }), live(1000));
    book.setStatus('offline', 5000);
    expect(book.sorted().map((a) => [a.key, a.state, a.unknownSince])).to.deep.equal([
      ['a', 'unknown', 5000],
      ['b', 'unknown', 5000],
    ]);
    expect(book.sounding()).to.deep.equal([]);
    // Back online: still unknown, nothing sounds.
    book.setStatus('online', 9000);
    expect(book.sorted().map((a) => a.state)).to.deep.equal(['unknown', 'unknown']);
    expect(book.sounding()).to.deep.equal([]);
    // The monitor repeats a: active again; b is reported ended: cleared.
    book.apply(alarm({ active: true, alarmId: 'a', priority: 'high', phase: 'continue' }), live(9500));
    book.apply(alarm({ active: false, alarmId: 'b', phase: 'end' }), live(9600));
    expect(book.sorted().map((a) => [a.key, a.state, a.unknownSince, a.since])).to.deep.equal([['a', 'active', undefined, 1000]]);
    expect(book.history().map((a) => a.key)).to.deep.equal(['b']);
  });

  it('readings from the past about an offline device show as unknown since their time', () => {
    const book = new AlarmBook('offline');
    book.apply(alarm({ active: true, alarmId: 'a' }), past(4000));
    expect(book.sorted().map((a) => [a.state, a.unknownSince])).to.deep.equal([['unknown', 4000]]);
    // A live reading is the device speaking: active.
    book.apply(alarm({ active: true, alarmId: 'a' }), live(6000));
    expect(book.sorted().map((a) => a.state)).to.deep.equal(['active']);
  });

  it('drops a repeated reading and the backlog behind an alarm notice; a restarted journal still gets through', () => {
    const book = new AlarmBook();
    const start = alarm({ active: true, alarmId: 'a', phase: 'start' });
    const cont = alarm({ active: true, alarmId: 'a', phase: 'continue' });
    const end = alarm({ active: false, alarmId: 'a', phase: 'end' });
    // The end jumps the backlog (deviceAlarm), then everything comes in seq order.
    book.apply(end, live(3000));
    book.apply(start, live(3100));
    book.apply(cont, live(3200));
    book.apply(end, live(3300));
    expect(book.sorted()).to.deep.equal([]);
    expect(book.history().map((a) => [a.key, a.since, a.endedAt])).to.deep.equal([['a', undefined, 3000]]);
    // The site's journal was wiped: seqs restart, device time goes on.
    book.apply({ ...alarm({ active: true, alarmId: 'a' }), seq: 1 }, live(4000));
    expect(book.sorted().map((a) => a.key)).to.deep.equal(['a']);
  });

  it('a join-time replay of an ended alarm goes to the history only', () => {
    const book = new AlarmBook();
    book.apply(alarm({ active: false, alarmId: 'old', phase: 'end' }), past(500));
    book.apply(alarm({ active: true, alarmId: 'now', phase: 'continue' }), past(700));
    expect(book.sorted().map((a) => [a.key, a.state, a.since])).to.deep.equal([['now', 'active', 700]]);
    expect(book.history().map((a) => [a.key, a.since, a.endedAt])).to.deep.equal([['old', undefined, 500]]);
  });

  it(`keeps the last ${ALARM_HISTORY_PER_DEVICE} ended alarms, newest first`, () => {
    const book = new AlarmBook();
    for (let i = 0; i < ALARM_HISTORY_PER_DEVICE + 5; i++) {
      book.apply(alarm({ active: true, alarmId: `a${i}` }), live(i * 10));
      book.apply(alarm({ active: false, alarmId: `a${i}` }), live(i * 10 + 5));
    }
    const keys = book.history().map((a) => a.key);
    expect(keys).to.have.length(ALARM_HISTORY_PER_DEVICE);
    expect(keys[0]).to.equal(`a${ALARM_HISTORY_PER_DEVICE + 4}`);
    expect(keys.at(-1)).to.equal('a5');
  });
});
