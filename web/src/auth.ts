// Where a page's token comes from. A link carries it in the fragment
// (/conference/<id>#token=…), which browsers never send to a server nor put in
// a Referer. captureLinkToken() runs first thing in main.ts: it takes the token
// out of the address bar (history.replaceState) before the page loads anything
// else, so it does not stay in history, bookmarks, session restore or
// screenshots. The token is then kept in sessionStorage (per view) so a reload
// of the same tab works. docs/WEB.md, "Links and tokens".

export interface TokenClaims {
  sub?: string;
  name?: string;
  role?: 'specialist' | 'site' | 'engineer';
  conf?: string;
  exp?: number;
}

/** The hub redirects a link that still carries ?token= to the same page with this fragment (src/http/app.ts). */
export const OLD_LINK_MARKER = 'old-link-format';

let linkToken: string | null = null;
let oldLinkRefused = false;

/** Takes `#token=` (and the hub's old-link marker) out of the URL; call before anything else runs. */
export function captureLinkToken(): void {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token');
  oldLinkRefused = fragment.has(OLD_LINK_MARKER);
  if (token === null && !oldLinkRefused) return;
  if (token) linkToken = token;
  fragment.delete('token');
  fragment.delete(OLD_LINK_MARKER);
  const rest = fragment.toString();
  history.replaceState(history.state, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
}

/** The link's token, not yet stored: for routing an old /?conference= link by role. */
export function peekLinkToken(): string {
  return linkToken ?? '';
}

/** True when this page was reached by a refused ?token= link (the view then says how links look now). */
export function wasOldLinkRefused(): boolean {
  return oldLinkRefused;
}

/** The token for a view: from the link this page was opened with, else from this tab's earlier visit. */
export function takeToken(storageKey: string): string {
  if (linkToken) {
    sessionStorage.setItem(storageKey, linkToken);
    const token = linkToken;
    linkToken = null;
    return token;
  }
  return sessionStorage.getItem(storageKey) ?? '';
}

/** Reads the claims for display only; the hub verifies the signature. */
export function decodeClaims(token: string): TokenClaims {
  const payload = token.split('.')[1];
  if (!payload) return {};
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes)) as TokenClaims;
  } catch {
    return {};
  }
}
