// The duty desk's "where now" layer: for each open theft seen at a place, the road cells
// holding 90% of the probability of where the bike can be now (the route page's where-now,
// drawn fainter, one heat per bike). Off until the officer switches it on (each look is a
// location lookup, audited); then asked again every minute, and at once for a bike whose
// marker a live alert moved.
import { getJson } from "./session.js";

const L = window.L;
const EVERY_MS = 60_000;
const COLOR = "#cf222e";
const STORE = "tagtrail.desk.whereNow";
const PANE = "deskWhereNow";

export class OverviewWhereNow {
  /** `query(theft)` gives the lookup's grounds (case number or reason) as URLSearchParams. */
  constructor(map, query, onChange) {
    this.map = map;
    // Under the markers and their labels: a pane below the overlay pane (z-index 400).
    if (!map.getPane(PANE)) map.createPane(PANE).style.zIndex = "350";
    this.query = query;
    this.onChange = onChange; // called after each drawing, with the number of bikes shaded
    this.layers = new Map(); // bike id -> L.LayerGroup
    this.asked = new Map(); // bike id -> the sighting time last asked about (a newer one asks again)
    this.refused = "";
    this.on = false;
    this.busy = false; // a refresh is running
    this.timer = null;
    this.thefts = () => [];
  }

  /** Whether the officer left the layer on (remembered in this browser). */
  static remembered() {
    return localStorage.getItem(STORE) === "on";
  }

  /** Switch the layer on (ask for every theft given by `thefts()`) or off (clear it). */
  set(on, thefts) {
    this.on = on;
    this.thefts = thefts;
    localStorage.setItem(STORE, on ? "on" : "off");
    clearInterval(this.timer);
    this.timer = null;
    if (!on) {
      for (const layer of this.layers.values()) layer.remove();
      this.layers.clear();
      this.asked.clear();
      this.onChange(0, "");
      return;
    }
    this.refresh();
    this.timer = setInterval(() => this.refresh(), EVERY_MS);
  }

  /** Ask again for every open theft seen at a place, one after the other (each look costs
   * the API a computation: a desk with many open thefts must not ask for all at once). */
  async refresh() {
    if (!this.on || this.busy) return;
    this.busy = true;
    try {
      const open = this.thefts();
      this.prune(new Set(open.map((theft) => theft.bike_id)));
      for (const theft of open) if (this.on) await this.load(theft);
    } finally {
      this.busy = false;
    }
  }

  /** Drop the heat of thefts no longer open. */
  prune(openBikeIds) {
    for (const bikeId of [...this.layers.keys()]) if (!openBikeIds.has(bikeId)) this.drop(bikeId);
  }

  /** A theft's last sighting changed (a live alert, a reload): ask if it is new to us. */
  update(theft) {
    if (!this.on || !theft.last_seen) return;
    if (this.asked.get(theft.bike_id) === theft.last_seen.at) return;
    this.load(theft);
  }

  drop(bikeId) {
    this.layers.get(bikeId)?.remove();
    this.layers.delete(bikeId);
    this.asked.delete(bikeId);
    this.onChange(this.layers.size, this.refused);
  }

  async load(theft) {
    if (!theft.last_seen) return;
    this.asked.set(theft.bike_id, theft.last_seen.at);
    let body = null;
    try {
      body = await getJson(`/api/v1/bikes/${theft.bike_id}/where-now?${this.query(theft)}`);
    } catch (err) {
      // 404: seen too long ago (or never) for a useful map; 403: this role may not look.
      if (err.status === 403) this.refused = err.message;
    }
    if (!this.on) return;
    this.layers.get(theft.bike_id)?.remove();
    this.layers.delete(theft.bike_id);
    if (body && body.region.features.length) this.layers.set(theft.bike_id, this.draw(theft.bike_id, body));
    this.onChange(this.layers.size, this.refused);
  }

  draw(bikeId, body) {
    const cells = body.region.features;
    const top = Math.max(...cells.map((c) => c.properties.probability), 1e-9);
    const group = L.layerGroup();
    L.geoJSON(body.region, {
      pane: PANE,
      interactive: false,
      style: (cell) => ({
        stroke: false,
        className: `where-now-cell where-now-bike-${bikeId}`,
        fillColor: COLOR,
        fillOpacity: 0.05 + 0.25 * (cell.properties.probability / top),
      }),
    }).addTo(group);
    group.addTo(this.map);
    return group;
  }
}
