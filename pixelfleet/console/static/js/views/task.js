// One task: live progress over server-sent events, then its results to preview and download.

import { call, followEvents, request } from "../api.js";
import { formatBytes, formatDate, h, replace } from "../dom.js";
import { alertBox, showAlert, showProblem } from "../forms.js";
import { FINAL, statusBadge } from "../status.js";

const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 8000];

function filenameOf(response, fallback) {
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename="([^"]+)"/.exec(disposition);
  return match ? match[1] : fallback;
}

/** One output: fetched with the caller's token, shown, and offered for download. */
function outputCard(task, output, urls, signal) {
  const card = h("figure", { class: "output card" }, h("p", { role: "status" }, `Loading ${output.name}…`));
  const facts = `${output.format.toUpperCase()}, ${output.width} × ${output.height}, ${formatBytes(output.bytes)}`;
  if (!output.available) {
    replace(card, h("figcaption", {}, `${output.name}: ${facts}. The stored file has expired.`));
    return card;
  }
  request("GET", output.url, { signal })
    .then(async (response) => {
      const name = filenameOf(response, `${task.id}.${output.format}`);
      const blob = await response.blob();
      if (signal.aborted) return;
      const url = URL.createObjectURL(blob);
      urls.push(url);
      replace(
        card,
        h("img", { src: url, alt: `Result ${output.name}: ${facts}`, class: "result-image" }),
        h(
          "figcaption",
          {},
          h("span", {}, `${output.name}: ${facts}`),
          h("a", { href: url, download: name, class: "button" }, `Download ${name}`),
        ),
      );
    })
    .catch((error) => {
      if (error.name !== "AbortError") replace(card, h("p", { class: "alert", role: "alert" }, error.message));
    });
  return card;
}

export function taskView(app, id) {
  const controller = new AbortController();
  const urls = [];
  const box = alertBox();
  const heading = h("h1", { tabindex: -1 }, "Task");
  const badge = h("span", {});
  const progress = h("progress", { max: 100, value: 0, id: "task-progress", "aria-describedby": "task-progress-text" });
  const progressText = h("p", { id: "task-progress-text", class: "progress-text", "aria-live": "polite" });
  const facts = h("dl", { class: "facts" });
  const cancel = h("button", { type: "button", class: "danger", hidden: true }, "Cancel task");
  const outputs = h("div", { class: "outputs" });
  const element = h(
    "section",
    {},
    heading,
    box,
    h(
      "div",
      { class: "card" },
      h("div", { class: "status-row" }, h("span", {}, "Status: "), badge),
      h("label", { for: "task-progress" }, "Progress"),
      progress,
      progressText,
      facts,
      cancel,
    ),
    outputs,
    h(
      "p",
      {},
      h("a", { href: `#/new/from/${id}` }, "Run another pipeline on this image"),
      " · ",
      h("a", { href: "#/new" }, "Process another image"),
      " · ",
      h("a", { href: "#/tasks" }, "All tasks"),
    ),
  );

  let shownFinal = false;
  function showProgress(state) {
    replace(badge, statusBadge(state.status));
    progress.value = state.progress;
    const stage = state.stage && !FINAL.has(state.status) ? ` (${state.stage})` : "";
    progressText.textContent = `${state.progress} %${stage}`;
    cancel.hidden = FINAL.has(state.status);
    const failure = state.error ? `The task failed: ${state.error.message}` : "";
    if (failure && box.textContent !== failure) showAlert(box, failure);
  }

  // How the image came (`source.kind`), in words.
  const ORIGINS = {
    file: "a file uploaded with the task",
    url: "the web address",
    upload: "a file uploaded ahead of the task",
    task: "an earlier task's image",
    asset: "an asset",
  };

  function showTask(task) {
    heading.textContent = `Task ${task.id.slice(0, 8)}`;
    showProgress(task);
    const rows = [
      ["Submitted", formatDate(task.created_at)],
      ["Cost", `${task.cost} credits`],
      ["Source", `${task.source.format.toUpperCase()}, ${task.source.width} × ${task.source.height}, ${formatBytes(task.source.bytes)}`],
      ["From", ORIGINS[task.source.kind] + (task.source.kind === "url" ? ` ${task.source.ref}` : "")],
      ["Steps", (task.pipeline.operations || []).map((operation) => operation.op).join(", ") || "none"],
    ];
    if (task.finished_at) rows.push(["Finished", formatDate(task.finished_at)]);
    if (task.expires_at) rows.push(["Files kept until", formatDate(task.expires_at)]);
    replace(facts, rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
    if (FINAL.has(task.status) && !shownFinal) {
      shownFinal = true;
      replace(outputs, task.outputs.map((output) => outputCard(task, output, urls, controller.signal)));
      app.refreshAccount().catch(() => {});
    }
  }

  async function load() {
    const task = await call("GET", `/v1/tasks/${id}`, { signal: controller.signal });
    if (box.dataset.kind === "info" && !box.hidden && box.textContent.endsWith("Trying again…")) showAlert(box, "");
    showTask(task);
    return task;
  }

  /** No connection, too many requests, or a server error: worth trying again. */
  function passing(error) {
    return error.status === 0 || error.status === 429 || error.status >= 500;
  }

  async function watch() {
    let task = null;
    let attempt = 0;
    while (!controller.signal.aborted && !(task && FINAL.has(task.status))) {
      let finished = false;
      let heard = false;
      try {
        task = await load();
        if (FINAL.has(task.status)) return;
        await followEvents(
          `/v1/tasks/${id}/events`,
          (name, state) => {
            // The credential stopped working: the stream ends, and the next load refreshes the
            // login (or signs out, when it was ended).
            if (name === "error") return;
            heard = true;
            showProgress(state);
            if (name === "done") finished = true;
          },
          controller.signal,
        );
        if (finished) task = await load();
      } catch (error) {
        if (error.name === "AbortError") return;
        if (!passing(error)) throw error;
        showAlert(box, `${error.message} Trying again…`, "info");
      }
      if (finished || controller.signal.aborted) continue;
      // The stream broke off: wait a little, then read the task and listen again.
      attempt = heard ? 0 : attempt + 1;
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_DELAYS_MS[Math.min(attempt, RECONNECT_DELAYS_MS.length - 1)]));
    }
  }

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      showTask(await call("DELETE", `/v1/tasks/${id}`));
      showAlert(box, "The task was cancelled.", "info");
      box.focus(); // the button has gone
      app.refreshAccount().catch(() => {});
    } catch (error) {
      showProblem(box, error);
    } finally {
      cancel.disabled = false;
    }
  });

  watch().catch((error) => {
    if (error.name !== "AbortError") showProblem(box, error);
  });

  return {
    title: "Task",
    element,
    dispose() {
      controller.abort();
      for (const url of urls) URL.revokeObjectURL(url);
    },
  };
}
