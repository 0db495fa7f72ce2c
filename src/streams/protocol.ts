// The uplink protocol between a site agent and the hub (namespace /uplink),
// documented in docs/PROTOCOL.md "Uplink protocol". One zod schema per
// message: the hub validates every message at its edge with these, and the
// agent builds its messages against the same types.

import { z } from 'zod';
import type { Assert, ChannelInfo, DeviceStatus, Equivalent, Reading, SameShape } from '../contract/index.js';
import { DEVICE_PROTOCOLS, DEVICE_TYPES } from '../devices/siteConfig.js';

export const UPLINK_NAMESPACE = '/uplink';
/** Bumped only on an incompatible change; the hub refuses a hello of another version. */
export const UPLINK_PROTOCOL_VERSION = 1;

/** Most readings one batch may carry (a batch must also stay under the socket's 1 MB frame cap). */
export const MAX_BATCH_READINGS = 1000;
const MAX_SAMPLES = 10_000;

export const deviceIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'Expected a device id of 1-64 letters, digits, ".", "_" or "-"');
const seq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const time = z.number().finite().nonnegative();

const readingCommon = {
  deviceId: deviceIdSchema,
  seq,
  t: time,
  rt: time,
  code: z.string().min(1).max(128),
  unit: z.string().max(64),
};

export const alarmReadingSchema = z.object({
  ...readingCommon,
  kind: z.literal('alarm'),
  priority: z.enum(['low', 'medium', 'high']),
  text: z.string().max(512),
  active: z.boolean(),
  phase: z.string().max(64).optional(),
  /** `<event code>|<source code>|<instance>`: pairs an alarm's start, updates and end. */
  alarmId: z.string().min(1).max(384).optional(),
  state: z.string().max(64).optional(),
  source: z
    .object({ code: z.string().min(1).max(128), unit: z.string().max(64), value: z.number().finite().nullable() })
    .optional(),
});

export const readingSchema = z.discriminatedUnion('kind', [
  z.object({ ...readingCommon, kind: z.literal('numeric'), value: z.number().finite().nullable() }),
  z.object({
    ...readingCommon,
    kind: z.literal('waveform'),
    sampleRate: z.number().finite().positive().max(100_000),
    samples: z.array(z.number().finite().nullable()).max(MAX_SAMPLES),
  }),
  alarmReadingSchema,
  z.object({ ...readingCommon, kind: z.literal('status'), active: z.boolean(), text: z.string().max(512) }),
]);

const channelSchema = z.object({
  code: z.string().min(1).max(128),
  unit: z.string().max(64),
  kind: z.enum(['numeric', 'waveform', 'alarm', 'status']),
});

const deviceStatusFields = {
  deviceId: deviceIdSchema,
  status: z.enum(['online', 'offline', 'degraded']),
  reason: z.string().max(256).optional(),
  channels: z.array(channelSchema).max(256),
};

/** A seq span the agent will never send (the journal's cap dropped it, or it was lost to corruption). */
export const gapSchema = z.object({
  from: seq,
  to: seq,
  reason: z.enum(['journal-cap', 'lost']),
});

/** Request 'clock': the agent's transmit time; the hub answers with its receive and transmit times. */
export const clockRequestSchema = z.object({ t0: time });

/** A fresh agent token for the same site and grant; moves the connection's expiry without a new hello. */
export const refreshTokenSchema = z.object({ token: z.string().min(1).max(8192) });

/** Request 'hello': who the agent is, its clock, and per device what it has and what the hub acknowledged. */
export const helloSchema = z.object({
  version: z.literal(UPLINK_PROTOCOL_VERSION),
  siteId: z.string().min(1).max(128),
  clock: z.object({ offsetMs: z.number().finite(), rttMs: z.number().finite().nonnegative() }),
  devices: z
    .array(
      z.object({
        ...deviceStatusFields,
        conferenceId: z.string().min(1).max(64),
        type: z.enum(DEVICE_TYPES),
        model: z.string().min(1).max(128),
        protocol: z.enum(DEVICE_PROTOCOLS),
        /** Highest seq the agent's journal has as acknowledged. */
        acked: z.number().int().min(0),
        /** Highest seq the agent's journal has assigned. */
        lastSeq: z.number().int().min(0),
      }),
    )
    .max(256),
});

/**
 * Request 'batch': one device's seqs from..to, every seq in the span either a
 * reading or inside a gap, readings in ascending seq order.
 */
export const batchSchema = z
  .object({
    deviceId: deviceIdSchema,
    from: seq,
    to: seq,
    readings: z.array(readingSchema).max(MAX_BATCH_READINGS),
    // Gaps alternate with readings (a capped span keeps its numerics), so at most one more than the readings.
    gaps: z.array(gapSchema).max(MAX_BATCH_READINGS + 1).default([]),
  })
  .superRefine((batch, ctx) => {
    const problem = describeCoverage(batch);
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  });

/** Request 'alarm': an alarm sent ahead of its device's backlog; a notice, not the reading's delivery. */
export const alarmNoticeSchema = z.object({ deviceId: deviceIdSchema, reading: alarmReadingSchema });

/** Request 'status': device status changes, journal depth and driver counters. */
export const statusSchema = z.object({
  devices: z.array(z.object(deviceStatusFields)).max(256),
  journal: z
    .object({
      pending: z.number().int().min(0),
      bytes: z.number().int().min(0),
      devices: z.record(z.number().int().min(0)),
    })
    .optional(),
  /** Per protocol: frames the drivers rejected since the agent started (totals, not deltas). */
  parseErrors: z.record(z.number().int().min(0)).optional(),
});

export type Gap = z.infer<typeof gapSchema>;
export type HelloMessage = z.infer<typeof helloSchema>;
export type HelloDevice = HelloMessage['devices'][number];
export type BatchMessage = z.input<typeof batchSchema>;
export type ParsedBatch = z.output<typeof batchSchema>;
export type AlarmNotice = z.infer<typeof alarmNoticeSchema>;
export type StatusMessage = z.infer<typeof statusSchema>;

// The readings an agent sends are the contract's (src/contract/readings.ts):
// a field only one side has, or one the schema types differently, fails the
// build. `late` is the hub's to set, not the agent's: the schema strips it.
type AgentReading = Reading extends infer R ? (R extends unknown ? Omit<R, 'late'> : never) : never;
export type UplinkReadingsAreContractReadings = Assert<SameShape<z.infer<typeof readingSchema>, AgentReading>>;
export type UplinkChannelsAreContractChannels = Assert<SameShape<z.infer<typeof channelSchema>, ChannelInfo>>;
export type UplinkStatusIsContractStatus = Assert<Equivalent<StatusMessage['devices'][number]['status'], DeviceStatus>>;

export interface HelloResult {
  /** Per accepted device: the highest contiguous seq the hub has stored; resend from the next one. */
  devices: Array<{ deviceId: string; acked: number }>;
  /** Devices the hub refused (another site's, a conference the token does not grant). */
  rejected: Array<{ deviceId: string; code: string; message: string }>;
}

export type UplinkReply<T extends object = object> =
  | ({ ok: true } & T)
  | { ok: false; error: { code: string; message: string }; acked?: number };

/** Why the seqs of a batch do not tile from..to exactly, or undefined when they do. */
export function describeCoverage(batch: { deviceId: string; from: number; to: number; readings: Array<{ deviceId: string; seq: number }>; gaps: Gap[] }): string | undefined {
  if (batch.to < batch.from) return `to (${batch.to}) is below from (${batch.from})`;
  const spans: Array<{ from: number; to: number; what: string }> = [];
  for (const r of batch.readings) {
    if (r.deviceId !== batch.deviceId) return `reading seq ${r.seq} is of device ${r.deviceId}, not ${batch.deviceId}`;
    spans.push({ from: r.seq, to: r.seq, what: `reading ${r.seq}` });
  }
  for (const g of batch.gaps) {
    if (g.to < g.from) return `gap ${g.from}..${g.to} runs backwards`;
    spans.push({ from: g.from, to: g.to, what: `gap ${g.from}..${g.to}` });
  }
  if (spans.length === 0) return 'a batch needs at least one reading or gap';
  // Readings must already be in ascending order: a seq going backwards is an error, not something to sort.
  for (let i = 1; i < batch.readings.length; i++) {
    if (batch.readings[i]!.seq <= batch.readings[i - 1]!.seq) {
      return `seq goes backwards inside the batch: ${batch.readings[i]!.seq} after ${batch.readings[i - 1]!.seq}`;
    }
  }
  spans.sort((a, b) => a.from - b.from);
  let next = batch.from;
  for (const span of spans) {
    if (span.from < next) return `${span.what} overlaps seqs already covered`;
    if (span.from > next) return `seqs ${next}..${span.from - 1} are neither readings nor a gap`;
    next = span.to + 1;
  }
  if (next !== batch.to + 1) return `${spans[spans.length - 1]!.what} does not end at to (${batch.to})`;
  return undefined;
}
