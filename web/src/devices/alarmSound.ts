import type { AlarmPriority } from '../contract';

// Alarm tones, off by default (a conference viewer is not the bedside monitor;
// the site's own monitor alarms at the bedside). Patterns loosely follow
// IEC 60601-1-8: high = two bursts of five fast pulses, medium = three pulses,
// low = two. The AudioContext is created on the click that turns sound on,
// as browsers require a user gesture. Only active alarms sound: an ended
// alarm's pattern is cut off at once, and an alarm whose device went offline
// ("unknown") is shown but never sounded.

const PATTERNS: Record<AlarmPriority, { pulses: number; gapS: number; hz: number }> = {
  high: { pulses: 5, gapS: 0.12, hz: 880 },
  medium: { pulses: 3, gapS: 0.2, hz: 660 },
  low: { pulses: 2, gapS: 0.3, hz: 520 },
};
/** A still-active alarm sounds again this often. */
const REPEAT_MS: Record<AlarmPriority, number> = { high: 10_000, medium: 20_000, low: 60_000 };

export class AlarmSound {
  #context: AudioContext | undefined;
  #enabled = false;
  readonly #lastPlayed = new Map<string, number>();
  /** Oscillators scheduled per priority, so a pattern stops when no alarm of its priority is left. */
  readonly #playing = new Map<AlarmPriority, OscillatorNode[]>();

  get enabled(): boolean {
    return this.#enabled;
  }

  setEnabled(on: boolean): void {
    this.#enabled = on;
    if (on) {
      this.#context ??= new AudioContext();
      void this.#context.resume();
    } else void this.#context?.suspend();
  }

  /**
   * Sounds the highest-priority active alarm if it is new or due to repeat;
   * stops the pattern of any priority no active alarm has any more. Keys must
   * be unique across devices.
   */
  update(active: { key: string; priority: AlarmPriority }[], now = Date.now()): void {
    for (const key of [...this.#lastPlayed.keys()]) if (!active.some((a) => a.key === key)) this.#lastPlayed.delete(key);
    for (const priority of [...this.#playing.keys()]) if (!active.some((a) => a.priority === priority)) this.#stop(priority);
    if (!this.#enabled || !this.#context) return;
    const top = active[0];
    if (!top) return;
    const last = this.#lastPlayed.get(top.key);
    if (last !== undefined && now - last < REPEAT_MS[top.priority]) return;
    this.#lastPlayed.set(top.key, now);
    this.#play(top.priority);
  }

  #stop(priority: AlarmPriority): void {
    for (const osc of this.#playing.get(priority) ?? []) {
      try {
        osc.stop();
      } catch {
        // Already stopped: nothing to cut.
      }
    }
    this.#playing.delete(priority);
  }

  #play(priority: AlarmPriority): void {
    const ctx = this.#context!;
    const { pulses, gapS, hz } = PATTERNS[priority];
    const start = ctx.currentTime + 0.02;
    this.#stop(priority);
    const scheduled: OscillatorNode[] = [];
    this.#playing.set(priority, scheduled);
    for (let i = 0; i < pulses; i++) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = hz;
      const at = start + i * (gapS + 0.1);
      gain.gain.setValueAtTime(0, at);
      gain.gain.linearRampToValueAtTime(0.15, at + 0.01);
      gain.gain.linearRampToValueAtTime(0, at + 0.1);
      osc.connect(gain).connect(ctx.destination);
      osc.start(at);
      osc.stop(at + 0.12);
      scheduled.push(osc);
    }
    // The pattern is over when its last pulse ends.
    scheduled[scheduled.length - 1]!.onended = () => {
      if (this.#playing.get(priority) === scheduled) this.#playing.delete(priority);
    };
  }
}
