// The passages list of the case view: time, reader and reads of each passage, newest last;
// those after the replay's moment are dimmed, and choosing one jumps the replay there.
import { dateTime, zoneName } from "./format.js";
import { t } from "./i18n.js";
import { fillTable, h, row } from "./dom.js";
import { readerLabel } from "./reader-names.js";

export class PassageList {
  constructor(table, { onChoose }) {
    this.table = table;
    this.onChoose = onChoose;
    this.passages = [];
    this.liveKeys = new Set();
  }

  static key(p) {
    return `${p.reader_id}@${Date.parse(p.closest_at)}`;
  }

  set(passages) {
    this.passages = [...passages];
    this.render();
  }

  /** Add a passage that came over the live stream; false if it was already listed. */
  add(passage) {
    const key = PassageList.key(passage);
    if (this.passages.some((p) => PassageList.key(p) === key)) return false;
    this.liveKeys.add(key);
    this.passages.push(passage);
    this.passages.sort((a, b) => Date.parse(a.closest_at) - Date.parse(b.closest_at));
    this.render();
    return true;
  }

  render() {
    this.table.querySelector(".zone").textContent = zoneName() ? `(${zoneName()})` : "";
    const rows = this.passages.map((p) => {
      const time = Date.parse(p.closest_at);
      const button = h(
        "button",
        { type: "button", class: "link", onclick: () => this.onChoose(time) },
        dateTime(p.closest_at),
      );
      const live = this.liveKeys.has(PassageList.key(p));
      return row([button, readerLabel(p.reader_id), String(p.read_count ?? "")], {
        class: live ? "live" : null,
        "data-time": String(time),
      });
    });
    fillTable(this.table, rows, t("passages.none"));
  }

  /** Dim the passages after `time` (the replay's moment). */
  showUntil(time) {
    for (const tr of this.table.tBodies[0].rows) {
      tr.classList.toggle("future", Number(tr.dataset.time) > time);
    }
  }
}
