// The console's only way to the API: tokens, problem documents, server-sent events.

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

// The login is shared by the browser's tabs: its token pair is kept in IndexedDB, each refresh
// happens under a lock that every tab takes, and a tab that finds the pair already rotated by
// another takes the new one instead of reusing the old refresh token (which the server would
// take for theft, ending the login everywhere). Under the lock the pair is read from IndexedDB:
// a write another tab finished before it released the lock is always seen there, whereas a
// tab's copy of localStorage may lag behind another tab's write (Chromium copies it between
// processes). localStorage keeps a copy for its `storage` events, which tell the other tabs
// at once that the login changed or ended.
const PAIR_KEY = "pixelfleet.session";
const withRefreshLock = navigator.locks
  ? (task) => navigator.locks.request("pixelfleet.refresh", task)
  : (task) => task();

function validPair(pair) {
  return pair && pair.access_token && pair.refresh_token
    ? { access_token: pair.access_token, refresh_token: pair.refresh_token }
    : null;
}

/** The pair as this tab's copy of localStorage has it (it may lag behind another tab's). */
function storedPair() {
  try {
    return validPair(JSON.parse(localStorage.getItem(PAIR_KEY)));
  } catch {
    return null;
  }
}

let database = null;

/** The console's IndexedDB database (null where IndexedDB cannot be used). */
function openDatabase() {
  database ||= new Promise((resolve) => {
    let opening;
    try {
      opening = indexedDB.open("pixelfleet", 1);
    } catch {
      resolve(null);
      return;
    }
    opening.onupgradeneeded = () => opening.result.createObjectStore("session");
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => resolve(null);
    opening.onblocked = () => resolve(null);
  });
  return database;
}

/** Runs `action(store)` in a transaction; resolves with its request's result once committed
 *  (undefined without IndexedDB). */
async function inDatabase(mode, action) {
  const db = await openDatabase();
  if (!db) return undefined;
  return new Promise((resolve, reject) => {
    const transaction = db.transaction("session", mode);
    const request = action(transaction.objectStore("session"));
    transaction.oncomplete = () => resolve(request.result);
    transaction.onerror = transaction.onabort = () => reject(transaction.error);
  });
}

/** The current pair, as the last tab to change it left it (null when signed out). */
async function loadPair() {
  try {
    const pair = await inDatabase("readonly", (sessionStore) => sessionStore.get("pair"));
    if (pair !== undefined) return validPair(pair);
  } catch {
    // IndexedDB failed: localStorage is all there is.
  }
  return storedPair();
}

/** Keeps `pair` (null: signed out) for every tab; resolves once IndexedDB has committed it. */
async function savePair(pair) {
  const kept = validPair(pair);
  try {
    await inDatabase("readwrite", (sessionStore) => sessionStore.put(kept, "pair"));
  } catch {
    // IndexedDB failed: localStorage is all there is.
  }
  if (kept) localStorage.setItem(PAIR_KEY, JSON.stringify(kept));
  else localStorage.removeItem(PAIR_KEY);
}

class Session {
  constructor() {
    this.pair = null;
    this.generation = 0; // bumped at each logout: a refresh that was under way is dropped
    this.listeners = new Set();
    this.refreshing = null;
    window.addEventListener("storage", (event) => {
      if (event.key === PAIR_KEY || event.key === null) this._adopt(storedPair());
    });
  }

  get accessToken() {
    return this.pair ? this.pair.access_token : null;
  }

  get signedIn() {
    return this.pair !== null;
  }

  onChange(listener) {
    this.listeners.add(listener);
  }

  _adopt(pair) {
    const before = this.signedIn;
    this.pair = pair;
    if (before !== this.signedIn) {
      for (const listener of this.listeners) listener(this.signedIn);
    }
  }

  async _set(pair) {
    this._adopt(validPair(pair));
    await savePair(pair);
  }

  async logIn(email, password) {
    const form = new URLSearchParams({ username: email, password });
    const pair = await call("POST", "/v1/auth/token", { body: form, anonymous: true });
    await withRefreshLock(() => this._set(pair));
  }

  async signUp(email, password) {
    await call("POST", "/v1/auth/register", { json: { email, password }, anonymous: true });
    await this.logIn(email, password);
  }

  async logOut() {
    this.generation += 1;
    const held = this.pair;
    // Under the lock: a refresh under way in another tab ends first, and its pair is the one
    // ended here. The page shows the login ended only once that is stored, so a reload right
    // after cannot take it up again.
    const pair = await withRefreshLock(async () => {
      const current = (await loadPair()) || held;
      await savePair(null);
      return current;
    });
    this._adopt(null);
    if (pair) await revoke(pair.refresh_token);
  }

  /** Takes up the login this browser already has (false when there is none, or it has
   *  ended); its access token is refreshed first if it has expired. */
  async resume() {
    const pair = await loadPair();
    if (!pair) return false;
    this.pair = pair;
    try {
      await call("GET", "/v1/me");
    } catch (error) {
      if (!this.signedIn) return false; // the login had ended
    }
    for (const listener of this.listeners) listener(true);
    return true;
  }

  /** A new token pair (null when the login has ended). One refresh at a time; a failure
   *  that may pass (no connection, 429, 5xx) is thrown and keeps the login. */
  refresh() {
    this.refreshing ||= this._refresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  async _refresh() {
    const generation = this.generation;
    const held = this.pair;
    return withRefreshLock(async () => {
      const stored = await loadPair();
      if (!stored) {
        this._adopt(null);
        return null;
      }
      if (!held || stored.refresh_token !== held.refresh_token) {
        this._adopt(stored); // another tab has refreshed (or logged in) meanwhile
        return stored;
      }
      let pair;
      try {
        pair = await call("POST", "/v1/auth/refresh", { json: { refresh_token: stored.refresh_token }, anonymous: true });
      } catch (error) {
        if (error.status === 401 || error.status === 403) {
          await this._set(null);
          return null;
        }
        throw error;
      }
      if (generation !== this.generation) {
        await revoke(pair.refresh_token); // logged out while this was under way
        return null;
      }
      await this._set(pair);
      return this.pair;
    });
  }
}

async function revoke(refreshToken) {
  try {
    await call("POST", "/v1/auth/logout", { json: { refresh_token: refreshToken }, anonymous: true });
  } catch {
    // Signed out here either way; the refresh token expires on its own.
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
  if (response.status === 401 && !options.anonymous && session.signedIn) {
    if (await session.refresh()) response = await send(method, path, options);
    if (response.status === 401) await session._set(null);
  }
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
