// The officer's side panels: last seen, likely next readers with ETA (also marked on the
// map), and cameras near the passages with links to their footage.
import { dateTime, duration, number, relative } from "./format.js";
import { t } from "./i18n.js";
import { fillTable, h, row } from "./dom.js";
import { getJson } from "./session.js";

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
      h("strong", {}, seen.reader_id),
      " · ",
      dateTime(seen.at),
      h("span", { class: "muted" }, ` (${relative(seen.at)})`),
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
      const eta = h("span", {}, dateTime(n.eta), h("span", { class: "muted" }, ` (${duration(n.travel_s)})`));
      const latlng = this.readers.get(n.reader_id);
      if (latlng) {
        L.circleMarker(latlng, { radius: 14, color: "#e65100", weight: 3, dashArray: "4 4", fill: false })
          .bindTooltip(t("next.tooltip", { reader: n.reader_id, eta: dateTime(n.eta) }))
          .addTo(this.layer);
      }
      return row([n.reader_id, eta, `${number(n.probability * 100)} %`]);
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
