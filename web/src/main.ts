// Entry point: take the token out of the URL, then load the page's stylesheet
// and icon, pick the view for this URL and mount it.
import { captureLinkToken } from './auth';
import { lang, t } from './i18n';
import { resolveRoute } from './router';
import { h } from './ui/dom';
import { pageHeader } from './ui/header';
import { mountConferenceView } from './views/conferenceView';
import { mountOpsView } from './views/opsView';
import { mountRecordsView } from './views/recordsView';
import { mountReviewView } from './views/reviewView';

// Before any request of this page: index.html loads nothing but this script.
captureLinkToken();
loadShell();

document.documentElement.lang = lang;
const root = document.getElementById('app')!;
const route = resolveRoute();
switch (route.view) {
  case 'specialist':
  case 'site':
    mountConferenceView(root, route.view, route.conferenceId);
    break;
  case 'ops':
    mountOpsView(root);
    break;
  case 'records':
    mountRecordsView(root);
    break;
  case 'review':
    mountReviewView(root, route.recordingId);
    break;
  default:
    root.replaceChildren(pageHeader(t('appTitle')).element, h('main', { class: 'not-found' }, h('p', { class: 'message' }, t('notFound'))));
}

/** The stylesheet and icon; the body (hidden in index.html) shows once the styles apply, or failed to load. */
function loadShell(): void {
  const show = () => {
    document.body.hidden = false;
  };
  const stylesheet = h('link', { rel: 'stylesheet', href: '/app.css', onload: show, onerror: show });
  document.head.append(stylesheet, h('link', { rel: 'icon', href: '/favicon.svg', type: 'image/svg+xml' }));
}
