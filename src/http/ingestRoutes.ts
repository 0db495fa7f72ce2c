import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { outcomeOfStatus, type Actor, type AuditSink } from '../audit/events.js';
import { HoichanError } from '../common/errors.js';
import { requestClientAddress } from '../common/clientAddress.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import { canAccessConference, type Claims } from '../auth/index.js';
import { describeIssue } from '../common/zodIssues.js';
import { createLogger } from '../common/logger.js';
import type { RequestHandler } from 'express';

const log = createLogger('ingest-api');

const ingestBody = z.object({
  deviceId: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _ . or -'),
  displayName: z.string().trim().min(1).max(64).optional(),
  source: z.enum(['ultrasound', 'device-video']).default('ultrasound'),
  codec: z.enum(['VP8', 'H264']).default('VP8'),
  srtp: z.boolean().default(true),
});

const STATUS: Record<string, number> = {
  bad_request: 400,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  limit_exceeded: 409,
  rate_limited: 429,
  unavailable: 503,
};

function fail(res: Response, err: unknown): void {
  if (err instanceof HoichanError) {
    res.status(STATUS[err.code] ?? 500).json({ error: { code: err.code, message: err.message } });
  } else {
    log.error({ err: (err as Error).message, stack: (err as Error).stack }, 'ingest request failed');
    res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
  }
}

/** Who may read or close an ingest: whoever opened it (same token `sub`), or an engineer. */
function mayManage(claims: Claims, owner: string): boolean {
  return claims.role === 'engineer' || claims.sub === owner;
}

/**
 * RTP ingest of device video (ultrasound, device-video) into a conference:
 * a site asks where to send, then points its capture (ffmpeg, an encoder box)
 * there. `hoichan ingest` does both.
 */
export function ingestRoutes(conferences: ConferenceManager, requireToken: RequestHandler, audit: AuditSink = { record: () => undefined }): Router {
  const router = Router();
  const actor = (req: Request, res: Response): Actor => {
    const claims = res.locals.claims as Claims;
    return { sub: claims.sub, role: claims.role, ip: requestClientAddress(req) };
  };
  router.use('/api/conferences/:conferenceId/ingests', requireToken, (req: Request, res: Response, next) => {
    const claims = res.locals.claims as Claims;
    if (!canAccessConference(claims, req.params.conferenceId!)) {
      audit.record({ type: 'http.forbidden', actor: actor(req, res), conferenceId: req.params.conferenceId!, outcome: 'forbidden', target: { method: req.method, route: req.originalUrl.split('?')[0]! } });
      res.status(403).json({ error: { code: 'forbidden', message: `this token does not grant conference ${req.params.conferenceId}` } });
      return;
    }
    next();
  });

  router.post('/api/conferences/:conferenceId/ingests', express.json({ limit: '16kb' }), async (req, res) => {
    const claims = res.locals.claims as Claims;
    // Engineers watch and clean up; only the people of a conference bring media into it.
    if (claims.role === 'engineer') {
      audit.record({ type: 'http.forbidden', actor: actor(req, res), conferenceId: req.params.conferenceId!, outcome: 'forbidden', target: { method: req.method, route: req.originalUrl.split('?')[0]! } });
      res.status(403).json({ error: { code: 'forbidden', message: 'the engineer role may not open ingests' } });
      return;
    }
    const parsed = ingestBody.safeParse(req.body ?? {});
    if (!parsed.success) {
      res.status(400).json({ error: { code: 'bad_request', message: describeIssue(parsed.error) } });
      return;
    }
    const { deviceId, source, codec, srtp } = parsed.data;
    const conferenceId = req.params.conferenceId!;
    try {
      const displayName = parsed.data.displayName ?? `${source === 'ultrasound' ? 'Ultrasound' : 'Device video'} ${deviceId}`;
      const ingest = await conferences.openIngest(conferenceId, { deviceId, displayName, source, codec, srtp }, claims.sub);
      audit.record({ type: 'ingest.create', actor: actor(req, res), conferenceId, outcome: 'ok', target: { deviceId, ingestId: ingest.ingestId, source, srtp } });
      res.status(201).json(ingest);
    } catch (err) {
      fail(res, err);
      audit.record({ type: 'ingest.create', actor: actor(req, res), conferenceId, outcome: outcomeOfStatus(res.statusCode), target: { deviceId, source, srtp } });
    }
  });

  router.get('/api/conferences/:conferenceId/ingests/:ingestId', async (req, res) => {
    try {
      const ingest = conferences.get(req.params.conferenceId!)?.ingests.get(req.params.ingestId!);
      if (!ingest) throw new HoichanError('not_found', `ingest ${req.params.ingestId} not found`);
      if (!mayManage(res.locals.claims as Claims, ingest.owner)) throw new HoichanError('forbidden', 'this ingest was opened by another user');
      res.json({ ingestId: ingest.id, bytesReceived: await ingest.bytesReceived() });
    } catch (err) {
      fail(res, err);
      if (res.statusCode === 403) {
        audit.record({ type: 'http.forbidden', actor: actor(req, res), conferenceId: req.params.conferenceId!, outcome: 'forbidden', target: { method: req.method, route: req.originalUrl.split('?')[0]! } });
      }
    }
  });

  router.delete('/api/conferences/:conferenceId/ingests/:ingestId', (req, res) => {
    try {
      const conference = conferences.get(req.params.conferenceId!);
      const ingest = conference?.ingests.get(req.params.ingestId!);
      if (!conference || !ingest) throw new HoichanError('not_found', `ingest ${req.params.ingestId} not found`);
      if (!mayManage(res.locals.claims as Claims, ingest.owner)) throw new HoichanError('forbidden', 'this ingest was opened by another user');
      conference.ingests.close(ingest.id);
      res.status(204).end();
    } catch (err) {
      fail(res, err);
    }
    audit.record({ type: 'ingest.delete', actor: actor(req, res), conferenceId: req.params.conferenceId!, outcome: outcomeOfStatus(res.statusCode), target: { ingestId: req.params.ingestId! } });
  });

  // A JSON body that does not parse is the client's error, said as such.
  router.use((err: unknown, _req: Request, res: Response, next: express.NextFunction) => {
    if ((err as { type?: string }).type === 'entity.parse.failed') {
      res.status(400).json({ error: { code: 'bad_request', message: 'body: not valid JSON' } });
      return;
    }
    next(err);
  });
  return router;
}
