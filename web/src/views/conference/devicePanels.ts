import type { DeviceInfo, Reading } from '../../contract';
import { DevicePanel, formatAge } from '../../devices/devicePanel';
import type { AlarmSound } from '../../devices/alarmSound';
import { deviceTypeLabel, t, type MessageKey } from '../../i18n';
import { telemetry } from '../../telemetry';
import { h, setText } from '../../ui/dom';

/** Every device of the conference as a monitor panel, refreshed twice a second. */
export class DevicePanels {
  readonly element: HTMLElement;
  readonly panels = new Map<string, DevicePanel>();
  readonly #empty: HTMLElement;
  readonly #listeners: (() => void)[] = [];

  constructor(
    private readonly conferenceId: string,
    private readonly alarmSound: AlarmSound,
  ) {
    this.#empty = h('p', { class: 'empty' }, t('noDevices'));
    this.element = h('section', { class: 'device-panels', 'aria-label': t('devices') }, this.#empty);
    window.setInterval(() => this.render(), 500);
    telemetry.devices = () => [...this.panels.values()].map((p) => p.snapshot());
  }

  /** Called after each refresh (the site's device table follows the panels). */
  onRender(listener: () => void): void {
    this.#listeners.push(listener);
  }

  upsert(info: DeviceInfo): DevicePanel {
    let panel = this.panels.get(info.deviceId);
    if (panel) panel.setInfo(info);
    else {
      panel = new DevicePanel(info);
      this.panels.set(info.deviceId, panel);
      this.element.append(panel.element);
    }
    this.#empty.hidden = this.panels.size > 0;
    for (const listener of this.#listeners) listener();
    return panel;
  }

  readings(deviceId: string, readings: Reading[], history = false): void {
    const panel =
      this.panels.get(deviceId) ??
      // Readings before any DeviceInfo: show them under a placeholder identity.
      this.upsert({ deviceId, conferenceId: this.conferenceId, type: 'other', model: deviceId, protocol: '', status: 'online', channels: [] });
    panel.apply(readings, history);
  }

  render(): void {
    const now = Date.now();
    for (const panel of this.panels.values()) panel.render(now);
    // Only active alarms sound (an unknown one is shown, not sounded); keys are per device.
    const alarms = [...this.panels.entries()].flatMap(([deviceId, p]) => p.soundingAlarms().map((a) => ({ key: `${deviceId}|${a.key}`, priority: a.priority })));
    alarms.sort((a, b) => ['high', 'medium', 'low'].indexOf(a.priority) - ['high', 'medium', 'low'].indexOf(b.priority));
    this.alarmSound.update(alarms);
    for (const listener of this.#listeners) listener();
  }
}

/** The site's own view of its devices: a compact status table. */
export function deviceTable(panels: DevicePanels): HTMLElement {
  const body = h('tbody');
  const table = h(
    'table',
    { class: 'data-table site-devices' },
    h('thead', {}, h('tr', {}, ...(['model', 'type', 'protocol', 'status', 'lastData'] as MessageKey[]).map((k) => h('th', {}, t(k))))),
    body,
  );
  panels.onRender(() => {
    const now = Date.now();
    const rows = [...panels.panels.values()];
    while (body.rows.length > rows.length) body.deleteRow(-1);
    rows.forEach((panel, i) => {
      const row = body.rows[i] ?? body.insertRow();
      while (row.cells.length < 5) row.insertCell();
      const { info, lastLiveAt } = panel.model;
      setText(row.cells[0]!, info.model);
      setText(row.cells[1]!, deviceTypeLabel(info.type));
      setText(row.cells[2]!, info.protocol);
      setText(row.cells[3]!, t(`status.${info.status}`) + (info.reason ? ` (${info.reason})` : ''));
      row.cells[3]!.dataset.status = info.status;
      setText(row.cells[4]!, lastLiveAt ? formatAge(now - lastLiveAt) : t('noData'));
    });
  });
  return h('div', { class: 'table-scroll' }, table);
}
