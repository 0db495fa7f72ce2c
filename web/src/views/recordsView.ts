import { takeToken, wasOldLinkRefused } from '../auth';
import { t } from '../i18n';
import { telemetry } from '../telemetry';
import { h, setText } from '../ui/dom';
import { messageBox, pageHeader } from '../ui/header';

// The monthly programme report (GET /api/records/report, src/records/routes.ts):
// per site, the consultations that started in the month, their minutes, the
// other sites in them, the site's devices and their alarms. Engineers see every
// conference; a specialist's token shows its own conference only.

interface SiteMonth {
  siteId: string;
  consultations: number;
  minutes: number;
  sitesJoined: number;
  devicesUsed: number;
  alarms: number;
}

interface MonthlyReport {
  month: string;
  totals: { consultations: number; minutes: number; sites: number; devicesUsed: number; alarms: number };
  sites: SiteMonth[];
}

const thisMonth = () => new Date().toISOString().slice(0, 7);

export function mountRecordsView(root: HTMLElement): void {
  telemetry.view = 'records';
  document.body.dataset.view = 'records';
  document.title = `${t('records')} · Hoichan`;
  const token = takeToken('hoichan.token.records');
  const header = pageHeader(t('records'));
  const message = messageBox();
  const month = h('input', { type: 'month', id: 'records-month', value: new URLSearchParams(location.search).get('month') ?? thisMonth() }) as HTMLInputElement;
  const csv = h('button', { type: 'button', id: 'records-csv' }, t('downloadCsv'));
  const body = h('tbody');
  const foot = h('tfoot');
  const columns = [t('site'), t('consultations'), t('minutes'), t('sitesJoined'), t('devicesUsed'), t('alarms')];
  const table = h('table', { class: 'data-table', id: 'records-report' }, h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', {}, c)))), body, foot);
  root.replaceChildren(
    header.element,
    message.element,
    h('main', { class: 'ops records' }, h('section', { class: 'card ops-section' }, h('h2', {}, t('monthlyReport')), h('p', {}, h('label', {}, `${t('month')} `, month), ' ', csv), h('div', { class: 'table-scroll' }, table))),
  );
  if (!token) {
    message.show(t(wasOldLinkRefused() ? 'oldLinkFormat' : 'tokenMissing'));
    header.state.dataset.state = 'error';
    setText(header.state, t('state.error'));
    return;
  }

  const row = (cells: (string | number)[]) => h('tr', {}, ...cells.map((c) => h('td', {}, String(c))));
  const fail = (text: string) => {
    message.show(text);
    header.state.dataset.state = 'error';
    setText(header.state, t('state.error'));
  };
  const get = async (path: string): Promise<Response | undefined> => {
    const response = await fetch(path, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
    if (response.status === 401 || response.status === 403) {
      fail(t('unauthorized'));
      return undefined;
    }
    if (!response.ok) {
      const error = (await response.json().catch(() => undefined)) as { error?: { message?: string } } | undefined;
      throw new Error(error?.error?.message ?? `HTTP ${response.status}`);
    }
    return response;
  };

  const load = async () => {
    try {
      const response = await get(`/api/records/report?month=${encodeURIComponent(month.value)}`);
      if (!response) return;
      const report = (await response.json()) as MonthlyReport;
      body.replaceChildren(...report.sites.map((s) => row([s.siteId, s.consultations, s.minutes, s.sitesJoined, s.devicesUsed, s.alarms])));
      const totals = report.totals;
      foot.replaceChildren(row([t('allSites'), totals.consultations, totals.minutes, totals.sites, totals.devicesUsed, totals.alarms]));
      message.hide();
      header.state.dataset.state = 'live';
      setText(header.state, report.month);
    } catch (err) {
      fail(t('reportFailed', { e: (err as Error).message }));
    }
  };

  csv.addEventListener('click', () => {
    const [year, mon] = month.value.split('-').map(Number) as [number, number];
    const from = new Date(Date.UTC(year, mon - 1, 1)).toISOString();
    const to = new Date(Date.UTC(year, mon, 1)).toISOString();
    void get(`/api/records/sessions.csv?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`)
      .then(async (response) => {
        if (!response) return;
        // The token is a header, not a URL: the file comes through fetch and a blob link.
        const link = h('a', { href: URL.createObjectURL(await response.blob()), download: `hoichan-sessions-${month.value}.csv` }) as HTMLAnchorElement;
        link.click();
        URL.revokeObjectURL(link.href);
      })
      .catch((err: Error) => fail(t('reportFailed', { e: err.message })));
  });
  month.addEventListener('change', () => void load());
  void load();
}
