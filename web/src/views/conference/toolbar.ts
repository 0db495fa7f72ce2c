import { t } from '../../i18n';
import type { ConferenceSession, ReceiveMode } from '../../media/session';
import { AlarmSound } from '../../devices/alarmSound';
import { h, setText } from '../../ui/dom';

/**
 * The call controls: microphone, camera, screen share, what to receive, alarm
 * sound and leave. Keyboard: every control is a native button or select; M and
 * V toggle microphone and camera when focus is not in a form field.
 */
export class Toolbar {
  readonly element: HTMLElement;
  readonly #session: ConferenceSession;
  readonly #mic: HTMLButtonElement;
  readonly #camera: HTMLButtonElement;
  readonly #screen: HTMLButtonElement;
  readonly #sound: HTMLButtonElement;
  readonly #leave: HTMLButtonElement;
  readonly #receive: HTMLSelectElement;

  constructor(
    session: ConferenceSession,
    readonly alarmSound: AlarmSound,
    private readonly onError: (message: string) => void,
  ) {
    this.#session = session;
    this.#mic = h('button', { type: 'button', class: 'control', id: 'toggle-mic', 'aria-keyshortcuts': 'M', onclick: () => void this.#toggleMic() });
    this.#camera = h('button', { type: 'button', class: 'control', id: 'toggle-camera', 'aria-keyshortcuts': 'V', onclick: () => void this.#toggleCamera() });
    this.#screen = h('button', { type: 'button', class: 'control', id: 'toggle-screen', onclick: () => void this.#toggleScreen() });
    this.#sound = h('button', { type: 'button', class: 'control', id: 'toggle-alarm-sound', onclick: () => this.#toggleSound() });
    this.#leave = h('button', { type: 'button', class: 'control danger', id: 'leave', onclick: () => void this.#leaveOrRejoin() });
    this.#receive = h(
      'select',
      { id: 'receive-mode', class: 'control', 'aria-label': t('receive'), onchange: () => void session.setReceiveMode(this.#receive.value as ReceiveMode) },
      ...(['full', 'low', 'audio'] as const).map((mode) => h('option', { value: mode }, t(`bw.${mode}`))),
    );
    if (!('getDisplayMedia' in (navigator.mediaDevices ?? {}))) this.#screen.hidden = true;
    this.element = h('nav', { class: 'toolbar', 'aria-label': 'Controls' }, this.#mic, this.#camera, this.#screen, this.#receive, this.#sound, this.#leave);
    session.on('ownProducersChanged', () => this.refresh());
    session.on('state', () => this.refresh());
    document.addEventListener('keydown', (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if ((event.target as HTMLElement).closest('input, select, textarea')) return;
      if (event.key === 'm' || event.key === 'M') void this.#toggleMic();
      if (event.key === 'v' || event.key === 'V') void this.#toggleCamera();
    });
    this.refresh();
  }

  refresh(): void {
    const s = this.#session;
    const joined = s.state !== 'left';
    setText(this.#mic, s.micEnabled ? t('mute') : t('unmute'));
    this.#mic.setAttribute('aria-pressed', String(!s.micEnabled));
    setText(this.#camera, s.cameraEnabled ? t('cameraOff') : t('cameraOn'));
    this.#camera.setAttribute('aria-pressed', String(!s.cameraEnabled));
    setText(this.#screen, s.sharingScreen ? t('stopShare') : t('shareScreen'));
    setText(this.#sound, this.alarmSound.enabled ? t('alarmSoundOn') : t('alarmSoundOff'));
    this.#sound.setAttribute('aria-pressed', String(this.alarmSound.enabled));
    setText(this.#leave, joined ? t('leave') : t('rejoin'));
    for (const control of [this.#mic, this.#camera, this.#screen, this.#receive]) control.disabled = !joined || s.state === 'ended';
    // A dead token cannot rejoin: only a new link can.
    this.#leave.disabled = s.state === 'ended';
  }

  async #toggleMic(): Promise<void> {
    await this.#session.setMicEnabled(!this.#session.micEnabled).catch((e: Error) => this.onError(e.message));
    this.refresh();
  }

  async #toggleCamera(): Promise<void> {
    await this.#session.setCameraEnabled(!this.#session.cameraEnabled).catch((e: Error) => this.onError(e.message));
    this.refresh();
  }

  async #toggleScreen(): Promise<void> {
    try {
      if (this.#session.sharingScreen) await this.#session.stopScreenShare();
      else await this.#session.startScreenShare();
    } catch (err) {
      // The user cancelling the picker is not an error worth a banner.
      if ((err as DOMException).name !== 'NotAllowedError') this.onError(t('screenShareFailed', { e: (err as Error).message }));
    }
    this.refresh();
  }

  #toggleSound(): void {
    this.alarmSound.setEnabled(!this.alarmSound.enabled);
    this.refresh();
  }

  async #leaveOrRejoin(): Promise<void> {
    if (this.#session.state === 'left') this.#session.rejoin();
    else await this.#session.leave();
    this.refresh();
  }
}
