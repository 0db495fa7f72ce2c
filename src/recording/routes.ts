// HTTP access to recordings (docs/RECORDING.md): a recording's manifest with
// its tracks' clock mappings, and its files (tracks with Range, for seeking;
// the readings). Specialists of the recording's conference only: these are
// patient media. Every read is in the audit log.

import { Router, type RequestHandler, type Response } from 'express';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditSink } from '../audit/events.js';
import { canAccessConference, type Claims } from '../auth/index.js';
import { requestClientAddress } from '../common/clientAddress.js';
import { HoichanError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { RECORDING_ID, type RecordingManager } from './RecordingManager.js';
import { sidecarSchema, type RecordingManifest, type TrackSidecar } from './types.js';

const log = createLogger('recording-api');
const CONFERENCE_ID = /^[A-Za-z0-9_.-]{1,64}$/;
/** Recordings a list answers at most, newest first. */
const MAX_LISTED = 500;

/** GET /api/recordings/:id answers the manifest with each track's sidecar (its clock mapping) inlined. */
export interface RecordingDetail extends RecordingManifest {
  sidecars: Record<string, TrackSidecar>;
}

export function recordingRoutes(manager: RecordingManager, requireSpecialist: RequestHandler, audit?: AuditSink): Router {
  const router = Router();

  const fail = (res: Response, err: unknown) => {
    if (err instanceof HoichanError) {
      const status = err.code === 'not_found' ? 404 : err.code === 'forbidden' ? 403 : 400;
      res.status(status).json({ error: { code: err.code, message: err.message } });
      return;
    }
    log.error({ err: (err as Error).message }, 'recording request failed');
    res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
  };

  /** The manifest, if the caller's token grants its conference; the same 404 otherwise, so ids reveal nothing. */
  const manifestFor = (claims: Claims, recordingId: string): RecordingManifest => {
    const manifest = manager.manifest(recordingId);
    if (!canAccessConference(claims, manifest.conferenceId)) throw new HoichanError('not_found', `recording ${recordingId} not found`);
    return manifest;
  };

  router.get('/api/conferences/:conferenceId/recordings', requireSpecialist, (req, res) => {
    const claims = res.locals.claims as Claims;
    const conferenceId = req.params.conferenceId!;
    if (!CONFERENCE_ID.test(conferenceId)) return fail(res, new HoichanError('bad_request', 'conferenceId: must be 1-64 letters, digits, _ . or -'));
    if (!canAccessConference(claims, conferenceId)) return fail(res, new HoichanError('forbidden', `this token does not grant conference ${conferenceId}`));
    let ids: string[] = [];
    try {
      ids = readdirSync(manager.dir).filter((name) => RECORDING_ID.test(name));
    } catch {
      // No recording made yet: no folder.
    }
    const recordings = [];
    for (const id of ids) {
      try {
        const m = manager.manifest(id);
        if (m.conferenceId === conferenceId) recordings.push({ recordingId: m.recordingId, startedAt: m.startedAt, stoppedAt: m.stoppedAt, tracks: m.tracks.length, stopReason: m.stopReason });
      } catch {
        // A folder without a readable manifest is not listed.
      }
    }
    recordings.sort((a, b) => b.startedAt - a.startedAt);
    res.json({ recordings: recordings.slice(0, MAX_LISTED) });
  });

  router.get('/api/recordings/:recordingId', requireSpecialist, (req, res) => {
    try {
      const claims = res.locals.claims as Claims;
      const manifest = manifestFor(claims, req.params.recordingId!);
      const sidecars: Record<string, TrackSidecar> = {};
      for (const track of manifest.tracks) {
        try {
          const parsed = sidecarSchema.safeParse(JSON.parse(readFileSync(join(manager.dir, manifest.recordingId, track.sidecar), 'utf8')));
          if (parsed.success) sidecars[track.producerId] = parsed.data;
        } catch {
          // Being rewritten this instant (rename is atomic, so only if it is gone): left out.
        }
      }
      audit?.record({ type: 'recording.access', actor: { sub: claims.sub, role: claims.role, ip: requestClientAddress(req) }, conferenceId: manifest.conferenceId, outcome: 'ok', target: { recordingId: manifest.recordingId, file: 'manifest' } });
      res.set('cache-control', 'no-store').json({ ...manifest, sidecars } satisfies RecordingDetail);
    } catch (err) {
      fail(res, err);
    }
  });

  router.get('/api/recordings/:recordingId/files/:file', requireSpecialist, (req, res) => {
    try {
      const claims = res.locals.claims as Claims;
      const manifest = manifestFor(claims, req.params.recordingId!);
      const file = req.params.file!;
      // Only names the manifest lists: never a path from the request.
      const track = manifest.tracks.find((t) => t.file === file || t.sidecar === file);
      const contentType = track ? (track.file === file ? track.contentType : 'application/json') : file === manifest.readings ? 'application/x-ndjson' : undefined;
      if (!contentType) throw new HoichanError('not_found', `recording ${manifest.recordingId} has no file ${file}`);
      audit?.record({ type: 'recording.access', actor: { sub: claims.sub, role: claims.role, ip: requestClientAddress(req) }, conferenceId: manifest.conferenceId, outcome: 'ok', target: { recordingId: manifest.recordingId, file } });
      // sendFile answers Range requests (206), which a video element seeks with.
      res.sendFile(join(manager.dir, manifest.recordingId, file), { headers: { 'content-type': contentType, 'cache-control': 'private, no-store' }, dotfiles: 'deny' }, (err) => {
        if (err && !res.headersSent) fail(res, new HoichanError('not_found', `recording ${manifest.recordingId} has no file ${file} yet`));
      });
    } catch (err) {
      fail(res, err);
    }
  });

  return router;
}
