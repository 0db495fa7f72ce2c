import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { queryTime } from '../common/httpQuery.js';
import { describeIssue } from '../common/zodIssues.js';
import type { AuditLog } from './AuditLog.js';

/** Most records one GET /api/audit returns; page back with `beforeSeq`. */
export const MAX_AUDIT_LIMIT = 1000;


const querySchema = z
  .object({
    from: queryTime.optional(),
    to: queryTime.optional(),
    conferenceId: z.string().min(1).max(64).optional(),
    /** A token `sub`. */
    actor: z.string().min(1).max(128).optional(),
    /** A type (conference.join) or a family (conference). */
    type: z.string().regex(/^[a-z]+(\.[a-z]+)?$/, 'must be an event type like conference.join, or a family like conference').optional(),
    /** The next page: records older than this seq (the last one of the previous answer). */
    beforeSeq: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(MAX_AUDIT_LIMIT).default(100),
  })
  .strict();

/**
 * GET /api/audit (records newest first, with the chain's verification over
 * what was read) and GET /api/audit/head (seq and hash to anchor elsewhere).
 * `engineerOnly` is the app's bearer-token middleware.
 */
export function auditRoutes(audit: AuditLog, engineerOnly: RequestHandler): Router {
  const router = Router();

  router.get('/api/audit/head', engineerOnly, async (_req, res) => {
    await audit.flush();
    res.set('cache-control', 'no-store').json(audit.head);
  });

  router.get('/api/audit', engineerOnly, async (req, res, next) => {
    const parsed = querySchema.safeParse(req.query);
    if (!parsed.success) {
      res.status(400).json({ error: { code: 'bad_request', message: describeIssue(parsed.error) } });
      return;
    }
    if (parsed.data.from !== undefined && parsed.data.to !== undefined && parsed.data.from > parsed.data.to) {
      res.status(400).json({ error: { code: 'bad_request', message: 'from: must not be after to' } });
      return;
    }
    try {
      res.set('cache-control', 'no-store').json(await audit.query(parsed.data));
    } catch (err) {
      next(err);
    }
  });

  return router;
}
