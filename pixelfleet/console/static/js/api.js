// The console's only way to the API: tokens, problem documents, server-sent events.

const REFRESH_KEY = "pixelfleet.refresh";

/** An error answer of the API: its problem document (RFC 9457). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `The server answered ${status}.`);
    this.status = status;
    this.type = problem.type || "";
    this.title = problem.title || "";
    this.errors = problem.errors || [];
    this.retryAfter = problem.retryAfter;
  }

  /** The problem's slug: `insufficient-credits` for `.../insufficient-credits`. */
  get slug() {
    return this.type.split("/").pop();
  }
}

async function problemOf(response) {
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    problem = { detail: `The server answered ${response.status} ${response.statusText}.` };
  }
  const retryAfter = response.headers.get("Retry-After");
  if (retryAfter) problem.retryAfter = Number(retryAfter);
  return new ApiError(response.status, problem);
}

function offline() {
  return new ApiError(0, {
    title: "No connection",
    detail: "The server could not be reached. Check your connection and try again.",
  });
}

class Session {
  constructor() {
    this.accessToken = null;
    this.listeners = new Set();
    this.refreshing = null;
  }

  get signedIn() {
    return this.accessToken !== null;
  }

  onChange(listener) {
    this.listeners.add(listener);
  }

  _set(pair) {
    this.accessToken = pair ? pair.access_token : null;
    if (pair) sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
    else sessionStorage.removeItem(REFRESH_KEY);
    for (const listener of this.listeners) listener(this.signedIn);
  }

  async logIn(email, password) {
    const form = new URLSearchParams({ username: email, password });
    this._set(await call("POST", "/v1/auth/token", { body: form, anonymous: true }));
  }

  async signUp(email, password) {
    await call("POST", "/v1/auth/register", { json: { email, password }, anonymous: true });
    await this.logIn(email, password);
  }

  async logOut() {
    const refreshToken = sessionStorage.getItem(REFRESH_KEY);
    this._set(null);
    if (refreshToken) {
      try {
        await call("POST", "/v1/auth/logout", { json: { refresh_token: refreshToken }, anonymous: true });
      } catch {
        // Signed out here either way; the refresh token expires on its own.
      }
    }
  }

  /** Resumes the tab's login after a reload (false when there is none to resume). */
  async resume() {
    return (await this.refresh()) !== null;
  }

  /** A new token pair from the stored refresh token; one refresh at a time. */
  refresh() {
    this.refreshing ||= (async () => {
      const refreshToken = sessionStorage.getItem(REFRESH_KEY);
      if (!refreshToken) return null;
      try {
        const pair = await call("POST", "/v1/auth/refresh", {
          json: { refresh_token: refreshToken },
          anonymous: true,
        });
        this._set(pair);
        return pair;
      } catch (error) {
        if (error.status === 401) this._set(null);
        return null;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }
}

export const session = new Session();

async function send(method, path, { json, body, headers = {}, anonymous = false, signal }) {
  const init = { method, headers: { Accept: "application/json", ...headers }, signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  if (!anonymous && session.accessToken) {
    init.headers.Authorization = `Bearer ${session.accessToken}`;
  }
  try {
    return await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw offline();
  }
}

/** A raw response of the API; an error answer is thrown as an ApiError. An expired access
 *  token is refreshed once, and the request sent again. */
export async function request(method, path, options = {}) {
  let response = await send(method, path, options);
  if (response.status === 401 && !options.anonymous && (await session.refresh())) {
    response = await send(method, path, options);
  }
  if (response.status === 401 && !options.anonymous) session._set(null);
  if (!response.ok) throw await problemOf(response);
  return response;
}

/** The JSON answer of the API (null for 204). */
export async function call(method, path, options = {}) {
  const response = await request(method, path, options);
  if (response.status === 204) return null;
  return response.json();
}

/** Follows a server-sent event stream, calling `onEvent(name, data)` for each event, until
 *  the stream ends or `signal` aborts. */
export async function followEvents(path, onEvent, signal) {
  const response = await request("GET", path, { headers: { Accept: "text/event-stream" }, signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const key = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (key === "event") name = text;
        else if (key === "data") data.push(text);
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}
