// The normalized device reading model: DESIGN.md section 4. This is a public
// contract (viewers and the uplink speak it); extend it, never change it, and
// document extensions in docs/PROTOCOL.md.

export type ReadingKind = 'numeric' | 'waveform' | 'alarm' | 'status';
export type AlarmPriority = 'low' | 'medium' | 'high';
export type DeviceType = 'ecg' | 'vitals' | 'spo2' | 'ultrasound' | 'ventilator' | 'other';
export type DeviceStatus = 'online' | 'offline' | 'degraded';

interface ReadingCommon {
  /** IEEE 11073-10101 reference id, e.g. MDC_ECG_HEART_RATE. */
  code: string;
  /** UCUM unit, e.g. '/min', '%', 'mm[Hg]', 'mV', 'Cel'; '' when unitless. */
  unit: string;
  /** Device time (ms since epoch) where the device gives one, else agent receipt time. */
  t: number;
  /** Extension: agent receipt time (ms since epoch, agent clock). */
  rt: number;
}

export interface NumericBody extends ReadingCommon {
  kind: 'numeric';
  /** null when the device sent an invalid-value sentinel (-999, -100, 8388607...). */
  value: number | null;
}

export interface WaveformBody extends ReadingCommon {
  kind: 'waveform';
  /** Samples per second. */
  sampleRate: number;
  /** One channel; t is the time of the first sample. null marks an invalid sample. */
  samples: (number | null)[];
}

export interface AlarmBody extends ReadingCommon {
  kind: 'alarm';
  priority: AlarmPriority;
  text: string;
  active: boolean;
  /** Extension: PCD-04 event phase (start, continue, end...) where the device gives one. */
  phase?: string;
  /** Extension: stable identity of this alarm within its device (event, source parameter and instance), pairing start, continue and end. */
  alarmId?: string;
  /** Extension: MDC_ATTR_ALARM_STATE as sent, lower case (active, inactive, latched...). */
  state?: string;
  /** Extension: the parameter the alarm is about, with its value in the same message. */
  source?: { code: string; unit: string; value: number | null };
}

export interface StatusBody extends ReadingCommon {
  kind: 'status';
  /** Whether the condition named by code holds (e.g. finger out of the probe). */
  active: boolean;
  text: string;
}

/** What a driver produces: a reading before the agent gives it identity and order. */
export type ReadingBody = NumericBody | WaveformBody | AlarmBody | StatusBody;

/** A reading with identity: seq rises by one per reading per device and survives restarts. */
export type Reading = ReadingBody & {
  deviceId: string;
  seq: number;
  /** Extension: set by the hub when the reading was delivered after an uplink outage. */
  late?: boolean;
};

export interface ChannelInfo {
  code: string;
  unit: string;
  kind: ReadingKind;
}

export interface DeviceInfo {
  deviceId: string;
  conferenceId: string;
  type: DeviceType;
  model: string;
  protocol: string;
  status: DeviceStatus;
  /** Extension: why the device is degraded or offline. */
  reason?: string;
  channels: ChannelInfo[];
}
