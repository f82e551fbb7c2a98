// Bearer-token session for the console pages: kept in sessionStorage (gone with the tab).
"use strict";
const Session = {
  token: () => sessionStorage.getItem("tagtrail.token"),
  role: () => sessionStorage.getItem("tagtrail.role"),
  save(token, role) {
    sessionStorage.setItem("tagtrail.token", token);
    sessionStorage.setItem("tagtrail.role", role);
  },
  clear() { sessionStorage.removeItem("tagtrail.token"); sessionStorage.removeItem("tagtrail.role"); },
  // Send the user to the login page, coming back here afterwards.
  requireLogin() {
    if (!this.token()) location = `/?next=${encodeURIComponent(location.pathname + location.search)}`;
  },
  async login(username, password) {
    const r = await fetch("/api/v1/auth/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ username, password }),
    });
    const body = await r.json();
    if (!r.ok) throw new Error(body.detail || r.statusText);
    this.save(body.access_token, body.role);
  },
  async getJson(url) {
    const r = await fetch(url, { headers: { Authorization: `Bearer ${this.token()}` } });
    if (r.status === 401) { this.clear(); this.requireLogin(); }
    const body = await r.json();
    if (!r.ok) throw new Error(body.detail || r.statusText);
    return body;
  },
  // Server-sent events over fetch, so that the bearer token can travel in a header.
  async stream(url, onEvent, signal) {
    const r = await fetch(url, { headers: { Authorization: `Bearer ${this.token()}` }, signal });
    if (!r.ok) throw new Error(`live stream: ${r.status}`);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = {};
        for (const line of block.split("\n")) {
          const i = line.indexOf(":");
          if (i > 0) fields[line.slice(0, i)] = line.slice(i + 1).trim();
        }
        if (fields.event && fields.data) onEvent(fields.event, JSON.parse(fields.data), fields.id);
      }
    }
  },
};
