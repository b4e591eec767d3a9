// The caller's tasks, newest first, filtered by status, a page at a time.

import { call } from "../api.js";
import { field, formatDate, h, replace, uid } from "../dom.js";
import { alertBox, showAlert, showProblem } from "../forms.js";
import { FINAL, statusBadge, statusLabel } from "../status.js";

const PAGE_SIZE = 20;
const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];

export function tasksView(app) {
  const controller = new AbortController();
  const box = alertBox();
  const filter = h(
    "select",
    { id: uid("status"), name: "status" },
    h("option", { value: "" }, "All"),
    STATUSES.map((status) => h("option", { value: status }, statusLabel(status))),
  );
  const rows = h("tbody", {});
  const table = h(
    "table",
    { class: "tasks" },
    h("caption", { class: "visually-hidden" }, "Your tasks, newest first"),
    h(
      "thead",
      {},
      h("tr", {}, ["Task", "Submitted", "Status", "Progress", "Cost", "Result", ""].map((name) => h("th", { scope: "col" }, name))),
    ),
    rows,
  );
  const empty = h("p", { hidden: true }, "No tasks here yet. ", h("a", { href: "#/new" }, "Process an image"), ".");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load more");
  const element = h(
    "section",
    {},
    h("h1", { tabindex: -1 }, "Tasks"),
    box,
    h("div", { class: "toolbar" }, field("Status", filter)),
    h("div", { class: "table-wrap" }, table),
    empty,
    more,
  );

  let cursor = null;
  let loading = null; // the page being read; a newer read aborts it

  function row(task) {
    const cancel = h(
      "button",
      { type: "button", class: "secondary small", "aria-label": `Cancel task ${task.id.slice(0, 8)}` },
      "Cancel",
    );
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try {
        const updated = await call("DELETE", `/v1/tasks/${task.id}`);
        line.replaceWith(row(updated));
        showAlert(box, `Task ${task.id.slice(0, 8)} was cancelled.`, "info");
        box.focus(); // the button has gone with its row
        app.refreshAccount().catch(() => {});
      } catch (error) {
        cancel.disabled = false;
        showProblem(box, error);
      }
    });
    const result = task.result
      ? `${task.result.format.toUpperCase()} ${task.result.width} × ${task.result.height}`
      : task.error
        ? task.error.message
        : "";
    const line = h(
      "tr",
      { "data-task": task.id },
      h("td", {}, h("a", { href: `#/tasks/${task.id}` }, task.id.slice(0, 8))),
      h("td", {}, formatDate(task.created_at)),
      h("td", {}, statusBadge(task.status)),
      h("td", {}, `${task.progress} %`),
      h("td", {}, String(task.cost)),
      h("td", {}, result),
      h("td", {}, FINAL.has(task.status) ? null : cancel),
    );
    return line;
  }

  async function load(reset) {
    loading?.abort();
    const mine = new AbortController();
    loading = mine;
    const stop = () => mine.abort();
    controller.signal.addEventListener("abort", stop);
    const query = new URLSearchParams({ limit: PAGE_SIZE });
    if (filter.value) query.set("status", filter.value);
    if (cursor && !reset) query.set("cursor", cursor);
    more.disabled = true;
    const hadFocus = document.activeElement === more;
    try {
      const page = await call("GET", `/v1/tasks?${query}`, { signal: mine.signal });
      if (reset) replace(rows);
      const first = page.items.length ? rows.children.length : -1;
      rows.append(...page.items.map(row));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      empty.hidden = rows.children.length > 0;
      table.hidden = !empty.hidden;
      showAlert(box, "");
      // "Load more" may have gone with the last page: continue from the first new task.
      if (hadFocus && more.hidden && first >= 0) rows.children[first].querySelector("a").focus();
    } catch (error) {
      if (error.name !== "AbortError") showProblem(box, error);
    } finally {
      controller.signal.removeEventListener("abort", stop);
      if (loading === mine) {
        loading = null;
        more.disabled = false;
      }
    }
  }

  filter.addEventListener("change", () => load(true));
  more.addEventListener("click", () => load(false));
  load(true);
  return { title: "Tasks", element, dispose: () => controller.abort() };
}
