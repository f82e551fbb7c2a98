// The officer's side panels: last seen, likely next readers with ETA (also marked on the
// map), cameras near the passages with links to their footage, and companions (tags that
// travelled with the stolen bike).
import { age, etaAttrs, missedLabel } from "./ages.js";
import { dateTime, duration, number } from "./format.js";
import { t } from "./i18n.js";
import { fillTable, h, row } from "./dom.js";
import { readerLabel } from "./reader-names.js";
import { getJson } from "./session.js";
import { say } from "./shell.js";

const L = window.L;

export class LastSeen {
  constructor(element) {
    this.element = element;
    this.seen = null;
    this.error = "";
  }

  async load(bikeId, query) {
    try {
      this.seen = await getJson(`/api/v1/bikes/${bikeId}/last-seen?${query}`);
      this.error = "";
    } catch (err) {
      this.seen = null;
      this.error = err.status === 404 ? "" : err.message;
    }
    this.render();
  }

  render() {
    const seen = this.seen;
    if (!seen) {
      this.element.textContent = this.error || t("seen.never");
      return;
    }
    this.element.replaceChildren(
      h("strong", {}, readerLabel(seen.reader_id)),
      " · ",
      dateTime(seen.at),
      h("span", { class: "muted" }, " (", age(seen.at), ")"),
    );
  }
}

export class NextReaders {
  constructor(table, map, readers) {
    this.table = table;
    this.layer = L.layerGroup().addTo(map);
    this.readers = readers;
    this.items = [];
  }

  async load(bikeId, query) {
    try {
      const body = await getJson(`/api/v1/bikes/${bikeId}/next-readers?${query}`);
      this.items = body.next_readers;
    } catch (err) {
      this.items = [];
      if (err.status !== 404) throw err;
    }
    this.render();
  }

  render() {
    this.layer.clearLayers();
    const rows = this.items.map((n) => {
      const eta = h(
        "span",
        {},
        h("span", { class: "eta-time" }, dateTime(n.eta)),
        h("span", { class: "muted" }, ` (${duration(n.travel_s)})`),
        missedLabel(),
      );
      const latlng = this.readers.get(n.reader_id);
      if (latlng) {
        L.circleMarker(latlng, { radius: 14, color: "#e65100", weight: 3, dashArray: "4 4", fill: false })
          .bindTooltip(t("next.tooltip", { reader: readerLabel(n.reader_id), eta: dateTime(n.eta) }))
          .addTo(this.layer);
      }
      return row([readerLabel(n.reader_id), eta, `${number(n.probability * 100)} %`], etaAttrs(n.eta));
    });
    fillTable(this.table, rows, t("next.none"));
  }
}

export class Cameras {
  constructor(table, status) {
    this.table = table;
    this.status = status;
    this.items = [];
  }

  async load(plate, query) {
    try {
      this.items = await getJson(`/api/v1/routes/${encodeURIComponent(plate)}/cameras?${query}`);
      this.status.textContent = "";
    } catch (err) {
      this.items = [];
      this.status.textContent = err.message;
    }
    this.render();
  }

  render() {
    const rows = this.items.map((c) => {
      const footage = c.footage_url
        ? h("a", { href: c.footage_url, target: "_blank", rel: "noopener" }, t("cameras.open"))
        : t("cameras.nolink");
      const name = h("span", {}, c.name || c.camera_id, h("span", { class: "muted" }, ` · ${c.reader_id}, ${number(c.distance_m)} m`));
      return row([name, `${dateTime(c.from)} – ${dateTime(c.to)}`, footage]);
    });
    fillTable(this.table, rows, t("cameras.none"));
  }
}

// Companions are a heavier query than the other panels: refreshed with them, but at most
// once a minute (a refresh asked for sooner runs when the minute is up).
export const COMPANIONS_EVERY_MS = 60_000;

/**
 * Tags that passed the same readers as the stolen bike, within seconds, more than once
 * (`GET /thefts/{id}/companions`), most significant first: identification as the API gives
 * it (tag, bike id; the plate from the bike's record, linked to its route), score, shared
 * passages with first and last, and the passages themselves on demand.
 */
export class Companions {
  /** Fills `section` (heading, status, list); `routeHref(plate)` links a companion's route. */
  constructor(section, { routeHref }) {
    this.routeHref = routeHref;
    this.count = h("span", { id: "companion-count", class: "badge" });
    this.status = h("p", { id: "companions-status", class: "status", role: "status", "aria-live": "polite" });
    this.list = h("ol", { id: "companions", class: "companions" });
    section.setAttribute("aria-labelledby", "companions-title");
    section.append(
      h("h2", { id: "companions-title" }, h("span", { "data-i18n": "companions.title" }, t("companions.title")), " ", this.count),
      h("p", { class: "hint", "data-i18n": "companions.hint" }, t("companions.hint")),
      this.status,
      this.list,
    );
    this.url = null; // null: nothing to look for (see `note`)
    this.note = ""; // why there is nothing to look for (an i18n key), or ""
    this.items = null; // null: not asked yet
    this.error = "";
    this.loading = false;
    this.open = new Set(); // tags whose passages the officer expanded (kept across refreshes)
    this.loadedAt = -Infinity;
    this.timer = null;
    this.seq = 0;
  }

  /** Look from theft `theftId` (none: say so) with `query` (reason, since, until); now. */
  setQuery(theftId, query) {
    this.clear();
    this.url = theftId ? `/api/v1/thefts/${theftId}/companions?${query}` : null;
    this.note = theftId ? "" : "companions.noTheft";
    return this.load();
  }

  /** Nothing to show (the window could not be shown); `error` says why, if given. */
  clear(error = "") {
    this.seq++;
    clearTimeout(this.timer);
    Object.assign(this, { timer: null, url: null, note: "", items: null, error, loading: false });
    this.render();
  }

  /** Refresh with the other panels, but not more often than every COMPANIONS_EVERY_MS. */
  refresh() {
    if (!this.url) return;
    const wait = this.loadedAt + COMPANIONS_EVERY_MS - Date.now();
    if (wait <= 0) this.load();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.load();
      }, wait);
    }
  }

  async load() {
    const seq = ++this.seq; // an answer for an older window or theft is dropped
    this.loadedAt = Date.now();
    if (!this.url) {
      this.render();
      return;
    }
    this.loading = this.items === null; // a refresh keeps the list until the answer comes
    this.render();
    try {
      const body = await getJson(this.url);
      const items = [...body.companions].sort((a, b) => b.score - a.score || b.shared - a.shared);
      if (seq !== this.seq) return;
      this.items = items;
      this.error = "";
    } catch (err) {
      if (seq !== this.seq) return;
      this.items = null;
      this.error = err.message;
    }
    this.loading = false;
    this.render();
  }

  render() {
    const items = this.items || [];
    this.count.textContent = this.items && !this.error ? String(items.length) : "";
    if (this.error) say(this.status, this.error, { error: true });
    else if (this.note) say(this.status, t(this.note));
    else if (this.loading) say(this.status, t("companions.loading"));
    else say(this.status, this.items && !items.length ? t("companions.none") : "");
    this.list.replaceChildren(...items.map((c) => this.item(c)));
  }

  item(c) {
    const plate = c.plate; // the companion's bike's current plate (none: unregistered tag)
    const name = plate
      ? h("a", { href: this.routeHref(plate), title: t("companions.openRoute", { plate }) }, plate)
      : h("span", {}, c.bike_id != null ? t("companions.bike", { id: c.bike_id }) : t("companions.unregistered"));
    const ids = [c.bike_id != null && plate ? t("companions.bike", { id: c.bike_id }) : null, t("companions.tag", { tag: c.tag_id })];
    const times = c.passages.map((p) => p.target_at).sort((a, b) => Date.parse(a) - Date.parse(b));
    const shared = t(c.readers === 1 ? "companions.shared.one" : "companions.shared", {
      n: c.shared,
      readers: c.readers,
    });
    const details = h(
      "details",
      { open: this.open.has(c.tag_id) },
      h("summary", {}, t("companions.passages")),
      this.passageTable(c),
    );
    details.addEventListener("toggle", () => {
      if (details.open) this.open.add(c.tag_id);
      else this.open.delete(c.tag_id);
    });
    return h(
      "li",
      { class: "companion", "data-tag": c.tag_id, "data-bike": c.bike_id ?? null },
      h(
        "div",
        { class: "companion-head" },
        h("strong", {}, name),
        h(
          "span",
          { class: "badge score", title: t("companions.scoreTitle", { expected: number(c.expected, 2) }) },
          t("companions.score", { score: number(c.score, 1) }),
        ),
      ),
      h("div", { class: "muted" }, ids.filter(Boolean).join(" · ")),
      h("div", { class: "shared" }, shared),
      h("div", { class: "muted" }, `${dateTime(times[0])} – ${dateTime(times[times.length - 1])}`),
      details,
    );
  }

  passageTable(c) {
    const table = h(
      "table",
      { class: "list" },
      h(
        "thead",
        {},
        h("tr", {}, ...["companions.reader", "companions.this", "companions.other"].map((k) => h("th", {}, t(k)))),
      ),
      h("tbody"),
    );
    const passages = [...c.passages].sort((a, b) => Date.parse(a.target_at) - Date.parse(b.target_at));
    const rows = passages.map((p) => {
      const offset = (Date.parse(p.companion_at) - Date.parse(p.target_at)) / 1000;
      const signed = `${offset < 0 ? "−" : "+"}${number(Math.abs(offset), 1)}`;
      return row([p.reader_id, dateTime(p.target_at), t("companions.offset", { d: signed })]);
    });
    fillTable(table, rows, "—");
    return table;
  }
}
