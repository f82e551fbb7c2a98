// The case view's time window: from / until (datetime-local, in the local zone), the presets
// "since the theft" and "last 24 h", and a reset to the default window (since the theft, or
// the last day, until now and live). The page keeps the window in its address (since / until),
// so a reload or a link shows the same; a window the API would refuse is refused here first.
import { h } from "./dom.js";
import { isoToLocalInput, localInputToIso } from "./format.js";
import { t } from "./i18n.js";

const DAY_MS = 86_400_000;
const MAX_WINDOW_MS = 31 * DAY_MS; // the API's limit for a location lookup

export class WindowControl {
  /** Builds the form into `container`; `onApply({since, until})` gets ISO strings or "". */
  constructor(container, { onApply }) {
    this.onApply = onApply;
    this.stolenAt = null;
    this.shown = { since: null, until: null }; // {iso, local} of what the inputs were set to
    const input = (key) =>
      h("input", { type: "datetime-local", id: `window-${key}`, name: key, "aria-describedby": "window-hint window-error" });
    const field = (key, input) =>
      h("div", { class: "field" }, h("label", { for: input.id, "data-i18n": `window.${key}` }, t(`window.${key}`)), input);
    const button = (id, key, attrs = {}) => h("button", { type: "button", id, "data-i18n": key, ...attrs }, t(key));
    this.since = input("since");
    this.until = input("until");
    this.error = h("p", { id: "window-error", class: "field-error", "aria-live": "polite" });
    this.theftButton = button("window-theft", "window.theft", { disabled: true });
    this.form = h(
      "form",
      { id: "window", class: "window-form screen-only", novalidate: true, "aria-labelledby": "window-title" },
      h("h2", { id: "window-title", "data-i18n": "window.title" }, t("window.title")),
      h("div", { class: "grid2" }, field("since", this.since), field("until", this.until)),
      h("p", { id: "window-hint", class: "hint", "data-i18n": "window.hint" }, t("window.hint")),
      this.error,
      h(
        "div",
        { class: "buttons tight" },
        h("button", { type: "submit", class: "primary", id: "window-apply", "data-i18n": "window.apply" }, t("window.apply")),
        this.theftButton,
        button("window-day", "window.day", { onclick: () => this.preset(new Date(Date.now() - DAY_MS).toISOString(), "") }),
        button("window-reset", "window.reset", { onclick: () => this.preset("", "") }),
      ),
    );
    this.theftButton.addEventListener("click", () => this.preset(this.stolenAt, ""));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.apply();
    });
    container.append(this.form);
  }

  /** The theft's time, for "since the theft" (none: the preset is off). */
  setTheft(stolenAt) {
    this.stolenAt = stolenAt || null;
    this.theftButton.disabled = !this.stolenAt;
  }

  /** Show a window ({since, until}, ISO or "") in the inputs. */
  show({ since, until }) {
    for (const [key, iso] of [["since", since], ["until", until]]) {
      const local = iso && !Number.isNaN(Date.parse(iso)) ? isoToLocalInput(new Date(iso)) : "";
      this[key].value = local;
      this.shown[key] = { iso: local ? iso : "", local };
    }
    this.mark(null, "");
  }

  // An input's instant: the exact one it was set to while unchanged (the inputs show minutes).
  read(key) {
    const value = this[key].value;
    if (!value) return "";
    return value === this.shown[key]?.local ? this.shown[key].iso : localInputToIso(value);
  }

  mark(input, text) {
    this.error.textContent = text;
    for (const i of [this.since, this.until]) i.setAttribute("aria-invalid", i === input && text ? "true" : "false");
  }

  /** The message refusing a window, and the input it is about; null when it may be sent. */
  check(since, until) {
    const now = Date.now();
    const [s, u] = [since ? Date.parse(since) : null, until ? Date.parse(until) : null];
    if (s != null && s >= (u ?? now)) return [u != null ? this.until : this.since, u != null ? t("window.order") : t("window.future")];
    if (u != null && s == null && this.stolenAt && u <= Date.parse(this.stolenAt)) return [this.until, t("window.beforeTheft")];
    if (s != null && (u ?? now) - s > MAX_WINDOW_MS) return [this.since, t("window.tooLong")];
    return null;
  }

  apply() {
    // A half-typed date leaves the input's value empty; the browser says so by badInput.
    const bad = [this.since, this.until].find((i) => i.validity.badInput);
    if (bad) return this.refuse(bad, t("window.bad"));
    const since = this.read("since");
    const until = this.read("until");
    const refused = this.check(since, until);
    if (refused) return this.refuse(...refused);
    this.mark(null, "");
    this.onApply({ since, until });
  }

  refuse(input, text) {
    this.mark(input, text);
    input.focus();
  }

  preset(since, until) {
    this.show({ since, until });
    this.apply();
  }
}
