// The tagging event at the registration desk: choose today's event, see its bookings, check a
// resident in, and start their registration (which links the bike to their account).
import { dateTime } from "./format.js";
import { t } from "./i18n.js";
import { fillTable, h, row } from "./dom.js";
import { getJson, postJson } from "./session.js";
import { say } from "./shell.js";

export class EventDesk {
  constructor({ select, table, status, onRegister }) {
    Object.assign(this, { select, table, status, onRegister });
    this.events = [];
    this.bookings = [];
    select.addEventListener("change", () => this.loadBookings());
  }

  get eventId() {
    return this.select.value ? Number(this.select.value) : null;
  }

  async load() {
    const after = new Date(Date.now() - 12 * 3600 * 1000).toISOString();
    const page = await getJson(`/api/v1/events?${new URLSearchParams({ after, limit: 50 })}`);
    this.events = page.items;
    this.renderEvents();
    await this.loadBookings();
  }

  renderEvents() {
    const chosen = this.select.value;
    this.select.replaceChildren(
      h("option", { value: "" }, t("events.noneChosen")),
      ...this.events.map((e) =>
        h("option", { value: String(e.event_id) }, `${e.name} · ${dateTime(e.starts_at)} (${e.booked}/${e.capacity})`),
      ),
    );
    const now = Date.now();
    const running = this.events.find((e) => Date.parse(e.starts_at) <= now && now < Date.parse(e.ends_at));
    this.select.value = chosen || (running ? String(running.event_id) : "");
  }

  async loadBookings() {
    this.bookings = [];
    if (this.eventId) {
      try {
        this.bookings = (await getJson(`/api/v1/events/${this.eventId}/bookings?limit=200`)).items;
        say(this.status, "");
      } catch (err) {
        say(this.status, err.message, { error: true });
      }
    }
    this.render();
  }

  async checkIn(booking) {
    try {
      await postJson(`/api/v1/events/${booking.event_id}/bookings/${booking.booking_id}/check-in`);
      say(this.status, t("events.checkedIn", { who: booking.username }));
      await this.loadBookings();
    } catch (err) {
      say(this.status, err.message, { error: true });
    }
  }

  render() {
    const rows = this.bookings.map((b) => {
      const actions = h(
        "div",
        { class: "buttons tight" },
        b.checked_in_at
          ? h("span", { class: "tag ok" }, t("events.in", { at: dateTime(b.checked_in_at) }))
          : h("button", { type: "button", onclick: () => this.checkIn(b) }, t("events.checkinButton")),
        h("button", { type: "button", onclick: () => this.onRegister(b) }, t("events.registerFor")),
      );
      return row([b.username, dateTime(b.booked_at), actions]);
    });
    fillTable(this.table, rows, this.eventId ? t("events.noBookings") : t("events.pick"));
  }
}
