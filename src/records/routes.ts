import { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { queryTime } from '../common/httpQuery.js';
import { canAccessConference, type Claims } from '../auth/index.js';
import { describeIssue } from '../common/zodIssues.js';
import { csvLine } from './csv.js';
import { buildBundle } from './FhirOutbox.js';
import type { RecordsStore, SessionSummary } from './RecordsStore.js';

/** Sessions per page of GET /api/records/sessions, at most. */
export const MAX_PAGE = 200;
/** Rows of one CSV export, at most (narrow the dates for more). */
export const MAX_CSV_ROWS = 10_000;


const conferenceId = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a conference id');
const siteId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be a site id');

const cursorSchema = z
  .string()
  .max(200)
  .transform((text, ctx) => {
    try {
      const parsed = z.object({ t: z.number().int(), id: z.string().uuid() }).strict().parse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')));
      return { startedAt: parsed.t, id: parsed.id };
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be the nextCursor of a previous answer' });
      return z.NEVER;
    }
  });

const filterSchema = z
  .object({
    from: queryTime.optional(),
    to: queryTime.optional(),
    siteId: siteId.optional(),
    conferenceId: conferenceId.optional(),
  })
  .strict();

const listSchema = filterSchema.extend({ limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(50), cursor: cursorSchema.optional() }).strict();

const reportSchema = z
  .object({
    month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be a month, YYYY-MM (UTC)'),
    conferenceId: conferenceId.optional(),
  })
  .strict();

const idSchema = z.string().uuid('must be a session id (UUID)');

function badRequest(res: Response, message: string): void {
  res.status(400).json({ error: { code: 'bad_request', message } });
}

/**
 * The conference a caller is limited to: none for engineers (all of them),
 * the token's own for specialists. A specialist naming another is refused.
 */
function scopeOf(claims: Claims, asked: string | undefined): { conferenceId: string | undefined } | { refused: string } {
  if (claims.role === 'engineer') return { conferenceId: asked };
  if (asked !== undefined && !canAccessConference(claims, asked)) return { refused: `this token does not grant conference ${asked}` };
  return { conferenceId: claims.conf };
}

/** Engineers read every session; specialists those of their token's conference. */
function mayRead(claims: Claims, conferenceId: string): boolean {
  return claims.role === 'engineer' || canAccessConference(claims, conferenceId);
}

function checkRange(from: number | undefined, to: number | undefined): string | undefined {
  return from !== undefined && to !== undefined && from > to ? 'from: must not be after to' : undefined;
}

/**
 * The query of a sessions route, checked: its schema, the date range and the
 * caller's conference scope. Answers 400 or 403 itself and returns undefined then.
 */
function sessionsQuery<T extends { from?: number | undefined; to?: number | undefined; conferenceId?: string | undefined }>(
  schema: z.ZodType<T, z.ZodTypeDef, unknown>,
  req: Request,
  res: Response,
): { q: T; conferenceId: string | undefined } | undefined {
  const parsed = schema.safeParse(req.query);
  if (!parsed.success) return void badRequest(res, describeIssue(parsed.error));
  const q = parsed.data;
  const range = checkRange(q.from, q.to);
  if (range) return void badRequest(res, range);
  const scope = scopeOf(res.locals.claims as Claims, q.conferenceId);
  if ('refused' in scope) return void res.status(403).json({ error: { code: 'forbidden', message: scope.refused } });
  return { q, conferenceId: scope.conferenceId };
}

/**
 * /api/records: consultation sessions (list, one in full, CSV, FHIR) and the
 * monthly programme report. `auth` is the app's bearer-token middleware for
 * engineers and specialists; specialists see the sessions of their token's
 * conference only (as /api/audit is engineers' only).
 */
export function recordsRoutes(store: RecordsStore, auth: RequestHandler, options: { maxBundleObservations: number }): Router {
  const router = Router();
  const claimsOf = (res: Response) => res.locals.claims as Claims;

  router.get('/api/records/sessions', auth, async (req, res, next) => {
    const checked = sessionsQuery(listSchema, req, res);
    if (!checked) return;
    const { q, conferenceId } = checked;
    try {
      const sessions = await store.listSessions({ ...filterOf(q, conferenceId), limit: q.limit + 1, ...(q.cursor ? { before: q.cursor } : {}) });
      const page = sessions.slice(0, q.limit);
      const last = page[page.length - 1];
      const nextCursor = sessions.length > q.limit && last ? Buffer.from(JSON.stringify({ t: last.startedAt, id: last.id })).toString('base64url') : null;
      res.set('cache-control', 'no-store').json({ sessions: page, nextCursor });
    } catch (err) {
      next(err);
    }
  });

  router.get('/api/records/sessions.csv', auth, async (req, res, next) => {
    const checked = sessionsQuery(filterSchema, req, res);
    if (!checked) return;
    const { q, conferenceId } = checked;
    try {
      const sessions = await store.listSessions({ ...filterOf(q, conferenceId), limit: MAX_CSV_ROWS + 1 });
      if (sessions.length > MAX_CSV_ROWS) {
        return badRequest(res, `more than ${MAX_CSV_ROWS} sessions match; narrow from/to`);
      }
      res.set('cache-control', 'no-store').type('text/csv; charset=utf-8').attachment('hoichan-sessions.csv');
      res.send(csvOf(sessions));
    } catch (err) {
      next(err);
    }
  });

  router.get('/api/records/sessions/:id', auth, async (req, res, next) => {
    const id = idSchema.safeParse(req.params.id);
    if (!id.success) return badRequest(res, `id: ${describeIssue(id.error)}`);
    try {
      const detail = await store.sessionDetail(id.data);
      if (!detail || !mayRead(claimsOf(res), detail.session.conferenceId)) {
        return void res.status(404).json({ error: { code: 'not_found', message: `no session ${id.data}` } });
      }
      res.set('cache-control', 'no-store').json(detail);
    } catch (err) {
      next(err);
    }
  });

  router.get('/api/records/sessions/:id/fhir', auth, async (req, res, next) => {
    const id = idSchema.safeParse(req.params.id);
    if (!id.success) return badRequest(res, `id: ${describeIssue(id.error)}`);
    const type = z.object({ type: z.enum(['collection', 'transaction']).default('collection') }).strict().safeParse(req.query);
    if (!type.success) return badRequest(res, describeIssue(type.error));
    try {
      const session = await store.session(id.data);
      if (!session || !mayRead(claimsOf(res), session.conferenceId)) {
        return void res.status(404).json({ error: { code: 'not_found', message: `no session ${id.data}` } });
      }
      const bundle = await buildBundle(store, id.data, type.data.type, options.maxBundleObservations);
      res.set('cache-control', 'no-store').type('application/fhir+json').send(JSON.stringify(bundle));
    } catch (err) {
      next(err);
    }
  });

  router.get('/api/records/report', auth, async (req, res, next) => {
    const parsed = reportSchema.safeParse(req.query);
    if (!parsed.success) return badRequest(res, describeIssue(parsed.error));
    const scope = scopeOf(claimsOf(res), parsed.data.conferenceId);
    if ('refused' in scope) return void res.status(403).json({ error: { code: 'forbidden', message: scope.refused } });
    const [year, month] = parsed.data.month.split('-').map(Number) as [number, number];
    const from = Date.UTC(year, month - 1, 1);
    const to = Date.UTC(year, month, 1);
    try {
      const report = await store.monthlyReport(from, to, Date.now(), scope.conferenceId);
      res.set('cache-control', 'no-store').json({ month: parsed.data.month, ...(scope.conferenceId ? { conferenceId: scope.conferenceId } : {}), ...report });
    } catch (err) {
      next(err);
    }
  });

  return router;
}

function filterOf(q: { from?: number | undefined; to?: number | undefined; siteId?: string | undefined }, conferenceId: string | undefined) {
  return {
    ...(q.from !== undefined ? { from: q.from } : {}),
    ...(q.to !== undefined ? { to: q.to } : {}),
    ...(q.siteId !== undefined ? { siteId: q.siteId } : {}),
    ...(conferenceId !== undefined ? { conferenceId } : {}),
  };
}

export const CSV_COLUMNS = ['session_id', 'conference_id', 'hub_id', 'started_at', 'ended_at', 'minutes', 'participants', 'devices', 'alarms', 'sites', 'end_reason'] as const;

export function csvOf(sessions: readonly SessionSummary[]): string {
  let out = csvLine(CSV_COLUMNS);
  for (const s of sessions) {
    out += csvLine([
      s.id,
      s.conferenceId,
      s.hubId,
      new Date(s.startedAt).toISOString(),
      s.endedAt === null ? null : new Date(s.endedAt).toISOString(),
      s.endedAt === null ? null : Math.round((s.endedAt - s.startedAt) / 600) / 100,
      s.participants,
      s.devices,
      s.alarms,
      s.sites.join(';'),
      s.endReason,
    ]);
  }
  return out;
}
