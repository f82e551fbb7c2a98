// The console's bearer-token session (kept in sessionStorage, so it ends with the tab) and
// the ways pages talk to the API: JSON, problem+json errors, downloads, and server-sent
// events read with fetch, because EventSource cannot send an Authorization header.
const TOKEN = "tagtrail.token";
const ROLE = "tagtrail.role";
const USER = "tagtrail.user";

/** An API answer other than 2xx; `problem` is the problem+json body, `code` its type's tail. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.code = String(problem.type || "").split("/").pop();
  }
}

export const session = {
  token: () => sessionStorage.getItem(TOKEN),
  role: () => sessionStorage.getItem(ROLE),
  username: () => sessionStorage.getItem(USER),
  clear() {
    for (const key of [TOKEN, ROLE, USER]) sessionStorage.removeItem(key);
  },
  /** Send the user to the login page, coming back here afterwards. False if not logged in. */
  requireLogin() {
    if (this.token()) return true;
    location.assign(`/?next=${encodeURIComponent(location.pathname + location.search)}`);
    return false;
  },
  async login(username, password) {
    const r = await fetch("/api/v1/auth/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ username, password }),
    });
    const body = await r.json();
    if (!r.ok) throw new ApiError(r.status, body);
    sessionStorage.setItem(TOKEN, body.access_token);
    sessionStorage.setItem(ROLE, body.role);
    sessionStorage.setItem(USER, username);
    return body.role;
  },
  logout() {
    this.clear();
    location.assign("/");
  },
};

function authHeaders(extra = {}) {
  return { Authorization: `Bearer ${session.token()}`, ...extra };
}

async function send(method, url, body, extraHeaders = {}) {
  const init = { method, headers: authHeaders(extraHeaders) };
  if (body instanceof FormData) {
    init.body = body; // multipart: the browser sets the Content-Type with its boundary
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(url, init);
  if (r.status === 401) {
    session.clear();
    session.requireLogin();
  }
  if (!r.ok) {
    const type = r.headers.get("content-type") || "";
    const problem = type.includes("json") ? await r.json() : { detail: await r.text() };
    throw new ApiError(r.status, problem);
  }
  return r;
}

export const getJson = async (url) => (await send("GET", url)).json();
export const getText = async (url) => (await send("GET", url)).text();
export const postJson = async (url, body = {}) => (await send("POST", url, body)).json();
export const deleteJson = async (url) => (await send("DELETE", url)).json();
export const patchJson = async (url, body = {}) => (await send("PATCH", url, body)).json();
/** DELETE a resource that answers 204 (no body to read). */
export const deleteOnly = async (url) => {
  await send("DELETE", url);
};
export const postForm = async (url, form) => (await send("POST", url, form)).json();
/** A resource the page may not link to directly (it needs the token), as an object URL. */
export const blobUrl = async (url) => URL.createObjectURL(await (await send("GET", url)).blob());

/** Fetch `url` with the token and hand it to the browser as a file download. */
export async function download(url, fallbackName) {
  const r = await send("GET", url);
  const disposition = r.headers.get("content-disposition") || "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] || fallbackName;
  const href = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}

// One SSE block ("field: value" lines) into {event, data, id}; comments and retry-only
// blocks have no event and are skipped by the caller.
function parseBlock(block) {
  const fields = {};
  for (const line of block.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) fields[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return fields;
}

async function readStream(url, lastEventId, onEvent, signal) {
  const headers = authHeaders(lastEventId ? { "Last-Event-ID": lastEventId } : {});
  const r = await fetch(url, { headers, signal });
  if (r.status === 401) {
    session.clear();
    session.requireLogin();
  }
  if (!r.ok) throw new ApiError(r.status, { detail: `live stream: HTTP ${r.status}` });
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let last = lastEventId;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return last;
    // A network chunk may end in the middle of an event: keep the tail for the next chunk.
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const fields = parseBlock(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (fields.id) last = fields.id;
      if (fields.event && fields.data) onEvent(fields.event, JSON.parse(fields.data), fields.id);
    }
  }
}

/**
 * Follow a live stream for as long as the page is open: reconnect after errors with the last
 * event id, so that nothing is missed or repeated. `onState` gets "live" or "reconnecting".
 */
export async function follow(url, onEvent, onState = () => {}, signal = undefined) {
  let lastEventId = null;
  while (!signal?.aborted) {
    try {
      onState("live");
      lastEventId = await readStream(url, lastEventId, onEvent, signal);
    } catch (err) {
      if (signal?.aborted) return;
      onState("reconnecting", err);
    }
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}
