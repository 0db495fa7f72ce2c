import { isIP } from 'node:net';
import { z } from 'zod';

// The protocol settings of ONE HL7 device. Devices whose server-mode host:port
// match share one listener (see createHl7Driver); listener-wide settings
// (timezoneOffset, processingId, maxFrameBytes, idleTimeoutMs, maxConnections,
// allowedSenders) must then agree.

const utcOffset = z
  .string()
  .regex(/^[+-](?:0\d|1[0-4])[0-5]\d$/, 'expected a UTC offset like +0700');

/** '10.0.5.21', '10.0.5.0/24', 'fd00::/8', '::1': an IPv4/IPv6 address or CIDR block. */
export function parseSender(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', prefixText, extra] = entry.split('/');
  if (extra !== undefined) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

const senderEntry = z
  .string()
  .max(64)
  .refine((s) => parseSender(s) !== undefined, { message: 'expected an IPv4/IPv6 address or CIDR block like 10.0.5.0/24 (no host names)' });

export const hl7DeviceConfigSchema = z
  .object({
    /** server: listen for a gateway/monitor (PCD-01); client: connect out to a legacy Mindray PDS monitor. */
    mode: z.enum(['server', 'client']).default('server'),
    /** Server: address to bind (use '0.0.0.0' only deliberately). Client: the monitor's address. */
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(4601),
    /** OBX-18 equipment id (EUI-64) that identifies this device on a shared listener. */
    equipmentId: z.string().min(1).max(64).optional(),
    /** Offset applied to HL7 times that carry none (the site's timezone). */
    timezoneOffset: utcOffset.default('+0700'),
    /** No message from the device for this long: status offline. */
    staleAfterMs: z.number().int().min(100).max(3_600_000).default(10_000),
    /** MSH-11 the listener accepts; others get AR. */
    processingId: z.enum(['P', 'T', 'D']).default('P'),
    /** Frames larger than this are discarded (and counted). */
    maxFrameBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(1024 * 1024),
    /**
     * Server mode: a connection that sends no byte for this long is closed (a
     * gateway reconnects). Must exceed staleAfterMs, so a silent device is first
     * reported stale and only then disconnected (the two never race).
     */
    idleTimeoutMs: z.number().int().min(1000).max(86_400_000).default(300_000),
    /** Server mode: concurrent connections on the listener; more are refused and counted. */
    maxConnections: z.number().int().min(1).max(1024).default(16),
    /**
     * Server mode: senders (IPv4/IPv6 addresses or CIDR blocks) allowed to connect;
     * others are closed at once and counted. Empty = any (the listener warns at
     * start when it binds a non-loopback address with no allowlist).
     */
    allowedSenders: z.array(senderEntry).max(256).default([]),
    /** Client mode: keep-alive message period (PDS expects 3 s). */
    heartbeatMs: z.number().int().min(100).max(60_000).default(3000),
    /** Client mode: reconnect backoff bounds. */
    reconnectMinMs: z.number().int().min(10).max(60_000).default(250),
    reconnectMaxMs: z.number().int().min(10).max(300_000).default(10_000),
    connectTimeoutMs: z.number().int().min(100).max(60_000).default(5000),
    /**
     * Client mode: readings held in memory while the agent's journal refuses them.
     * A PDS monitor never resends (it waits for no ACK), so this is all that stands
     * between a refusing journal and a lost message. ~1 h of a monitor's numerics.
     */
    maxBufferedReadings: z.number().int().min(100).max(1_000_000).default(50_000),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.mode === 'server' && s.idleTimeoutMs <= s.staleAfterMs) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['idleTimeoutMs'],
        message: `must exceed staleAfterMs (${s.staleAfterMs}): a silent device is reported stale before it is disconnected`,
      });
    }
  });

/** What a caller writes (defaults may be left out). */
export type Hl7DeviceConfig = z.input<typeof hl7DeviceConfigSchema>;
/** After validation, with defaults applied. */
export type ResolvedHl7DeviceConfig = z.output<typeof hl7DeviceConfigSchema>;

/** '+0700' -> 420 (minutes east of UTC). */
export function offsetMinutes(offset: string): number {
  const sign = offset.startsWith('-') ? -1 : 1;
  return sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(3, 5)));
}

/** EUI-64 ids arrive as 000F14049B507238, 00-0F-14-..., or lower case: compare them in one form. */
export function normalizeEquipmentId(id: string): string {
  return id.replace(/[-:\s]/g, '').toUpperCase();
}
