// The console's shell: the session, the header and the hash router.

import { call, session } from "./api.js";
import { h, replace } from "./dom.js";
import { resetPasswordView, verifyEmailView } from "./views/account-links.js";
import { authView } from "./views/auth.js";
import { creditsView } from "./views/credits.js";
import { newTaskView } from "./views/new-task.js";
import { settingsView } from "./views/settings.js";
import { taskView } from "./views/task.js";
import { tasksView } from "./views/tasks.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const account = document.getElementById("account");

let catalogue = null;
let current = null; // the view on screen: { dispose }

/** What every view may use. */
const app = {
  /** The operation catalogue (read once). */
  async catalogue() {
    catalogue ||= call("GET", "/v1/operations", { anonymous: true }).catch((error) => {
      catalogue = null;
      throw error;
    });
    return catalogue;
  },

  /** Reads the account again and shows its balance in the header. */
  async refreshAccount() {
    if (!session.signedIn) return null;
    const me = await call("GET", "/v1/me");
    document.getElementById("who").textContent = me.email;
    document.getElementById("balance").textContent = `${me.balance} credits`;
    return me;
  },

  /** Ends the login in this browser and shows `view` where the log-in page would be (the
   *  account is gone: a farewell, not a log-in form). */
  async leave(view) {
    await session.logOut();
    current?.dispose?.();
    current = view;
    document.title = `${view.title} · PixelFleet`;
    replace(main, view.element);
    (main.querySelector("h1") || main).focus();
  },

  navigate(hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  },
};

const routes = [
  [/^#\/new$/, () => newTaskView(app)],
  [/^#\/new\/from\/([0-9a-f-]{36})$/, (id) => newTaskView(app, { task: id })],
  [/^#\/tasks$/, () => tasksView(app)],
  [/^#\/tasks\/([0-9a-f-]{36})$/, (id) => taskView(app, id)],
  [/^#\/credits$/, () => creditsView(app)],
  [/^#\/settings$/, () => settingsView(app)],
];

// The pages a mailed link opens (by path, with its token in the query), signed in or not.
const linkPages = {
  "/reset-password": resetPasswordView,
  "/verify-email": verifyEmailView,
};

function render() {
  current?.dispose?.();
  nav.hidden = account.hidden = !session.signedIn;
  let view;
  const linkPage = linkPages[location.pathname];
  if (linkPage) {
    nav.hidden = account.hidden = true;
    view = linkPage(app);
  } else if (!session.signedIn) {
    view = authView(app);
  } else {
    const hash = location.hash || "#/new";
    const route = routes.find(([pattern]) => pattern.test(hash));
    if (!route) {
      location.replace("#/new");
      return;
    }
    view = route[1](...hash.match(route[0]).slice(1));
    app.refreshAccount().catch(() => {});
  }
  current = view;
  document.title = `${view.title} · PixelFleet`;
  for (const link of nav.querySelectorAll("a")) {
    if (location.hash.startsWith(link.getAttribute("href"))) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  replace(main, view.element);
  // After a move within the console, screen readers hear the new page's heading and
  // keyboard users continue from it; the first page keeps the browser's own order.
  if (rendered) (main.querySelector("h1") || main).focus();
  rendered = true;
}

let rendered = false;

// The skip link moves focus to the content (its #main would be taken for a route).
document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  (main.querySelector("h1") || main).focus();
});

document.getElementById("logout").addEventListener("click", async () => {
  await session.logOut();
});

let signedIn = false;
session.onChange((now) => {
  if (now !== signedIn) {
    signedIn = now;
    render();
  }
});
window.addEventListener("hashchange", () => {
  if (session.signedIn && !linkPages[location.pathname]) render();
});

async function start() {
  replace(main, h("p", { class: "loading", role: "status" }, "Loading…"));
  if (!(await session.resume())) render();
}

start();
