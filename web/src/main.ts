// Entry point: pick the view for this URL and mount it.
import { lang, t } from './i18n';
import { resolveRoute } from './router';
import { h } from './ui/dom';
import { pageHeader } from './ui/header';
import { mountConferenceView } from './views/conferenceView';
import { mountOpsView } from './views/opsView';

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
  default:
    root.replaceChildren(pageHeader(t('appTitle')).element, h('main', { class: 'not-found' }, h('p', { class: 'message' }, t('notFound'))));
}
