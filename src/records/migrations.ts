// The records schema, as numbered migrations applied in order, once each, in
// one transaction per migration. The same statements run on SQLite and
// PostgreSQL: TEXT, INTEGER, BIGINT (milliseconds since 1970) and DOUBLE
// PRECISION only, ids made by the hub (UUIDs), no engine-specific defaults.
// Never edit a released migration: add the next one.

import type { SqlDriver } from './sql.js';

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

const cascade = 'NOT NULL REFERENCES sessions(id) ON DELETE CASCADE';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'consultation records',
    statements: [
      `CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        conference_id TEXT NOT NULL,
        hub_id TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        ended_at BIGINT,
        end_reason TEXT
      )`,
      'CREATE INDEX sessions_started ON sessions (started_at)',
      'CREATE INDEX sessions_conference ON sessions (conference_id, started_at)',
      `CREATE TABLE participants (
        id TEXT PRIMARY KEY,
        session_id TEXT ${cascade},
        peer_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        display_name TEXT NOT NULL,
        role TEXT NOT NULL,
        site_id TEXT,
        hub_id TEXT NOT NULL,
        joined_at BIGINT NOT NULL,
        left_at BIGINT,
        network_samples INTEGER NOT NULL,
        bitrate_in_avg DOUBLE PRECISION,
        bitrate_out_avg DOUBLE PRECISION,
        loss_in_max DOUBLE PRECISION,
        loss_out_max DOUBLE PRECISION,
        rtt_avg_ms DOUBLE PRECISION,
        rtt_max_ms DOUBLE PRECISION
      )`,
      'CREATE INDEX participants_session ON participants (session_id)',
      'CREATE INDEX participants_site ON participants (site_id, session_id)',
      `CREATE TABLE session_devices (
        id TEXT PRIMARY KEY,
        session_id TEXT ${cascade},
        device_id TEXT NOT NULL,
        site_id TEXT NOT NULL,
        device_type TEXT NOT NULL,
        model TEXT NOT NULL,
        protocol TEXT NOT NULL,
        channels TEXT NOT NULL,
        first_seen_at BIGINT NOT NULL,
        last_reading_at BIGINT,
        readings INTEGER NOT NULL,
        gaps INTEGER NOT NULL,
        missing_readings INTEGER NOT NULL,
        online_ms BIGINT NOT NULL,
        UNIQUE (session_id, device_id)
      )`,
      'CREATE INDEX session_devices_site ON session_devices (site_id, session_id)',
      `CREATE TABLE alarms (
        id TEXT PRIMARY KEY,
        session_id TEXT ${cascade},
        device_id TEXT NOT NULL,
        alarm_key TEXT NOT NULL,
        code TEXT NOT NULL,
        priority TEXT NOT NULL,
        alarm_text TEXT NOT NULL,
        source_code TEXT,
        source_unit TEXT,
        source_value DOUBLE PRECISION,
        started_at BIGINT NOT NULL,
        ended_at BIGINT
      )`,
      'CREATE INDEX alarms_session ON alarms (session_id, started_at)',
      `CREATE TABLE numerics (
        session_id TEXT ${cascade},
        device_id TEXT NOT NULL,
        code TEXT NOT NULL,
        unit TEXT NOT NULL,
        t BIGINT NOT NULL,
        value DOUBLE PRECISION
      )`,
      'CREATE INDEX numerics_session ON numerics (session_id, device_id, t)',
      `CREATE TABLE waveforms (
        session_id TEXT ${cascade},
        device_id TEXT NOT NULL,
        code TEXT NOT NULL,
        unit TEXT NOT NULL,
        t BIGINT NOT NULL,
        sample_rate DOUBLE PRECISION NOT NULL,
        sample_count INTEGER NOT NULL,
        samples TEXT NOT NULL
      )`,
      'CREATE INDEX waveforms_session ON waveforms (session_id, device_id, t)',
      // Filled by the recording work (issue 16, "Recording"): one row per recorded track file.
      `CREATE TABLE recordings (
        id TEXT PRIMARY KEY,
        session_id TEXT ${cascade},
        peer_id TEXT,
        producer_id TEXT,
        track_kind TEXT NOT NULL,
        mime_type TEXT NOT NULL,
        file_path TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        ended_at BIGINT,
        bytes BIGINT,
        started_by TEXT,
        stopped_by TEXT,
        rtp_clock_rate INTEGER,
        rtp_timestamp_at_start BIGINT
      )`,
      'CREATE INDEX recordings_session ON recordings (session_id)',
      `CREATE TABLE fhir_outbox (
        id TEXT PRIMARY KEY,
        session_id TEXT ${cascade},
        endpoint TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        last_status INTEGER,
        last_error TEXT,
        sent_at BIGINT
      )`,
      'CREATE INDEX fhir_outbox_due ON fhir_outbox (status, next_attempt_at)',
    ],
  },
];

/** Applies the migrations the database has not seen; returns the schema version. Safe with several hubs on one PostgreSQL. */
export async function migrate(db: SqlDriver, migrations: readonly Migration[] = MIGRATIONS): Promise<number> {
  await db.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
  for (const migration of migrations) {
    await db.transaction(async (tx) => {
      // Two hubs starting at once against one PostgreSQL: the second waits here, then sees the version applied.
      if (tx.kind === 'postgres') await tx.run('SELECT pg_advisory_xact_lock(?)', [16_16_16]);
      const done = await tx.get<{ version: number }>('SELECT version FROM schema_migrations WHERE version = ?', [migration.version]);
      if (done) return;
      for (const statement of migration.statements) await tx.run(statement);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [migration.version, migration.name, Date.now()]);
    });
  }
  const row = await db.get<{ version: number | null }>('SELECT MAX(version) AS version FROM schema_migrations');
  return row?.version ?? 0;
}
