// The normalized device reading model: docs/PROTOCOL.md, "Device readings".
// Public contract (viewers and the uplink speak it): extend it, never change
// it, and document extensions there. Types only.

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
  /** The device's own alert text where it sends one (HL7: MDC_ATTR_ALERT_TEXT), else the event's name, else the code. */
  text: string;
  /** Whether the condition is present now: the device's state when it sends one, else its phase. */
  active: boolean;
  /** Extension: PCD-04 event phase (start, continue, end...) whenever the device sends one, lower case. */
  phase?: string;
  /**
   * Extension: stable identity of this alarm condition within its device, the
   * same on its start, continue and end messages, so a viewer can pair them:
   * `<event code>|<source code or ''>|<source instance>` (HL7: the OBX-4 group
   * prefix; docs/devices/hl7.md "Alarm identity").
   */
  alarmId?: string;
  /** Extension: the device's alarm state as sent, lower case (active, inactive, latched...). */
  state?: string;
  /** Extension: the parameter the alarm is about and its value in the alarm message (null: invalid/absent). */
  source?: AlarmSource;
}

export interface AlarmSource {
  /** Reading code of the parameter, e.g. MDC_PULS_OXIM_SAT_O2. */
  code: string;
  /** UCUM unit; '' when unitless or not sent. */
  unit: string;
  value: number | null;
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
