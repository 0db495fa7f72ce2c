import { lang, t } from '../i18n';
import { h } from './dom';

/** The page header: product name, a context label, a state badge and the language switch. */
export function pageHeader(context: string, label = ''): { element: HTMLElement; state: HTMLElement; extra: HTMLElement } {
  const state = h('span', { id: 'state', class: 'state', role: 'status' });
  const extra = h('span', { class: 'header-extra' });
  const other = lang === 'vi' ? 'en' : 'vi';
  const url = new URL(location.href);
  if (other === 'vi') url.searchParams.set('lang', 'vi');
  else url.searchParams.delete('lang');
  const element = h(
    'header',
    { class: 'page-header' },
    h('h1', {}, 'Hoichan'),
    h('span', { class: 'context', title: `${label} ${context}`.trim() }, label ? h('span', { class: 'context-label' }, `${label} `) : null, context),
    extra,
    state,
    h('a', { class: 'lang-switch', href: url.pathname + url.search, hreflang: other, title: other === 'vi' ? 'Tiếng Việt' : 'English' }, other.toUpperCase()),
  );
  return { element, state, extra };
}

export function messageBox(): { element: HTMLElement; show(text: string, kind?: 'error' | 'info'): void; hide(): void } {
  const element = h('p', { id: 'message', class: 'message', hidden: true, role: 'alert' });
  return {
    element,
    show(text, kind = 'error') {
      element.textContent = text;
      element.dataset.kind = kind;
      element.hidden = false;
    },
    hide() {
      element.hidden = true;
    },
  };
}

export { t };
