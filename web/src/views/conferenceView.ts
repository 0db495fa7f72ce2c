import { decodeClaims, takeToken, wasOldLinkRefused } from '../auth';
import type { PeerSummary, Role } from '../contract';
import { AlarmSound } from '../devices/alarmSound';
import { t } from '../i18n';
import { NetworkQualityMonitor } from '../media/networkQuality';
import { ConferenceSession, type ConnectionState } from '../media/session';
import { telemetry } from '../telemetry';
import { h, setText } from '../ui/dom';
import { messageBox, pageHeader } from '../ui/header';
import { DevicePanels, deviceTable } from './conference/devicePanels';
import { PeerGrid } from './conference/peerGrid';
import { recordingControl } from './conference/recordingControl';
import { Toolbar } from './conference/toolbar';

export type ConferenceViewKind = 'specialist' | 'site';

/**
 * The specialist view (/conference/:id) and the site view (/site/:id): the same
 * conference, with the site's page adding its camera/microphone picker, its
 * device table, and a note that the panels are what the specialists see.
 */
export function mountConferenceView(root: HTMLElement, kind: ConferenceViewKind, conferenceId: string): void {
  telemetry.view = kind;
  document.body.dataset.view = kind;
  const token = takeToken(`hoichan.token.${kind}.${conferenceId}`);
  const claims = decodeClaims(token);
  const displayName = claims.name ?? new URLSearchParams(location.search).get('name') ?? 'Guest';
  const role: Role = claims.role ?? (kind === 'site' ? 'site' : 'specialist');
  document.title = `${conferenceId} · ${t('appTitle')}`;

  const header = pageHeader(conferenceId, t('conference'));
  setText(header.extra, displayName);
  const message = messageBox();
  const notice = messageBox();
  notice.element.id = 'notice';
  // Set below, once the session exists: the grid reports what it shows, the session tells the hub.
  let viewChanged = () => {};
  const grid = new PeerGrid({ canPin: role === 'specialist', onViewChange: () => viewChanged() });
  const alarmSound = new AlarmSound();
  const devices = new DevicePanels(conferenceId, alarmSound);
  const side = h('aside', { class: 'side' });
  const mediaColumn = h('div', { class: 'media-column' }, grid.element);
  root.replaceChildren(header.element, message.element, notice.element, h('main', { class: `conference conference-${kind}` }, mediaColumn, side));

  const setState = (state: ConnectionState) => {
    header.state.dataset.state = state;
    setText(header.state, t(`state.${state}`));
  };
  setState('connecting');

  if (!token) {
    message.show(t(wasOldLinkRefused() ? 'oldLinkFormat' : 'tokenMissing'));
    setState('error');
    return;
  }
  if (role === 'engineer') {
    message.show(t('engineerNoMedia'));
    setState('error');
    return;
  }

  // A new link pasted into this tab changes only the fragment (no page load):
  // load the page again so captureLinkToken() takes the new token.
  window.addEventListener('hashchange', () => {
    if (new URLSearchParams(location.hash.slice(1)).has('token')) location.reload();
  });

  const session = new ConferenceSession({ token, conferenceId, displayName });
  viewChanged = () => session.setVideoPreferences(grid.videoPreferences());
  session.on('videoChoice', (choice) => grid.setVideoChoice(choice));
  const toolbar = new Toolbar(session, alarmSound, (text) => message.show(text));
  header.state.before(recordingControl(session, conferenceId, role, (text) => message.show(text)));
  root.append(toolbar.element);

  if (kind === 'site') {
    side.append(
      h('section', { class: 'card' }, h('h2', {}, t('publish')), inputPicker(session)),
      h('section', { class: 'card' }, h('h2', {}, t('siteDevices')), deviceTable(devices)),
      h('h2', { class: 'side-heading' }, t('whatSpecialistsSee')),
    );
  }
  side.append(devices.element);

  const self = (): PeerSummary => ({ peerId: session.peerId, displayName, role });
  const quality = new NetworkQualityMonitor(session, (peerId, q) => grid.setQuality(peerId, q));

  session.on('state', (state, detail) => {
    setState(state);
    grid.setReconnecting(state === 'reconnecting' || state === 'disconnected');
    if (state === 'ended') {
      // The token expired or was revoked: say so plainly, and that only a new link helps.
      message.show(t(detail === 'revoked' ? 'accessRevoked' : 'accessEnded'));
      message.element.dataset.ended = detail ?? 'expired';
      grid.clear();
      quality.stop();
    } else if (state === 'error') message.show(detail === 'unauthorized' ? t('unauthorized') : `${t('state.error')}: ${detail ?? ''}`);
    else if (state === 'left') {
      message.show(t('leftMessage'), 'info');
      grid.clear();
      quality.stop();
    } else if (state === 'live') message.hide();
  });
  session.on('joined', (joined) => {
    grid.clear();
    grid.upsertPeer(self(), true);
    grid.setLocalStream(session.peerId, session.localStream);
    for (const peer of joined.peers) grid.upsertPeer(peer);
    quality.start();
  });
  session.on('localMedia', (stream) => {
    if (session.peerId) grid.setLocalStream(session.peerId, stream);
    if (stream && !stream.getVideoTracks().length) notice.show(t('noMediaDevices'), 'info');
    else if (stream) notice.hide();
  });
  session.on('ownProducersChanged', () => grid.setLocalVideoOff(session.peerId, !session.cameraEnabled));
  session.on('peerJoined', (peer) => grid.upsertPeer(peer));
  session.on('peerLeft', (peerId) => grid.removePeer(peerId));
  session.on('consumerAdded', (entry) => grid.addConsumer(entry));
  session.on('consumerRemoved', (entry) => grid.removeConsumer(entry));
  session.on('activeSpeaker', (peerId) => grid.setSpeaker(peerId));
  session.on('videoSuspended', (consumerId, suspended) => grid.setSuspended(consumerId, suspended));
  telemetry.tiles = () => grid.tileStates();
  session.on('devices', (list) => list.forEach((info) => devices.upsert(info)));
  session.on('deviceStatus', (info) => devices.upsert(info));
  session.on('deviceReadings', (deviceId, readings, { history }) => devices.readings(deviceId, readings, history));
}

/** Camera and microphone pickers (enumerateDevices); labels appear once permission is granted. */
function inputPicker(session: ConferenceSession): HTMLElement {
  const camera = h('select', { id: 'camera-select', 'aria-label': t('camera') });
  const microphone = h('select', { id: 'microphone-select', 'aria-label': t('microphone') });
  const fill = async () => {
    const inputs = await navigator.mediaDevices.enumerateDevices();
    for (const [select, kind] of [
      [camera, 'videoinput'],
      [microphone, 'audioinput'],
    ] as const) {
      const current = session.localStream?.getTracks().find((tr) => (kind === 'videoinput' ? tr.kind === 'video' : tr.kind === 'audio'));
      const currentId = current?.getSettings().deviceId;
      select.replaceChildren(
        ...inputs
          .filter((d) => d.kind === kind)
          .map((d, i) => h('option', { value: d.deviceId, selected: d.deviceId === currentId }, d.label || `${kind === 'videoinput' ? t('camera') : t('microphone')} ${i + 1}`)),
      );
    }
  };
  camera.addEventListener('change', () => void session.switchInput('video', camera.value).then(fill));
  microphone.addEventListener('change', () => void session.switchInput('audio', microphone.value).then(fill));
  session.on('localMedia', () => void fill());
  navigator.mediaDevices?.addEventListener('devicechange', () => void fill());
  return h(
    'div',
    { class: 'input-picker' },
    h('label', {}, h('span', {}, t('camera')), camera),
    h('label', {}, h('span', {}, t('microphone')), microphone),
  );
}
