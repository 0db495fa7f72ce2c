import { z } from 'zod';

// The records section of the hub's configuration (docs/RECORDS.md); src/config/schema.ts composes it.

export const recordsConfigSchema = z
  .object({
    /** Off: nothing is recorded and /api/records answers 404. */
    enabled: z.boolean(),
    /** The records' directory: records.sqlite (when databaseUrl is null) and, later, recordings. Relative to the working directory. */
    dir: z.string().min(1),
    /** PostgreSQL instead of SQLite (DATABASE_URL), e.g. postgres://user:pass@host:5432/hoichan. */
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .nullable(),
    /** This hub's name in the records; null: the host name. Give each hub on one database its own. */
    hubId: z.string().min(1).max(128).nullable(),
    /** Sessions that ended longer ago than this are deleted, with everything recorded of them, by a daily job. */
    retentionDays: z.number().int().min(1).max(36500),
    /** Writes waiting for the database; past it bulk writes (numerics, strips, counters) are dropped and counted, past twice it all. */
    maxQueue: z.number().int().min(100).max(1_000_000),
    /** At most one stored numeric per device and code per this many ms. */
    numericIntervalMs: z.number().int().min(0).max(3_600_000),
    /** One stored waveform strip: this long, every waveformEveryMs and at each alarm's start. */
    waveformWindowMs: z.number().int().min(1000).max(60_000),
    waveformEveryMs: z.number().int().min(1000),
    /** Strips kept per device channel per session (0: no waveforms are stored). */
    maxWaveformWindowsPerChannel: z.number().int().min(0).max(10_000),
    /** FHIR R4 server base URL: each ended session is POSTed there as a transaction Bundle (durable outbox); null: off. */
    fhirEndpoint: z.string().url().nullable(),
    /** Sent as the Authorization header of those POSTs (e.g. "Bearer ..."); keep it in HOICHAN_FHIR_AUTHORIZATION. */
    fhirAuthorization: z.string().min(1).nullable(),
    /** First retry after a refused or failed POST; doubles per attempt up to fhirRetryMaxMs. */
    fhirRetryInitialMs: z.number().int().min(50),
    fhirRetryMaxMs: z.number().int().min(1000),
  })
  .strict();

export type RecordsConfig = z.infer<typeof recordsConfigSchema>;

/** Cross-field checks, reported under the records section's keys. */
export function checkRecords(records: RecordsConfig, ctx: z.RefinementCtx): void {
  if (records.fhirRetryMaxMs < records.fhirRetryInitialMs) {
    ctx.addIssue({ code: 'custom', path: ['records', 'fhirRetryMaxMs'], message: 'must be at least records.fhirRetryInitialMs' });
  }
  if (records.waveformEveryMs < records.waveformWindowMs) {
    ctx.addIssue({ code: 'custom', path: ['records', 'waveformEveryMs'], message: 'must be at least records.waveformWindowMs' });
  }
}
