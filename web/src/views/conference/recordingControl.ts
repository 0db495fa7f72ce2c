// The recording indicator every peer sees (docs/RECORDING.md, "Consent"):
// a red badge with who started it and since when, from the join reply and the
// recordingState event. Specialists also get the start / stop button; the hub
// decides who may (a site's request is refused).

import type { RecordingStateEvent, Role } from '../../contract';
import { t } from '../../i18n';
import type { ConferenceSession } from '../../media/session';
import { h, setText } from '../../ui/dom';

export function recordingControl(session: ConferenceSession, conferenceId: string, role: Role, onError: (text: string) => void): HTMLElement {
  const badge = h('span', { id: 'recording-indicator', class: 'recording-indicator', role: 'status', hidden: true });
  const button = h('button', { id: 'recording-toggle', class: 'recording-toggle', type: 'button', hidden: role !== 'specialist' }, t('recording.start'));
  let state: RecordingStateEvent = { active: false, recordingId: null, startedAt: null, by: null };
  const show = (next: RecordingStateEvent) => {
    state = next;
    badge.hidden = !next.active;
    if (next.active) {
      const since = new Date(next.startedAt ?? Date.now()).toLocaleTimeString();
      setText(badge, t('recording.active', { by: next.by ?? '?', t: since }));
      badge.dataset.recordingId = next.recordingId ?? '';
    }
    setText(button, t(next.active ? 'recording.stop' : 'recording.start'));
  };
  session.on('joined', (joined) => show(joined.recording ?? { active: false, recordingId: null, startedAt: null, by: null }));
  session.signaling.socket.on('recordingState', (next: RecordingStateEvent) => show(next));
  button.addEventListener('click', () => {
    button.disabled = true;
    session.signaling
      .request(state.active ? 'stopRecording' : 'startRecording', { conferenceId })
      .catch((err: Error) => onError(`${t('recording.failed')}: ${err.message}`))
      .finally(() => {
        button.disabled = false;
      });
  });
  return h('span', { class: 'recording-control' }, badge, button);
}
