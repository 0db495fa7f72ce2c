import type { RequestHandler } from 'express';
import { KeyedBuckets } from '../signaling/rateLimit.js';

export interface HttpRateLimit {
  /** Per client IP (express `req.ip`: the socket's address unless `trust proxy` is set). */
  requestsPerSecond: number;
  requestBurst: number;
}

/**
 * A token bucket per client IP over the API routes. Past it: 429 with the
 * JSON error every route answers, and Retry-After.
 */
export function perIpRateLimit({ requestsPerSecond, requestBurst }: HttpRateLimit): RequestHandler {
  const buckets = new KeyedBuckets(requestsPerSecond, requestBurst);
  const retryAfter = String(Math.max(1, Math.ceil(1 / requestsPerSecond)));
  return (req, res, next) => {
    if (buckets.take(req.ip ?? req.socket.remoteAddress ?? 'unknown')) {
      next();
      return;
    }
    res
      .status(429)
      .set('retry-after', retryAfter)
      .json({ error: { code: 'rate_limited', message: `too many requests from this address (http.requestsPerSecond ${requestsPerSecond}); slow down` } });
  };
}
