// The "where now" layer of the case view: a faint heat of the road cells holding 90% of the
// probability of where the bike can be now (from its last sighting, the readers silent since
// and e-bike speeds), asked again every 30 s while the page is open, with the region's area
// beside the reach circle's.
import { number } from "./format.js";
import { t } from "./i18n.js";
import { getJson } from "./session.js";

const L = window.L;
const EVERY_MS = 30_000;
const COLOR = "#cf222e";

export class WhereNow {
  constructor(note, map) {
    this.note = note;
    this.layer = L.layerGroup().addTo(map);
    this.body = null;
    this.error = "";
    this.timer = null;
  }

  /** Look now and every 30 s for ``bikeId`` (a later call replaces the earlier one). */
  start(bikeId, query) {
    this.stop();
    const look = () => this.load(bikeId, query);
    look();
    this.timer = setInterval(look, EVERY_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async load(bikeId, query) {
    try {
      this.body = await getJson(`/api/v1/bikes/${bikeId}/where-now?${query}`);
      this.error = "";
    } catch (err) {
      // Never seen, or too long ago for a useful map: no layer, and the page says why.
      this.body = null;
      this.error = err.status === 404 ? "" : err.message;
    }
    this.render();
  }

  render() {
    this.layer.clearLayers();
    const body = this.body;
    if (!body) {
      this.note.textContent = this.error;
      return;
    }
    const cells = body.region.features;
    const top = Math.max(...cells.map((c) => c.properties.probability), 1e-9);
    L.geoJSON(body.region, {
      interactive: false,
      style: (cell) => ({
        stroke: false,
        className: "where-now-cell",
        fillColor: COLOR,
        fillOpacity: 0.08 + 0.32 * (cell.properties.probability / top),
      }),
    }).addTo(this.layer);
    this.note.textContent = t("where.note", {
      area: number(body.area_km2, 2),
      reach: number(body.reach_area_km2, 1),
      minutes: number(body.elapsed_s / 60, 0),
    });
  }
}
