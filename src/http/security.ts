// Response headers every hub answer carries, and the Content-Security-Policy of
// the web client. docs/SECURITY.md ("HTTP headers and pages") explains each one.

import type { NextFunction, Request, Response } from 'express';

/** One year, as browsers' preload lists expect; sent only when the hub itself serves HTTPS. */
export const HSTS = 'max-age=31536000';

export const PERMISSIONS_POLICY = [
  // The conference view captures camera, microphone and (screen share) the display, from this origin only.
  'camera=(self)',
  'microphone=(self)',
  'display-capture=(self)',
  // Nothing else a page of ours could be tricked into asking for.
  'geolocation=()',
  'payment=()',
  'usb=()',
  'serial=()',
  'bluetooth=()',
  'hid=()',
].join(', ');

/** A Host header we are willing to echo into the CSP: a DNS name or IP literal and an optional port. */
const SAFE_HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The web client loads only its own script, stylesheet and icon (no inline code
 * or style: web/index.html and web/src/ui/dom.ts keep it so). The WebSocket to
 * the hub is named explicitly as well as through 'self', for browsers that do
 * not yet let 'self' cover ws(s).
 */
export function contentSecurityPolicy(host: string | undefined, tls: boolean): string {
  const sockets = host && SAFE_HOST.test(host) ? (tls ? [`wss://${host}`] : [`ws://${host}`, `wss://${host}`]) : [];
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    `connect-src ${["'self'", ...sockets].join(' ')}`,
    "img-src 'self' data:",
    "media-src 'self' blob:",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

/** Headers for every response, API and error answers included. */
export function securityHeaders({ tls, host }: { tls: boolean; host?: string | undefined }): Record<string, string> {
  return {
    'Content-Security-Policy': contentSecurityPolicy(host, tls),
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
    'Permissions-Policy': PERMISSIONS_POLICY,
    'Cross-Origin-Opener-Policy': 'same-origin',
    ...(tls ? { 'Strict-Transport-Security': HSTS } : {}),
  };
}

export function securityHeadersMiddleware(tls: boolean) {
  return (req: Request, res: Response, next: NextFunction): void => {
    res.set(securityHeaders({ tls, host: req.headers.host }));
    next();
  };
}
