// What the records hold and how they are read: one class over a SqlDriver,
// the same for SQLite and PostgreSQL (the statements are portable). The
// recorder writes through it (via the write queue), the API and the FHIR
// export read through it.

import type { SqlDriver, SqlValue } from './sql.js';

export interface SessionRow {
  id: string;
  conferenceId: string;
  hubId: string;
  startedAt: number;
  endedAt: number | null;
  endReason: string | null;
}

export interface SessionSummary extends SessionRow {
  participants: number;
  devices: number;
  alarms: number;
  /** Sites of the participants and devices, sorted. */
  sites: string[];
}

export interface ParticipantRow {
  id: string;
  sessionId: string;
  peerId: string;
  userId: string;
  displayName: string;
  role: string;
  siteId: string | null;
  hubId: string;
  joinedAt: number;
  leftAt: number | null;
  network: NetworkSummary;
}

export interface NetworkSummary {
  samples: number;
  /** Mean over the samples, bits per second (what the participant sent, and what the hub sent it). */
  bitrateInAvg: number | null;
  bitrateOutAvg: number | null;
  /** Worst RTCP fraction lost seen, 0..1. */
  lossInMax: number | null;
  lossOutMax: number | null;
  rttAvgMs: number | null;
  rttMaxMs: number | null;
}

export interface SessionDeviceRow {
  id: string;
  sessionId: string;
  deviceId: string;
  siteId: string;
  type: string;
  model: string;
  protocol: string;
  channels: { code: string; unit: string; kind: string }[];
  firstSeenAt: number;
  lastReadingAt: number | null;
  readings: number;
  /** Gaps the uplink announced (readings the site lost), and how many readings they cover. */
  gaps: number;
  missingReadings: number;
  onlineMs: number;
}

export interface AlarmRow {
  id: string;
  sessionId: string;
  deviceId: string;
  alarmKey: string;
  code: string;
  priority: string;
  text: string;
  source: { code: string; unit: string; value: number | null } | null;
  startedAt: number;
  endedAt: number | null;
}

export interface NumericRow {
  sessionId: string;
  deviceId: string;
  code: string;
  unit: string;
  t: number;
  value: number | null;
}

export interface WaveformRow {
  sessionId: string;
  deviceId: string;
  code: string;
  unit: string;
  t: number;
  sampleRate: number;
  samples: (number | null)[];
}

export interface RecordingRow {
  id: string;
  sessionId: string;
  peerId: string | null;
  producerId: string | null;
  trackKind: string;
  mimeType: string;
  filePath: string;
  startedAt: number;
  endedAt: number | null;
  bytes: number | null;
  startedBy: string | null;
  stoppedBy: string | null;
}

export interface SessionDetail {
  session: SessionRow;
  participants: ParticipantRow[];
  devices: SessionDeviceRow[];
  alarms: AlarmRow[];
  recordings: RecordingRow[];
}

export interface SessionFilter {
  /** started_at >= from, < to (ms). */
  from?: number;
  to?: number;
  siteId?: string;
  conferenceId?: string;
  /** Keyset paging: sessions strictly older than this (started_at, id). */
  before?: { startedAt: number; id: string };
  limit: number;
}

export interface SiteMonth {
  siteId: string;
  consultations: number;
  minutes: number;
  /** Other sites that took part in this site's consultations. */
  sitesJoined: number;
  devicesUsed: number;
  alarms: number;
  alarmsByPriority: Record<string, number>;
}

export interface MonthlyReport {
  from: number;
  to: number;
  totals: { consultations: number; minutes: number; sites: number; devicesUsed: number; alarms: number };
  sites: SiteMonth[];
}

export interface OutboxRow {
  id: string;
  sessionId: string;
  endpoint: string;
  createdAt: number;
  status: 'pending' | 'sent';
  attempts: number;
  nextAttemptAt: number;
  lastStatus: number | null;
  lastError: string | null;
  sentAt: number | null;
}

type Raw = Record<string, SqlValue>;

const num = (v: SqlValue): number => Number(v);
const numOrNull = (v: SqlValue): number | null => (v === null ? null : Number(v));
const str = (v: SqlValue): string => String(v);
const strOrNull = (v: SqlValue): string | null => (v === null ? null : String(v));

function sessionOf(r: Raw): SessionRow {
  return { id: str(r.id!), conferenceId: str(r.conference_id!), hubId: str(r.hub_id!), startedAt: num(r.started_at!), endedAt: numOrNull(r.ended_at!), endReason: strOrNull(r.end_reason!) };
}

function participantOf(r: Raw): ParticipantRow {
  return {
    id: str(r.id!),
    sessionId: str(r.session_id!),
    peerId: str(r.peer_id!),
    userId: str(r.user_id!),
    displayName: str(r.display_name!),
    role: str(r.role!),
    siteId: strOrNull(r.site_id!),
    hubId: str(r.hub_id!),
    joinedAt: num(r.joined_at!),
    leftAt: numOrNull(r.left_at!),
    network: {
      samples: num(r.network_samples!),
      bitrateInAvg: numOrNull(r.bitrate_in_avg!),
      bitrateOutAvg: numOrNull(r.bitrate_out_avg!),
      lossInMax: numOrNull(r.loss_in_max!),
      lossOutMax: numOrNull(r.loss_out_max!),
      rttAvgMs: numOrNull(r.rtt_avg_ms!),
      rttMaxMs: numOrNull(r.rtt_max_ms!),
    },
  };
}

function deviceOf(r: Raw): SessionDeviceRow {
  return {
    id: str(r.id!),
    sessionId: str(r.session_id!),
    deviceId: str(r.device_id!),
    siteId: str(r.site_id!),
    type: str(r.device_type!),
    model: str(r.model!),
    protocol: str(r.protocol!),
    channels: JSON.parse(str(r.channels!)) as SessionDeviceRow['channels'],
    firstSeenAt: num(r.first_seen_at!),
    lastReadingAt: numOrNull(r.last_reading_at!),
    readings: num(r.readings!),
    gaps: num(r.gaps!),
    missingReadings: num(r.missing_readings!),
    onlineMs: num(r.online_ms!),
  };
}

function alarmOf(r: Raw): AlarmRow {
  return {
    id: str(r.id!),
    sessionId: str(r.session_id!),
    deviceId: str(r.device_id!),
    alarmKey: str(r.alarm_key!),
    code: str(r.code!),
    priority: str(r.priority!),
    text: str(r.alarm_text!),
    source: r.source_code === null ? null : { code: str(r.source_code!), unit: str(r.source_unit ?? ''), value: numOrNull(r.source_value!) },
    startedAt: num(r.started_at!),
    endedAt: numOrNull(r.ended_at!),
  };
}

function recordingOf(r: Raw): RecordingRow {
  return {
    id: str(r.id!),
    sessionId: str(r.session_id!),
    peerId: strOrNull(r.peer_id!),
    producerId: strOrNull(r.producer_id!),
    trackKind: str(r.track_kind!),
    mimeType: str(r.mime_type!),
    filePath: str(r.file_path!),
    startedAt: num(r.started_at!),
    endedAt: numOrNull(r.ended_at!),
    bytes: numOrNull(r.bytes!),
    startedBy: strOrNull(r.started_by!),
    stoppedBy: strOrNull(r.stopped_by!),
  };
}

function outboxOf(r: Raw): OutboxRow {
  return {
    id: str(r.id!),
    sessionId: str(r.session_id!),
    endpoint: str(r.endpoint!),
    createdAt: num(r.created_at!),
    status: str(r.status!) as OutboxRow['status'],
    attempts: num(r.attempts!),
    nextAttemptAt: num(r.next_attempt_at!),
    lastStatus: numOrNull(r.last_status!),
    lastError: strOrNull(r.last_error!),
    sentAt: numOrNull(r.sent_at!),
  };
}

/** Rows per multi-row INSERT: well under SQLite's 32766 bound parameters. */
const INSERT_CHUNK = 200;

export class RecordsStore {
  constructor(readonly db: SqlDriver) {}

  get kind(): SqlDriver['kind'] {
    return this.db.kind;
  }

  // ---- writes (the recorder's, through the write queue) -------------------

  async startSession(s: { id: string; conferenceId: string; hubId: string; startedAt: number }): Promise<void> {
    await this.db.run('INSERT INTO sessions (id, conference_id, hub_id, started_at) VALUES (?, ?, ?, ?)', [s.id, s.conferenceId, s.hubId, s.startedAt]);
  }

  async endSession(id: string, endedAt: number, reason: string): Promise<void> {
    await this.db.run('UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL', [endedAt, reason, id]);
    // Whoever was still in it left when it ended.
    await this.db.run('UPDATE participants SET left_at = ? WHERE session_id = ? AND left_at IS NULL', [endedAt, id]);
  }

  async addParticipant(p: Omit<ParticipantRow, 'leftAt' | 'network'>): Promise<void> {
    await this.db.run(
      'INSERT INTO participants (id, session_id, peer_id, user_id, display_name, role, site_id, hub_id, joined_at, network_samples) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)',
      [p.id, p.sessionId, p.peerId, p.userId, p.displayName, p.role, p.siteId, p.hubId, p.joinedAt],
    );
  }

  async participantLeft(id: string, leftAt: number): Promise<void> {
    await this.db.run('UPDATE participants SET left_at = ? WHERE id = ? AND left_at IS NULL', [leftAt, id]);
  }

  async participantNetwork(id: string, n: NetworkSummary): Promise<void> {
    await this.db.run(
      'UPDATE participants SET network_samples = ?, bitrate_in_avg = ?, bitrate_out_avg = ?, loss_in_max = ?, loss_out_max = ?, rtt_avg_ms = ?, rtt_max_ms = ? WHERE id = ?',
      [n.samples, n.bitrateInAvg, n.bitrateOutAvg, n.lossInMax, n.lossOutMax, n.rttAvgMs, n.rttMaxMs, id],
    );
  }

  async addDevice(d: Omit<SessionDeviceRow, 'lastReadingAt' | 'readings' | 'gaps' | 'missingReadings' | 'onlineMs'>): Promise<void> {
    await this.db.run(
      `INSERT INTO session_devices (id, session_id, device_id, site_id, device_type, model, protocol, channels, first_seen_at, readings, gaps, missing_readings, online_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0) ON CONFLICT (session_id, device_id) DO NOTHING`,
      [d.id, d.sessionId, d.deviceId, d.siteId, d.type, d.model, d.protocol, JSON.stringify(d.channels), d.firstSeenAt],
    );
  }

  /** Adds to a device's counters; channels and model follow what the device last announced. */
  async deviceProgress(sessionId: string, deviceId: string, p: { readings: number; gaps: number; missingReadings: number; onlineMs: number; lastReadingAt: number | null; channels?: SessionDeviceRow['channels'] }): Promise<void> {
    await this.db.run(
      `UPDATE session_devices SET readings = readings + ?, gaps = gaps + ?, missing_readings = missing_readings + ?, online_ms = online_ms + ?,
         last_reading_at = CASE WHEN CAST(? AS BIGINT) IS NULL THEN last_reading_at WHEN last_reading_at IS NULL OR last_reading_at < ? THEN ? ELSE last_reading_at END,
         channels = COALESCE(CAST(? AS TEXT), channels)
       WHERE session_id = ? AND device_id = ?`,
      [p.readings, p.gaps, p.missingReadings, p.onlineMs, p.lastReadingAt, p.lastReadingAt, p.lastReadingAt, p.channels ? JSON.stringify(p.channels) : null, sessionId, deviceId],
    );
  }

  async addNumerics(rows: readonly NumericRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      const chunk = rows.slice(i, i + INSERT_CHUNK);
      await this.db.run(
        `INSERT INTO numerics (session_id, device_id, code, unit, t, value) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
        chunk.flatMap((r) => [r.sessionId, r.deviceId, r.code, r.unit, r.t, r.value]),
      );
    }
  }

  async addWaveform(w: WaveformRow): Promise<void> {
    await this.db.run('INSERT INTO waveforms (session_id, device_id, code, unit, t, sample_rate, sample_count, samples) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
      w.sessionId,
      w.deviceId,
      w.code,
      w.unit,
      w.t,
      w.sampleRate,
      w.samples.length,
      JSON.stringify(w.samples),
    ]);
  }

  async alarmStarted(a: Omit<AlarmRow, 'endedAt'>): Promise<void> {
    await this.db.run(
      'INSERT INTO alarms (id, session_id, device_id, alarm_key, code, priority, alarm_text, source_code, source_unit, source_value, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [a.id, a.sessionId, a.deviceId, a.alarmKey, a.code, a.priority, a.text, a.source?.code ?? null, a.source?.unit ?? null, a.source?.value ?? null, a.startedAt],
    );
  }

  async alarmEnded(id: string, endedAt: number): Promise<void> {
    await this.db.run('UPDATE alarms SET ended_at = ? WHERE id = ? AND ended_at IS NULL', [endedAt, id]);
  }

  /** For the recording work: one recorded track file. */
  async addRecording(r: Omit<RecordingRow, 'endedAt' | 'bytes' | 'stoppedBy'>): Promise<void> {
    await this.db.run(
      'INSERT INTO recordings (id, session_id, peer_id, producer_id, track_kind, mime_type, file_path, started_at, started_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [r.id, r.sessionId, r.peerId, r.producerId, r.trackKind, r.mimeType, r.filePath, r.startedAt, r.startedBy],
    );
  }

  /** A recorded track's file is finished (or failed): its end, size and the sender clock it starts at. */
  async recordingEnded(id: string, end: { endedAt: number; bytes: number | null; rtpClockRate: number; rtpTimestampAtStart: number | null }): Promise<void> {
    await this.db.run(
      'UPDATE recordings SET ended_at = ?, bytes = ?, rtp_clock_rate = ?, rtp_timestamp_at_start = ? WHERE id = ?',
      [end.endedAt, end.bytes, end.rtpClockRate, end.rtpTimestampAtStart, id],
    );
  }

  /** Who stopped a recording, on every track file of it (its rows are `<recordingId>:<producerId>`). */
  async recordingStopped(recordingId: string, stoppedBy: string): Promise<void> {
    await this.db.run("UPDATE recordings SET stopped_by = ? WHERE id LIKE ? || ':%'", [stoppedBy, recordingId]);
  }

  /**
   * Sessions this hub left open when it stopped without closing them (a crash):
   * ended at the last moment anything of them was written.
   */
  async closeAbandoned(hubId: string): Promise<string[]> {
    const open = await this.db.all<Raw>('SELECT id, started_at FROM sessions WHERE hub_id = ? AND ended_at IS NULL', [hubId]);
    for (const row of open) {
      const id = str(row.id!);
      const last = await this.db.get<Raw>(
        `SELECT MAX(t) AS t FROM (
           SELECT MAX(joined_at) AS t FROM participants WHERE session_id = ?
           UNION ALL SELECT MAX(left_at) FROM participants WHERE session_id = ?
           UNION ALL SELECT MAX(last_reading_at) FROM session_devices WHERE session_id = ?
           UNION ALL SELECT MAX(started_at) FROM alarms WHERE session_id = ?
         ) AS activity`,
        [id, id, id, id],
      );
      const endedAt = Math.max(num(row.started_at!), numOrNull(last?.t ?? null) ?? 0);
      await this.endSession(id, endedAt, 'hub_stopped');
    }
    return open.map((row) => str(row.id!));
  }

  // ---- reads ---------------------------------------------------------------

  async listSessions(f: SessionFilter): Promise<SessionSummary[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (f.from !== undefined) where.push('s.started_at >= ?'), params.push(f.from);
    if (f.to !== undefined) where.push('s.started_at < ?'), params.push(f.to);
    if (f.conferenceId !== undefined) where.push('s.conference_id = ?'), params.push(f.conferenceId);
    if (f.siteId !== undefined) {
      where.push('(EXISTS (SELECT 1 FROM participants p WHERE p.session_id = s.id AND p.site_id = ?) OR EXISTS (SELECT 1 FROM session_devices d WHERE d.session_id = s.id AND d.site_id = ?))');
      params.push(f.siteId, f.siteId);
    }
    if (f.before) where.push('(s.started_at < ? OR (s.started_at = ? AND s.id < ?))'), params.push(f.before.startedAt, f.before.startedAt, f.before.id);
    const rows = await this.db.all<Raw>(
      `SELECT s.*,
         (SELECT COUNT(*) FROM participants p WHERE p.session_id = s.id) AS participant_count,
         (SELECT COUNT(*) FROM session_devices d WHERE d.session_id = s.id) AS device_count,
         (SELECT COUNT(*) FROM alarms a WHERE a.session_id = s.id) AS alarm_count
       FROM sessions s ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY s.started_at DESC, s.id DESC LIMIT ?`,
      [...params, f.limit],
    );
    const sites = await this.#sitesOf(rows.map((r) => str(r.id!)));
    return rows.map((r) => ({
      ...sessionOf(r),
      participants: num(r.participant_count!),
      devices: num(r.device_count!),
      alarms: num(r.alarm_count!),
      sites: sites.get(str(r.id!)) ?? [],
    }));
  }

  async #sitesOf(sessionIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, Set<string>>();
    if (sessionIds.length === 0) return new Map();
    const marks = sessionIds.map(() => '?').join(', ');
    const rows = await this.db.all<Raw>(
      `SELECT session_id, site_id FROM participants WHERE session_id IN (${marks}) AND site_id IS NOT NULL
       UNION SELECT session_id, site_id FROM session_devices WHERE session_id IN (${marks})`,
      [...sessionIds, ...sessionIds],
    );
    for (const r of rows) {
      const id = str(r.session_id!);
      if (!out.has(id)) out.set(id, new Set());
      out.get(id)!.add(str(r.site_id!));
    }
    return new Map([...out].map(([id, set]) => [id, [...set].sort()]));
  }

  async session(id: string): Promise<SessionRow | undefined> {
    const row = await this.db.get<Raw>('SELECT * FROM sessions WHERE id = ?', [id]);
    return row ? sessionOf(row) : undefined;
  }

  async sessionDetail(id: string): Promise<SessionDetail | undefined> {
    const session = await this.session(id);
    if (!session) return undefined;
    const [participants, devices, alarms, recordings] = await Promise.all([
      this.db.all<Raw>('SELECT * FROM participants WHERE session_id = ? ORDER BY joined_at, id', [id]),
      this.db.all<Raw>('SELECT * FROM session_devices WHERE session_id = ? ORDER BY first_seen_at, device_id', [id]),
      this.db.all<Raw>('SELECT * FROM alarms WHERE session_id = ? ORDER BY started_at, id', [id]),
      this.db.all<Raw>('SELECT * FROM recordings WHERE session_id = ? ORDER BY started_at, id', [id]),
    ]);
    return { session, participants: participants.map(participantOf), devices: devices.map(deviceOf), alarms: alarms.map(alarmOf), recordings: recordings.map(recordingOf) };
  }

  async numerics(sessionId: string, limit: number): Promise<NumericRow[]> {
    const rows = await this.db.all<Raw>('SELECT * FROM numerics WHERE session_id = ? ORDER BY device_id, t, code LIMIT ?', [sessionId, limit]);
    return rows.map((r) => ({ sessionId: str(r.session_id!), deviceId: str(r.device_id!), code: str(r.code!), unit: str(r.unit!), t: num(r.t!), value: numOrNull(r.value!) }));
  }

  async waveforms(sessionId: string, limit: number): Promise<WaveformRow[]> {
    const rows = await this.db.all<Raw>('SELECT * FROM waveforms WHERE session_id = ? ORDER BY device_id, code, t LIMIT ?', [sessionId, limit]);
    return rows.map((r) => ({
      sessionId: str(r.session_id!),
      deviceId: str(r.device_id!),
      code: str(r.code!),
      unit: str(r.unit!),
      t: num(r.t!),
      sampleRate: num(r.sample_rate!),
      samples: JSON.parse(str(r.samples!)) as (number | null)[],
    }));
  }

  /** Per site, the consultations that started in [from, to): sessions, minutes, other sites, devices and their alarms. */
  async monthlyReport(from: number, to: number, now: number, conferenceId?: string): Promise<MonthlyReport> {
    const scopeOf = (alias: string) => `${alias}started_at >= ? AND ${alias}started_at < ?${conferenceId !== undefined ? ` AND ${alias}conference_id = ?` : ''}`;
    const scope = scopeOf('');
    const inScope = scopeOf('s.');
    const scopeParams: SqlValue[] = conferenceId !== undefined ? [from, to, conferenceId] : [from, to];
    const sessions = await this.db.all<Raw>(`SELECT id, started_at, ended_at FROM sessions WHERE ${scope}`, scopeParams);
    const pairs = await this.db.all<Raw>(
      `SELECT p.session_id, p.site_id FROM participants p JOIN sessions s ON s.id = p.session_id WHERE p.site_id IS NOT NULL AND ${inScope}
       UNION SELECT d.session_id, d.site_id FROM session_devices d JOIN sessions s ON s.id = d.session_id WHERE ${inScope}`,
      [...scopeParams, ...scopeParams],
    );
    const devices = await this.db.all<Raw>(
      `SELECT d.session_id, d.device_id, d.site_id FROM session_devices d JOIN sessions s ON s.id = d.session_id WHERE ${inScope}`,
      scopeParams,
    );
    const alarms = await this.db.all<Raw>(
      `SELECT a.session_id, a.device_id, a.priority, COUNT(*) AS n FROM alarms a JOIN sessions s ON s.id = a.session_id WHERE ${inScope}
       GROUP BY a.session_id, a.device_id, a.priority`,
      scopeParams,
    );
    const minutesOf = new Map(sessions.map((s) => [str(s.id!), Math.max(0, (numOrNull(s.ended_at!) ?? now) - num(s.started_at!)) / 60_000]));
    const sitesOfSession = new Map<string, Set<string>>();
    for (const p of pairs) {
      const id = str(p.session_id!);
      if (!sitesOfSession.has(id)) sitesOfSession.set(id, new Set());
      sitesOfSession.get(id)!.add(str(p.site_id!));
    }
    const siteOfDevice = new Map(devices.map((d) => [`${str(d.session_id!)}\u0000${str(d.device_id!)}`, str(d.site_id!)]));
    const bySite = new Map<string, { sessions: Set<string>; others: Set<string>; devices: Set<string>; alarms: Record<string, number> }>();
    const site = (id: string) => {
      let s = bySite.get(id);
      if (!s) bySite.set(id, (s = { sessions: new Set(), others: new Set(), devices: new Set(), alarms: {} }));
      return s;
    };
    for (const [sessionId, sites] of sitesOfSession) {
      for (const id of sites) {
        const s = site(id);
        s.sessions.add(sessionId);
        for (const other of sites) if (other !== id) s.others.add(other);
      }
    }
    for (const d of devices) site(str(d.site_id!)).devices.add(str(d.device_id!));
    for (const a of alarms) {
      const owner = siteOfDevice.get(`${str(a.session_id!)}\u0000${str(a.device_id!)}`);
      if (owner === undefined) continue;
      const counts = site(owner).alarms;
      counts[str(a.priority!)] = (counts[str(a.priority!)] ?? 0) + num(a.n!);
    }
    const round = (x: number) => Math.round(x * 10) / 10;
    const sites: SiteMonth[] = [...bySite]
      .map(([siteId, s]) => ({
        siteId,
        consultations: s.sessions.size,
        minutes: round([...s.sessions].reduce((m, id) => m + (minutesOf.get(id) ?? 0), 0)),
        sitesJoined: s.others.size,
        devicesUsed: s.devices.size,
        alarms: Object.values(s.alarms).reduce((a, b) => a + b, 0),
        alarmsByPriority: s.alarms,
      }))
      .sort((a, b) => b.consultations - a.consultations || a.siteId.localeCompare(b.siteId));
    return {
      from,
      to,
      totals: {
        consultations: sessions.length,
        minutes: round([...minutesOf.values()].reduce((a, b) => a + b, 0)),
        sites: bySite.size,
        devicesUsed: new Set(devices.map((d) => str(d.device_id!))).size,
        alarms: alarms.reduce((n, a) => n + num(a.n!), 0),
      },
      sites,
    };
  }

  // ---- FHIR outbox ---------------------------------------------------------

  async enqueueOutbox(row: { id: string; sessionId: string; endpoint: string; createdAt: number }): Promise<void> {
    await this.db.run("INSERT INTO fhir_outbox (id, session_id, endpoint, created_at, status, attempts, next_attempt_at) VALUES (?, ?, ?, ?, 'pending', 0, ?)", [
      row.id,
      row.sessionId,
      row.endpoint,
      row.createdAt,
      row.createdAt,
    ]);
  }

  async dueOutbox(now: number, limit: number): Promise<OutboxRow[]> {
    const rows = await this.db.all<Raw>("SELECT * FROM fhir_outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?", [now, limit]);
    return rows.map(outboxOf);
  }

  async outbox(sessionId: string): Promise<OutboxRow[]> {
    return (await this.db.all<Raw>('SELECT * FROM fhir_outbox WHERE session_id = ? ORDER BY created_at, id', [sessionId])).map(outboxOf);
  }

  async outboxSent(id: string, at: number, status: number): Promise<void> {
    await this.db.run("UPDATE fhir_outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?, last_status = ?, last_error = NULL WHERE id = ?", [at, status, id]);
  }

  async outboxFailed(id: string, nextAttemptAt: number, status: number | null, error: string): Promise<void> {
    await this.db.run('UPDATE fhir_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_status = ?, last_error = ? WHERE id = ?', [nextAttemptAt, status, error.slice(0, 500), id]);
  }

  // ---- retention -------------------------------------------------------------

  /** Deletes sessions that ended (or, left open, started) before `before`, with everything of them. */
  async purge(before: number): Promise<number> {
    return this.db.run('DELETE FROM sessions WHERE COALESCE(ended_at, started_at) < ?', [before]);
  }
}
