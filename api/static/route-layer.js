// Draws a route Feature from the API on a Leaflet map, as far as a moment in time (for the
// replay): observed stretches solid, inferred dashed, gaps dotted grey, live additions orange;
// passages as dots with their times and readers (id and address), and the bike where it was at that moment. Each stretch
// between two sightings is drawn by how sure the engine is of its way (fainter and thinner
// when unsure), and the plausible other ways faintly beside it, their share in a tooltip.
import { clock } from "./format.js";
import { t as say } from "./i18n.js";
import { readerLabel } from "./reader-names.js";

const L = window.L;

export const STYLES = {
  observed: { color: "#c62828", weight: 5, opacity: 0.9 },
  inferred: { color: "#c62828", weight: 4, opacity: 0.85, dashArray: "8 7" },
  stop: { color: "#6a1b9a", weight: 6, opacity: 0.9 },
  gap: { color: "#57606a", weight: 3, opacity: 0.9, dashArray: "2 7" },
  live: { color: "#e65100", weight: 4, opacity: 0.95, dashArray: "12 5" },
};
// With more passages than this the time labels would cover the map: times go to tooltips.
const MAX_LABELS = 30;
// Below this a stretch's way is shown as uncertain (its share in a tooltip).
const SURE = 0.95;
export const ALTERNATIVE = { color: "#0b3d91", weight: 3, dashArray: "1 6", className: "route-alternative" };

/** A stretch's style scaled by the posterior `p` of its way (null: unknown, drawn as is). */
export function confident(style, p) {
  if (p == null || p >= SURE) return style;
  return {
    ...style,
    opacity: style.opacity * (0.3 + 0.7 * p),
    weight: Math.max(2, style.weight * (0.5 + 0.5 * p)),
    className: "route-unsure",
  };
}

const percent = (p) => `${Math.round(p * 100)}%`;

// Which stretch (between passages k and k+1) a moment falls in, from the passages' times.
function stretchAt(cuts, time) {
  let k = 0;
  while (k < cuts.length && cuts[k] < time) k++;
  return k;
}

/** Consecutive stretches of one kind, never joined across the route's breaks. */
export function runsOf(feature) {
  const coords = feature.geometry.coordinates.map(([lon, lat]) => [lat, lon]);
  const times = (feature.properties.times || []).map((s) => Date.parse(s));
  const kinds = feature.properties.kinds || [];
  const breaks = new Set(feature.properties.breaks || []);
  const stretches = feature.properties.stretches || [];
  // Inner passages' times: where one stretch ends and the next begins.
  const cuts = (feature.properties.passages || []).slice(1, -1).map((p) => Date.parse(p.closest_at));
  const runs = [];
  let run = null;
  for (let i = 1; i < coords.length; i++) {
    const kind = STYLES[kinds[i]] ? kinds[i] : "inferred";
    const stretch = stretches[stretchAt(cuts, (times[i - 1] + times[i]) / 2)];
    const p = stretch && kind !== "observed" ? stretch.probability : null;
    if (!run || run.kind !== kind || run.probability !== p || breaks.has(i)) {
      if (breaks.has(i)) run = null;
      run = { kind, probability: p, latlngs: [coords[i - 1]], times: [times[i - 1]] };
      runs.push(run);
    }
    run.latlngs.push(coords[i]);
    run.times.push(times[i]);
  }
  return runs;
}

// The part of a run up to time t, with the point reached at t interpolated.
function clip(run, t) {
  const { latlngs, times } = run;
  if (times[0] > t) return [];
  const out = [latlngs[0]];
  for (let i = 1; i < latlngs.length; i++) {
    if (times[i] <= t) {
      out.push(latlngs[i]);
      continue;
    }
    const span = times[i] - times[i - 1];
    const f = span > 0 ? (t - times[i - 1]) / span : 0;
    const [a, b] = [latlngs[i - 1], latlngs[i]];
    out.push([a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f]);
    break;
  }
  return out;
}

export class RouteLayer {
  constructor(map) {
    this.map = map;
    this.alternatives = L.layerGroup().addTo(map);
    this.lines = L.layerGroup().addTo(map);
    this.dots = L.layerGroup().addTo(map);
    this.runs = [];
    this.others = [];
    this.passages = [];
    this.bike = L.circleMarker([0, 0], {
      radius: 9,
      color: "#fff",
      weight: 3,
      fillColor: "#0b3d91",
      fillOpacity: 1,
    });
  }

  /** Replace what is drawn with `feature` (the API's route). */
  setFeature(feature) {
    this.lines.clearLayers();
    this.dots.clearLayers();
    this.alternatives.clearLayers();
    this.runs = runsOf(feature).map((run) => {
      const line = L.polyline(run.latlngs, confident(STYLES[run.kind], run.probability));
      if (run.probability != null && run.probability < SURE) {
        line.bindTooltip(say("route.likely", { p: percent(run.probability) }), { sticky: true });
      }
      return { ...run, line: line.addTo(this.lines) };
    });
    this.drawAlternatives(feature.properties.stretches || [], feature.properties.passages || []);
    const passages = feature.properties.passages || [];
    const label = passages.length <= MAX_LABELS;
    this.passages = passages
      .filter((p) => p.lat != null && p.lon != null)
      .map((p) => {
        const dot = L.circleMarker([p.lat, p.lon], {
          radius: 5,
          color: "#0b3d91",
          weight: 2,
          fillColor: "#fff",
          fillOpacity: 1,
        }).bindTooltip(`${clock(p.closest_at)} · ${readerLabel(p.reader_id)}`, {
          permanent: label,
          direction: "right",
          className: "time-label",
        });
        return { time: Date.parse(p.closest_at), dot };
      });
    for (const p of this.passages) p.dot.addTo(this.dots);
    this.bike.addTo(this.map);
  }

  /** The plausible other ways of every stretch, faint, opacity by their share; each
   * shown in the replay from the time its stretch begins (its first passage). */
  drawAlternatives(stretches, passages) {
    this.others = [];
    for (const stretch of stretches) {
      const from = passages[stretch.segment];
      const time = from ? Date.parse(from.closest_at) : -Infinity;
      for (const alt of stretch.alternatives || []) {
        const latlngs = alt.coordinates.map(([lon, lat]) => [lat, lon]);
        const line = L.polyline(latlngs, { ...ALTERNATIVE, opacity: 0.2 + 0.6 * alt.probability })
          .bindTooltip(say("route.alternative", { p: percent(alt.probability) }), { sticky: true })
          .addTo(this.alternatives);
        this.others.push({ time, line });
      }
    }
  }

  /** A live addition: the road from the previous reader to a new passage. */
  extend(latlngs, passage) {
    const time = Date.parse(passage.closest_at);
    if (latlngs.length > 1) {
      const run = { kind: "live", latlngs, times: latlngs.map(() => time) };
      run.line = L.polyline(latlngs, STYLES.live).addTo(this.lines);
      this.runs.push(run);
    }
    if (passage.lat != null && passage.lon != null) {
      const dot = L.circleMarker([passage.lat, passage.lon], {
        radius: 6,
        color: STYLES.live.color,
        weight: 3,
        fillColor: "#fff",
        fillOpacity: 1,
      }).bindTooltip(`${clock(passage.closest_at)} · ${readerLabel(passage.reader_id)}`, {
        permanent: this.passages.length < MAX_LABELS,
        direction: "right",
        className: "time-label",
      });
      dot.addTo(this.dots);
      this.passages.push({ time, dot });
    }
  }

  /** Show the route as it was at time `t` (ms); the bike marker sits where it was. */
  showUntil(t) {
    let position = null;
    for (const run of this.runs) {
      const part = clip(run, t);
      run.line.setLatLngs(part);
      if (part.length) position = part[part.length - 1];
    }
    for (const o of this.others) {
      if (o.time < t && !this.alternatives.hasLayer(o.line)) o.line.addTo(this.alternatives);
      if (o.time >= t && this.alternatives.hasLayer(o.line)) this.alternatives.removeLayer(o.line);
    }
    for (const p of this.passages) {
      if (p.time <= t && !this.dots.hasLayer(p.dot)) p.dot.addTo(this.dots);
      if (p.time > t && this.dots.hasLayer(p.dot)) this.dots.removeLayer(p.dot);
    }
    if (position) this.bike.setLatLng(position).bringToFront();
  }

  bounds() {
    const b = L.latLngBounds([]);
    for (const run of this.runs) b.extend(run.latlngs);
    return b;
  }
}
