// The reading and device model is part of the public contract: its types live
// in src/contract/readings.ts. Re-exported here so drivers and the agent keep
// their import path.
export type {
  AlarmBody,
  AlarmPriority,
  AlarmSource,
  ChannelInfo,
  DeviceInfo,
  DeviceStatus,
  DeviceType,
  NumericBody,
  Reading,
  ReadingBody,
  ReadingKind,
  StatusBody,
  WaveformBody,
} from '../contract/readings.js';
