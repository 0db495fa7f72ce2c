import { z } from 'zod';
import type { types } from 'mediasoup';
import { DEVICE_TYPES } from '../devices/siteConfig.js';
import { deviceIdSchema, gapSchema, readingSchema } from '../streams/protocol.js';

// What hubs write to Redis and send each other over the cluster bus: one zod
// schema per message, checked on arrival (a hub of another version, or
// anything else that can write to Redis, is not trusted to be well-formed).

const id = z.string().min(1).max(128);
const conferenceId = z.string().min(1).max(64);
const hubId = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/);

export const hubLoadSchema = z.object({
  workers: z.number().int().min(0),
  conferences: z.number().int().min(0),
  peers: z.number().int().min(0),
  consumers: z.number().int().min(0),
  /** Bits per second into and out of this hub's producers and consumers (last stats interval). */
  bitrateIn: z.number().min(0),
  bitrateOut: z.number().min(0),
  /** Streams piped to and from other hubs. */
  pipesOut: z.number().int().min(0),
  pipesIn: z.number().int().min(0),
});
export type HubLoad = z.infer<typeof hubLoadSchema>;

/** A hub's directory entry, rewritten at every heartbeat with a TTL. */
export const hubRecordSchema = z.object({
  hubId,
  region: z.string().min(1).max(64),
  url: z.string().url(),
  mediaAddress: z.string().min(1).max(256),
  startedAt: z.number().int(),
  heartbeatAt: z.number().int(),
  draining: z.boolean(),
  load: hubLoadSchema,
  /** Its cluster.maxLoad (consumers): past it, it sends joins elsewhere and takes no redirected ones. */
  maxLoad: z.number().int().min(1).nullable(),
  /** The conferences this hub hosts now (at most media.maxConferences). */
  conferences: z.array(conferenceId).max(10_000),
});
export type HubRecord = z.infer<typeof hubRecordSchema>;

const roleSchema = z.enum(['specialist', 'site', 'engineer']);
const sourceSchema = z.enum(['camera', 'microphone', 'screen', 'ultrasound', 'device-video']);
export const peerSummarySchema = z.object({ peerId: id, displayName: z.string().max(256), role: roleSchema });
export const producerInfoSchema = z.object({ producerId: id, peerId: id, kind: z.enum(['audio', 'video']), source: sourceSchema });

/**
 * One hub's part of a conference: its peers and producers. `epoch` names
 * this hub's instance of the conference (a conference closed and opened
 * again starts a new one); `rev` rises with every change, and the bus event
 * of a change carries the same rev, so a reader knows whether the snapshot
 * or the event is newer.
 */
export const conferenceStateSchema = z.object({
  hubId,
  epoch: id,
  rev: z.number().int().min(0),
  peers: z.array(peerSummarySchema).max(1024),
  producers: z.array(producerInfoSchema).max(8192),
});
export type ConferenceState = z.infer<typeof conferenceStateSchema>;

const channelSchema = z.object({ code: z.string().min(1).max(128), unit: z.string().max(64), kind: z.enum(['numeric', 'waveform', 'alarm', 'status']) });
export const deviceInfoSchema = z.object({
  deviceId: deviceIdSchema,
  conferenceId,
  type: z.enum(DEVICE_TYPES),
  model: z.string().max(128),
  protocol: z.string().max(64),
  status: z.enum(['online', 'offline', 'degraded']),
  reason: z.string().max(256).optional(),
  channels: z.array(channelSchema).max(256),
});
/** The hub's own mark on a reading (late) travels with it. */
const busReadingSchema = readingSchema.and(z.object({ late: z.boolean().optional() }));
export const sessionSchema = z.object({ id, conferenceId, startSeq: z.number().int().min(1) });

/** A device in {hoichan}:devices:<conference>: the hub its agent is connected to, and what that hub last said of it. */
export const deviceEntrySchema = z.object({ hubId, info: deviceInfoSchema, session: sessionSchema.nullable(), stored: z.number().int().min(0) });
export type DeviceEntry = z.infer<typeof deviceEntrySchema>;

const stateChange = { conferenceId, epoch: id, rev: z.number().int().min(1) };
const base = { hub: hubId };

const pipeSrtpSchema = z.object({ cryptoSuite: z.enum(['AEAD_AES_256_GCM', 'AEAD_AES_128_GCM', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32']), keyBase64: z.string().min(1).max(256) });
const rtpParametersSchema = z
  .object({
    codecs: z.array(z.object({ mimeType: z.string().min(1).max(64), payloadType: z.number().int(), clockRate: z.number().int() }).passthrough()).min(1).max(16),
    encodings: z.array(z.object({}).passthrough()).max(16).optional(),
    headerExtensions: z.array(z.object({}).passthrough()).max(32).optional(),
    rtcp: z.object({}).passthrough().optional(),
  })
  .passthrough();

export const busMessageSchema = z.discriminatedUnion('type', [
  // Peer events of a conference (channel of the conference).
  z.object({ ...base, ...stateChange, type: z.literal('peerJoined'), peer: peerSummarySchema }),
  z.object({ ...base, ...stateChange, type: z.literal('peerLeft'), peerId: id }),
  z.object({ ...base, ...stateChange, type: z.literal('newProducer'), producer: producerInfoSchema }),
  z.object({ ...base, ...stateChange, type: z.literal('producerClosed'), producerId: id }),
  z.object({ ...base, conferenceId, type: z.literal('activeSpeaker'), peerId: id, producerId: id }),
  // Device flow of a conference: readings as stored (seq order per device), status, early alarms.
  z.object({
    ...base,
    conferenceId,
    type: z.literal('deviceReadings'),
    deviceId: deviceIdSchema,
    session: sessionSchema,
    /** The device's watermark after this batch: the seqs up to it are in the history store. */
    to: z.number().int().min(0),
    readings: z.array(busReadingSchema).max(1000),
    gaps: z.array(gapSchema).max(1000).optional(),
  }),
  z.object({ ...base, conferenceId, type: z.literal('deviceStatus'), info: deviceInfoSchema, session: sessionSchema.nullable(), stored: z.number().int().min(0) }),
  z.object({ ...base, conferenceId, type: z.literal('deviceAlarm'), deviceId: deviceIdSchema, reading: busReadingSchema }),
  // Pipe set-up (channel of the hub asked) and its answer (channel of the asking hub).
  z.object({
    ...base,
    type: z.literal('pipeRequest'),
    requestId: id,
    conferenceId,
    producerId: id,
    pipeId: id,
    ip: z.string().min(1).max(256),
    port: z.number().int().min(1).max(65535),
    srtp: pipeSrtpSchema.nullable(),
  }),
  z.object({
    ...base,
    type: z.literal('pipeReply'),
    requestId: id,
    ok: z.literal(true),
    ip: z.string().min(1).max(256),
    port: z.number().int().min(1).max(65535),
    srtp: pipeSrtpSchema.nullable(),
    kind: z.enum(['audio', 'video']),
    rtpParameters: rtpParametersSchema,
    paused: z.boolean(),
  }),
  z.object({ ...base, type: z.literal('pipeRefused'), requestId: id, code: z.enum(['not_found', 'unavailable', 'internal']), message: z.string().max(512) }),
  /** The consuming hub no longer needs a pipe (its conference closed there). */
  z.object({ ...base, type: z.literal('pipeClosed'), pipeId: id }),
  /** A hub leaving in order (drained or closed): the others drop it now rather than at its TTL. */
  z.object({ ...base, type: z.literal('hubLeft') }),
]);
export type BusMessage = z.infer<typeof busMessageSchema>;
export type BusMessageOf<T extends BusMessage['type']> = Extract<BusMessage, { type: T }>;

/** mediasoup's RtpParameters, as the pipe consumer on the other hub gave them: checked in outline here, in full by mediasoup when produced. */
export function asRtpParameters(parameters: z.infer<typeof rtpParametersSchema>): types.RtpParameters {
  return parameters as unknown as types.RtpParameters;
}
