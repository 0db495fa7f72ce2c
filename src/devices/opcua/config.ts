import { z } from 'zod';

// Settings of ONE device read over OPC UA. There is no OPC UA companion spec for
// patient monitors (protocols/devices.md 4c), so every value the driver reads is
// named explicitly by a nodeId -> MDC code mapping.

export const OPCUA_SECURITY_MODES = ['None', 'Sign', 'SignAndEncrypt'] as const;
export const OPCUA_SECURITY_POLICIES = [
  'None',
  'Basic256Sha256',
  'Aes128_Sha256_RsaOaep',
  'Aes256_Sha256_RsaPss',
  // Deprecated by the OPC Foundation; kept for older device middleware.
  'Basic256',
  'Basic128Rsa15',
] as const;

/** What a secure channel uses when the site config names a mode but no policy. */
export const DEFAULT_SECURE_POLICY = 'Basic256Sha256' as const;

// The NodeId string syntax of OPC UA Part 6 §5.3.1.10: optional ns=<index>; or
// nsu=<uri>;, then i=<uint32>, s=<string>, g=<guid> or b=<base64>. Checked
// here without node-opcua so that validating a site config (hub, agent with
// no OPC UA device) does not load it; the driver hands the string to node-opcua.
const NODE_ID = /^(?:(?:ns=\d{1,5}|nsu=[^;]+);)?(?:i=\d{1,10}|s=.+|g=[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|b=[A-Za-z0-9+/]+={0,2})$/s;

function isNodeIdString(text: string): boolean {
  const m = NODE_ID.exec(text);
  if (!m) return false;
  const ns = /^ns=(\d+);/.exec(text);
  const numeric = /(?:^|;)i=(\d+)$/.exec(text);
  return (!ns || Number(ns[1]) <= 0xffff) && (!numeric || Number(numeric[1]) <= 0xffffffff);
}

const nodeIdString = z.string().refine(
  isNodeIdString,
  { message: 'not an OPC UA nodeId (expected e.g. ns=1;s=Monitor.HR or ns=2;i=1001)' },
);

export const opcuaMappingSchema = z
  .object({
    /** IEEE 11073-10101 reference id, e.g. MDC_ECG_HEART_RATE. */
    code: z.string().min(1),
    /** UCUM unit, '' when unitless. */
    unit: z.string(),
    kind: z.enum(['numeric', 'waveform']).default('numeric'),
    /** Samples per second of an array value; required for waveforms. */
    sampleRate: z.number().positive().optional(),
    /** reading = raw * scale + offset (device counts -> UCUM unit). */
    scale: z.number().finite().optional(),
    offset: z.number().finite().optional(),
    /** Overrides the device-level samplingIntervalMs / queueSize for this node. */
    samplingIntervalMs: z.number().min(-1).optional(),
    queueSize: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine((mapping, ctx) => {
    if (mapping.kind === 'waveform' && mapping.sampleRate === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['sampleRate'], message: 'Required for kind "waveform"' });
    }
  });

export const opcuaDeviceConfigSchema = z
  .object({
    endpoint: z.string().regex(/^opc\.tcp:\/\/[^/\s]+/, 'Expected an opc.tcp:// endpoint URL'),
    /**
     * Encrypted unless the site config says otherwise: readings are health data.
     * "None" only when written here (the driver warns at start).
     */
    securityMode: z.enum(OPCUA_SECURITY_MODES).default('SignAndEncrypt'),
    /** Default: Basic256Sha256, or None when securityMode is "None". */
    securityPolicy: z.enum(OPCUA_SECURITY_POLICIES).optional(),
    /** User name token; anonymous when absent. Never logged. */
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    publishingIntervalMs: z.number().int().min(10).default(100),
    /** 0 = report every change (exception based), -1 = use the publishing interval. */
    samplingIntervalMs: z.number().min(-1).default(0),
    /** Values the server may hold per node between publishes; waveform blocks need >= publish/block period. */
    queueSize: z.number().int().positive().default(20),
    discardOldest: z.boolean().default(true),
    /**
     * StatusValueTimestamp reports a rewrite of an unchanged value (HR still 72) as a fresh
     * reading; use StatusValue for servers that reject data change filters.
     */
    dataChangeTrigger: z.enum(['StatusValue', 'StatusValueTimestamp']).default('StatusValueTimestamp'),
    /** Which sample an array value's SourceTimestamp marks (OpenICE: the last one). */
    waveformTimestamp: z.enum(['lastSample', 'firstSample']).default('lastSample'),
    /** Longest wait between reconnection attempts. */
    reconnectMaxDelayMs: z.number().int().min(100).default(10_000),
    /** Client certificate store (own/, trusted/, rejected/). Defaults to ~/.hoichan/pki/opcua. */
    pkiDir: z.string().min(1).optional(),
    /**
     * Trust a server certificate not yet in pkiDir/trusted (trust on first use).
     * Off by default: an engineer copies the device's certificate into
     * pkiDir/trusted/certs (docs/devices/opcua.md).
     */
    acceptUnknownServerCertificate: z.boolean().default(false),
    /** nodeId -> what the value is. */
    mappings: z
      .record(nodeIdString, opcuaMappingSchema)
      .refine((m) => Object.keys(m).length > 0, { message: 'At least one nodeId mapping is required' }),
  })
  .strict()
  .superRefine((settings, ctx) => {
    const plain = settings.securityMode === 'None';
    if (settings.securityPolicy !== undefined && plain !== (settings.securityPolicy === 'None')) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['securityPolicy'],
        message: plain
          ? 'Must be "None" when securityMode is "None"'
          : `Must not be "None" when securityMode is "${settings.securityMode}"`,
      });
    }
    if ((settings.username === undefined) !== (settings.password === undefined)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: [settings.username === undefined ? 'username' : 'password'],
        message: 'username and password must be given together',
      });
    }
  })
  .transform((settings) => ({
    ...settings,
    securityPolicy: settings.securityPolicy ?? (settings.securityMode === 'None' ? ('None' as const) : DEFAULT_SECURE_POLICY),
  }));

export type OpcuaDeviceConfig = z.output<typeof opcuaDeviceConfigSchema>;
/** What a config file may contain (defaults not yet applied). */
export type OpcuaDeviceConfigInput = z.input<typeof opcuaDeviceConfigSchema>;
export type OpcuaMapping = z.output<typeof opcuaMappingSchema>;
