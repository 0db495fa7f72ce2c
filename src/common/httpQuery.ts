import { z } from 'zod';

/**
 * A time in an HTTP query string (`from`, `to` of /api/audit and
 * /api/records): ISO 8601 or milliseconds since 1970, as milliseconds.
 */
export const queryTime = z
  .string()
  .max(40)
  .transform((text, ctx) => {
    const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
    if (!Number.isFinite(ms)) {
      ctx.addIssue({ code: 'custom', message: 'must be an ISO 8601 time or milliseconds since 1970' });
      return z.NEVER;
    }
    return ms;
  });
