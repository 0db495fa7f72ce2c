import { z } from 'zod';
import type { Assert, Equivalent, SameShape, RequestName as ContractRequestName, RequestPayload as ContractPayload } from '../contract/index.js';
import { MAX_ON_STAGE, MAX_THUMBNAILS } from '../media/lastN.js';

// One schema per request of the signaling contract (docs/PROTOCOL.md,
// "Requests and replies"; the types are in src/contract/signaling.ts).
// mediasoup's own parameter objects are checked for shape here and for
// meaning by mediasoup itself; unknown top-level keys are ignored so clients
// written against later extensions still work.

const id = z.string().min(1).max(64);
const conferenceId = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _ . or -');

const dtlsParameters = z.object({
  role: z.enum(['auto', 'client', 'server']).optional(),
  fingerprints: z
    .array(z.object({ algorithm: z.enum(['sha-1', 'sha-224', 'sha-256', 'sha-384', 'sha-512']), value: z.string().min(1).max(256) }))
    .min(1)
    .max(8),
});

const codec = z
  .object({
    mimeType: z.string().regex(/^(audio|video)\/[\w.-]+$/i, 'must look like audio/opus or video/VP8'),
    clockRate: z.number().int().positive(),
    payloadType: z.number().int().min(0).max(127).optional(),
    channels: z.number().int().positive().optional(),
    parameters: z.record(z.unknown()).optional(),
    rtcpFeedback: z.array(z.object({ type: z.string(), parameter: z.string().optional() })).optional(),
  })
  .passthrough();

const rtpParameters = z
  .object({
    mid: z.string().max(32).optional(),
    codecs: z.array(codec.extend({ payloadType: z.number().int().min(0).max(127) })).min(1).max(32),
    headerExtensions: z.array(z.object({ uri: z.string(), id: z.number().int() }).passthrough()).max(32).optional(),
    encodings: z.array(z.record(z.unknown())).max(8).optional(),
    rtcp: z.record(z.unknown()).optional(),
  })
  .passthrough();

const rtpCapabilities = z
  .object({
    codecs: z.array(codec.extend({ kind: z.enum(['audio', 'video']) })).max(64).optional(),
    headerExtensions: z.array(z.record(z.unknown())).max(64).optional(),
  })
  .passthrough();

export const requestSchemas = {
  join: z.object({
    conferenceId,
    /** Accepted for older clients and ignored: the name shown is the token's `name`. */
    displayName: z.string().max(256).optional(),
  }),
  createTransport: z.object({ direction: z.enum(['send', 'recv']) }),
  connectTransport: z.object({ transportId: id, dtlsParameters }),
  produce: z.object({
    transportId: id,
    kind: z.enum(['audio', 'video']),
    rtpParameters,
    source: z.enum(['camera', 'microphone', 'screen', 'ultrasound', 'device-video']).optional(),
  }),
  consume: z.object({ transportId: id, producerId: id, rtpCapabilities }),
  resumeConsumer: z.object({ consumerId: id }),
  pauseProducer: z.object({ producerId: id }),
  resumeProducer: z.object({ producerId: id }),
  closeProducer: z.object({ producerId: id }),
  setConsumerLayers: z.object({
    consumerId: id,
    spatialLayer: z.number().int().min(0).max(3),
    temporalLayer: z.number().int().min(0).max(3).optional(),
  }),
  restartIce: z.object({ transportId: id }),
  /** Extension (last-N): the producers the viewer shows large, and how many speaker thumbnails. */
  setVideoPreferences: z.object({
    onStage: z.array(id).max(MAX_ON_STAGE),
    thumbnails: z.number().int().min(0).max(MAX_THUMBNAILS),
  }),
  leave: z.object({}),
  /** A fresh token for the same subject, role and conference; moves the socket's expiry without rejoining. */
  refreshToken: z.object({ token: z.string().min(1).max(8192) }),
  /** Extension (docs/RECORDING.md): a specialist of the conference starts or stops its recording. */
  startRecording: z.object({ conferenceId }),
  stopRecording: z.object({ conferenceId }),
} as const;

export type RequestName = keyof typeof requestSchemas;
/** A payload as its schema let it through: the contract's payload, with mediasoup's objects as checked for shape. */
export type RequestPayload<N extends RequestName> = z.infer<(typeof requestSchemas)[N]>;

/** Indexable by a generic request name: what parsing request N yields is RequestPayload<N>. */
export const requestSchemaFor: { [N in RequestName]: z.ZodType<RequestPayload<N>, z.ZodTypeDef, unknown> } = requestSchemas;

// ---- compile-time agreement with src/contract -------------------------------
// A request without a schema, a schema without a request, a payload field
// only one side has, or one whose type differs from the contract's fails the build. mediasoup's parameter
// objects (the schema checks their shape, passthrough, and mediasoup their
// meaning) are compared by presence, not by type.

type MediasoupField = 'dtlsParameters' | 'rtpParameters' | 'rtpCapabilities';
type Comparable<T> = { [K in keyof T]: K extends MediasoupField ? unknown : T[K] };

export type SchemasCoverContract = Assert<Equivalent<RequestName, ContractRequestName>>;
export type SchemasAgreeWithContract = Assert<
  { [N in RequestName]: SameShape<Comparable<RequestPayload<N>>, Comparable<ContractPayload<N>>> }[RequestName]
>;
