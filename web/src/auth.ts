// Where a page's token comes from: ?token= on first open, then sessionStorage so
// a reload works. The token is removed from the address bar so it does not end
// up in history, bookmarks or screenshots.

export interface TokenClaims {
  sub?: string;
  name?: string;
  role?: 'specialist' | 'site' | 'engineer';
  conf?: string;
  exp?: number;
}

export function takeToken(storageKey: string): string {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    sessionStorage.setItem(storageKey, fromUrl);
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
    return fromUrl;
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
