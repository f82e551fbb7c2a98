// Residents book a place at an upcoming tagging event.
import { dateTime } from "./format.js";
import { t } from "./i18n.js";
import { h } from "./dom.js";
import { getJson, postJson } from "./session.js";
import { say } from "./shell.js";

export class Slots {
  constructor(list, status) {
    Object.assign(this, { list, status });
    this.events = [];
    this.booked = new Set();
  }

  async load() {
    const page = await getJson(`/api/v1/events?${new URLSearchParams({ after: new Date().toISOString(), limit: 20 })}`);
    this.events = page.items;
    this.render();
  }

  async book(event) {
    try {
      await postJson(`/api/v1/events/${event.event_id}/bookings`);
      this.booked.add(event.event_id);
      say(this.status, t("slots.booked", { name: event.name }));
      await this.load();
    } catch (err) {
      say(this.status, err.message, { error: true });
    }
  }

  render() {
    if (!this.events.length) {
      this.list.replaceChildren(h("li", { class: "muted" }, t("slots.none")));
      return;
    }
    this.list.replaceChildren(
      ...this.events.map((e) => {
        const full = e.booked >= e.capacity;
        const button = this.booked.has(e.event_id)
          ? h("span", { class: "tag ok" }, t("slots.yours"))
          : h("button", { type: "button", disabled: full, onclick: () => this.book(e) }, full ? t("slots.full") : t("slots.book"));
        return h(
          "li",
          { class: "slot" },
          h("div", {}, h("strong", {}, e.name), h("br"), `${e.place} · ${dateTime(e.starts_at)} – ${dateTime(e.ends_at)}`,
            h("br"), h("span", { class: "muted" }, t("slots.places", { booked: e.booked, capacity: e.capacity }))),
          button,
        );
      }),
    );
  }
}
