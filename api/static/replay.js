// The time slider under the route: drag (or use the arrow keys) to see where the bike was,
// or play the route back. At the right end it follows the live route as it grows.
import { dateTime } from "./format.js";
import { t } from "./i18n.js";

const TICK_MS = 100;
const REPLAY_TICKS = 150; // a whole route plays back in about 15 s

export class Replay {
  constructor({ slider, button, label, onTime }) {
    Object.assign(this, { slider, button, label, onTime });
    this.start = 0;
    this.end = 0;
    this.timer = null;
    slider.addEventListener("input", () => this.show());
    button.addEventListener("click", () => (this.timer ? this.pause() : this.play()));
  }

  get time() {
    return this.start + Number(this.slider.value) * 1000;
  }

  atEnd() {
    return Number(this.slider.value) >= Number(this.slider.max);
  }

  /** The route now spans start..end (ms); a slider at the end stays at the (new) end. */
  setRange(start, end) {
    const follow = this.atEnd() || this.end === 0;
    const time = this.time;
    this.start = start;
    this.end = Math.max(end, start);
    this.slider.max = String(Math.ceil((this.end - start) / 1000));
    this.slider.value = follow ? this.slider.max : String(Math.round((time - start) / 1000));
    this.show();
  }

  show() {
    const text = dateTime(new Date(this.time).toISOString());
    this.slider.setAttribute("aria-valuetext", text);
    this.label.textContent = this.atEnd() ? t("replay.now", { time: text }) : text;
    this.onTime(this.time);
  }

  play() {
    if (this.atEnd()) this.slider.value = "0";
    const step = Math.max(1, Math.ceil(Number(this.slider.max) / REPLAY_TICKS));
    this.button.setAttribute("aria-pressed", "true");
    this.button.textContent = t("replay.pause");
    this.timer = setInterval(() => {
      this.slider.value = String(Math.min(Number(this.slider.value) + step, Number(this.slider.max)));
      this.show();
      if (this.atEnd()) this.pause();
    }, TICK_MS);
  }

  pause() {
    clearInterval(this.timer);
    this.timer = null;
    this.button.setAttribute("aria-pressed", "false");
    this.button.textContent = t("replay.play");
  }

  /** Jump to a moment (e.g. a passage chosen in the list). */
  jump(time) {
    this.pause();
    this.slider.value = String(Math.round((time - this.start) / 1000));
    this.show();
  }
}
