import { takeToken, wasOldLinkRefused } from '../auth';
import { t, type MessageKey } from '../i18n';
import { telemetry } from '../telemetry';
import { h, setText } from '../ui/dom';
import type { DeviceStreamStats as OpsDevice, OpsWorker } from '../contract';
import { messageBox, pageHeader } from '../ui/header';

// The engineer's status page: GET /api/ops every 2 s (src/contract/ops.ts
// OpsReport). A hub without /api/ops (older build) falls back to /api/conferences.

const REFRESH_MS = 2000;

interface OpsPeer {
  peerId: string;
  displayName: string;
  role: string;
  producers: number;
  consumers: number;
  transports?: number;
  bitrateIn?: number;
  bitrateOut?: number;
  packetLossIn?: number;
  packetLossOut?: number;
  /** The worker of the router the peer's transports are on (absent from older hubs). */
  workerSlot?: number | null;
}

interface OpsConference {
  conferenceId: string;
  workerSlot: number | null;
  /** One router per worker the conference uses, and the producers piped between them (absent from older hubs). */
  routers?: { workerSlot: number; peers: number; consumers: number; pipes: number }[];
  pipes?: number;
  producers?: number;
  peers: OpsPeer[];
}

/** /api/ops, or the /api/conferences fallback (conference and peer rows only, without flow columns). */
interface ShownReport {
  generatedAt?: string;
  workers?: OpsWorker[];
  conferences: OpsConference[];
  devices?: OpsDevice[];
  signaling?: { sockets: number; requestsPerSecond: number };
}

/** GET /api/cluster (src/cluster/HubCluster.ts ClusterReport); `enabled: false` on a hub without Redis. */
interface ClusterHub {
  hubId: string;
  region: string;
  url: string;
  draining: boolean;
  heartbeatAt: number;
  load: { conferences: number; peers: number; consumers: number; bitrateIn: number; bitrateOut: number; pipesIn: number; pipesOut: number };
}
interface ClusterReport {
  enabled: boolean;
  hubId?: string;
  redis?: string;
  hubs: ClusterHub[];
  conferences: Array<{ conferenceId: string; hubs: string[] }>;
}

type Column<T> = [header: string, cell: (row: T) => string | number];

/** A table section that rewrites only the cells whose text changed. */
class LiveTable<T> {
  readonly element: HTMLElement;
  readonly #body = h('tbody');
  readonly #empty: HTMLElement;

  constructor(
    title: string,
    private readonly columns: Column<T>[],
    id: string,
  ) {
    this.#empty = h('p', { class: 'empty' }, t('none'));
    this.element = h(
      'section',
      { class: 'card ops-section', id },
      h('h2', {}, title),
      h('div', { class: 'table-scroll' }, h('table', { class: 'data-table' }, h('thead', {}, h('tr', {}, ...columns.map(([head]) => h('th', {}, head)))), this.#body)),
      this.#empty,
    );
  }

  update(rows: T[]): void {
    while (this.#body.rows.length > rows.length) this.#body.deleteRow(-1);
    rows.forEach((row, i) => {
      const tr = this.#body.rows[i] ?? this.#body.insertRow();
      this.columns.forEach(([, cell], j) => setText(tr.cells[j] ?? tr.insertCell(), String(cell(row))));
    });
    this.#empty.hidden = rows.length > 0;
  }
}

const num = (v: number | null | undefined, digits = 0) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const kbps = (bps: number | undefined) => (bps === undefined ? '–' : `${Math.round(bps / 1000)} kb/s`);
const pct = (fraction: number | undefined) => (fraction === undefined ? '–' : `${(fraction * 100).toFixed(1)}%`);

export function mountOpsView(root: HTMLElement): void {
  telemetry.view = 'ops';
  document.body.dataset.view = 'ops';
  document.title = `${t('operations')} · Hoichan`;
  const token = takeToken('hoichan.token.ops');
  const header = pageHeader(t('operations'));
  const message = messageBox();
  const updated = h('p', { class: 'updated', id: 'ops-updated' });

  const workers = new LiveTable<OpsWorker>(
    t('workers'),
    [
      ['Slot', (w) => w.slot],
      ['PID', (w) => w.pid],
      ['CPU %', (w) => num(w.cpuPercent, 1)],
      ['RSS MB', (w) => (w.rssBytes === null ? '–' : num(w.rssBytes / 1048576))],
      ['Routers', (w) => w.routers],
      ['Transports', (w) => w.transports],
      ['Producers', (w) => w.producers],
      ['Consumers', (w) => w.consumers],
    ],
    'ops-workers',
  );
  const conferences = new LiveTable<OpsConference>(
    t('conferences'),
    [
      ['ID', (c) => c.conferenceId],
      // "worker: peers" per router, e.g. "0: 12 · 1: 30".
      ['Routers', (c) => (c.routers ? c.routers.map((r) => `${r.workerSlot}: ${r.peers}`).join(' · ') : String(c.workerSlot ?? '–'))],
      ['Pipes', (c) => c.pipes ?? 0],
      [t('participants'), (c) => c.peers.length],
      ['Producers', (c) => c.producers ?? c.peers.reduce((n, p) => n + p.producers, 0)],
      ['Consumers', (c) => c.peers.reduce((n, p) => n + p.consumers, 0)],
    ],
    'ops-conferences',
  );
  const peers = new LiveTable<OpsPeer & { conferenceId: string }>(
    t('participants'),
    [
      [t('conference'), (p) => p.conferenceId],
      ['Name', (p) => p.displayName],
      ['Role', (p) => (['specialist', 'site', 'engineer'].includes(p.role) ? t(`role.${p.role}` as MessageKey) : p.role)],
      ['Worker', (p) => p.workerSlot ?? '–'],
      ['Prod/cons', (p) => `${p.producers}/${p.consumers}`],
      ['In', (p) => kbps(p.bitrateIn)],
      ['Out', (p) => kbps(p.bitrateOut)],
      ['Loss in/out', (p) => `${pct(p.packetLossIn)} / ${pct(p.packetLossOut)}`],
    ],
    'ops-peers',
  );
  const devices = new LiveTable<OpsDevice>(
    t('deviceStreams'),
    [
      ['Device', (d) => d.deviceId],
      ['Site', (d) => d.siteId ?? '–'],
      [t('conference'), (d) => d.conferenceId ?? '–'],
      ['Protocol', (d) => d.protocol ?? '–'],
      [t('status'), (d) => (d.status ?? '–') + (d.reason ? ` (${d.reason})` : '')],
      [t('readingsPerSecond'), (d) => num(d.readingsPerSecond, 1)],
      [`${t('lag')} ms`, (d) => num(d.uplinkLagMs)],
      ['Journal', (d) => num(d.siteJournalDepth)],
      ['Duplicates', (d) => num(d.duplicatesDropped)],
    ],
    'ops-devices',
  );
  const clusterHubs = new LiveTable<ClusterHub & { self: boolean }>(
    t('clusterHubs'),
    [
      ['Hub', (c) => (c.self ? `${c.hubId} *` : c.hubId)],
      ['Region', (c) => c.region],
      ['URL', (c) => c.url],
      [t('conferences'), (c) => c.load.conferences],
      [t('participants'), (c) => c.load.peers],
      ['Consumers', (c) => c.load.consumers],
      ['In/out', (c) => `${kbps(c.load.bitrateIn)} / ${kbps(c.load.bitrateOut)}`],
      ['Pipes in/out', (c) => `${c.load.pipesIn}/${c.load.pipesOut}`],
      [t('status'), (c) => (c.draining ? 'draining' : 'serving')],
    ],
    'ops-cluster-hubs',
  );
  const clusterSpans = new LiveTable<{ conferenceId: string; hubs: string[] }>(
    t('clusterSpans'),
    [
      [t('conference'), (c) => c.conferenceId],
      ['Hubs', (c) => c.hubs.join(', ')],
    ],
    'ops-cluster-conferences',
  );
  clusterHubs.element.hidden = true;
  clusterSpans.element.hidden = true;
  const signaling = h('p', { class: 'signaling' });
  root.replaceChildren(
    header.element,
    message.element,
    h('main', { class: 'ops' }, updated, signaling, workers.element, conferences.element, peers.element, devices.element, clusterHubs.element, clusterSpans.element),
  );

  if (!token) {
    message.show(t(wasOldLinkRefused() ? 'oldLinkFormat' : 'tokenMissing'));
    header.state.dataset.state = 'error';
    setText(header.state, t('state.error'));
    return;
  }

  const render = (report: ShownReport) => {
    workers.element.hidden = report.workers === undefined;
    devices.element.hidden = report.devices === undefined;
    workers.update(report.workers ?? []);
    conferences.update(report.conferences);
    peers.update(report.conferences.flatMap((c) => c.peers.map((p) => ({ ...p, conferenceId: c.conferenceId }))));
    devices.update(Array.isArray(report.devices) ? report.devices : []);
    setText(signaling, report.signaling ? `socket.io: ${report.signaling.sockets} · ${report.signaling.requestsPerSecond} req/s` : '');
    setText(updated, t('updatedAt', { t: new Date(report.generatedAt ?? Date.now()).toLocaleTimeString() }));
  };

  let source = '/api/ops';
  const refresh = async () => {
    try {
      let response = await fetch(source, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
      if (response.status === 404 && source === '/api/ops') {
        source = '/api/conferences';
        response = await fetch(source, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
      }
      if (response.status === 401 || response.status === 403) {
        message.show(t('unauthorized'));
        header.state.dataset.state = 'error';
        setText(header.state, t('state.error'));
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      render((await response.json()) as ShownReport);
      // A hub of a cluster also shows the other hubs (a hub without /api/cluster or Redis hides the tables).
      const cluster = await fetch('/api/cluster', { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' })
        .then((r) => (r.ok ? (r.json() as Promise<ClusterReport>) : undefined))
        .catch(() => undefined);
      clusterHubs.element.hidden = clusterSpans.element.hidden = !cluster?.enabled;
      if (cluster?.enabled) {
        clusterHubs.update(cluster.hubs.map((c) => ({ ...c, self: c.hubId === cluster.hubId })));
        clusterSpans.update(cluster.conferences);
      }
      message.hide();
      header.state.dataset.state = 'live';
      setText(header.state, t('state.live'));
    } catch (err) {
      message.show(t('fetchFailed', { e: (err as Error).message }));
      header.state.dataset.state = 'disconnected';
      setText(header.state, t('state.disconnected'));
    }
    window.setTimeout(() => void refresh(), REFRESH_MS);
  };
  void refresh();
}
