// Which view a URL opens. Old links (/?conference=ID#token=...) are rewritten
// in place to the view for the token's role, keeping their query string.

import { decodeClaims, peekLinkToken } from './auth';

export type Route =
  | { view: 'specialist'; conferenceId: string }
  | { view: 'site'; conferenceId: string }
  | { view: 'ops' }
  | { view: 'records' }
  | { view: 'review'; recordingId: string }
  | { view: 'not-found' };

export function resolveRoute(): Route {
  const params = new URLSearchParams(location.search);
  const legacyConference = params.get('conference');
  if ((location.pathname === '/' || location.pathname === '/index.html') && legacyConference) {
    const role = decodeClaims(peekLinkToken()).role;
    params.delete('conference');
    const path = `/${role === 'site' ? 'site' : 'conference'}/${encodeURIComponent(legacyConference)}`;
    history.replaceState(null, '', `${path}${params.size ? `?${params}` : ''}`);
  }
  const parts = location.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'conference' && parts[1]) return { view: 'specialist', conferenceId: parts[1] };
  if (parts[0] === 'site' && parts[1]) return { view: 'site', conferenceId: parts[1] };
  if (parts[0] === 'ops') return { view: 'ops' };
  if (parts[0] === 'records') return { view: 'records' };
  if (parts[0] === 'review' && parts[1]) return { view: 'review', recordingId: parts[1] };
  return { view: 'not-found' };
}
