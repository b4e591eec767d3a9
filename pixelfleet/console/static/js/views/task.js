// One task: live progress over server-sent events, then its results to preview and download.

import { call, followEvents } from "../api.js";
import { field, formatBytes, formatDate, h, replace } from "../dom.js";
import { alertBox, busy, showAlert, showProblem } from "../forms.js";
import { FINAL, statusBadge } from "../status.js";

const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 8000];

/** The absolute form of a URL the API gave (a path on this origin, or a whole address). */
function absolute(url) {
  return new URL(url, window.location.href).href;
}

/** When a signed URL stops working: the `exp` of its token (a JWT), or null. */
function expiryOf(url) {
  try {
    const token = new URL(url, window.location.href).pathname.split("/").pop();
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const { exp } = JSON.parse(atob(payload));
    return typeof exp === "number" ? new Date(exp * 1000) : null;
  } catch {
    return null;
  }
}

/** A button that copies `text()` to the clipboard and says so in `status`. */
function copyButton(label, text, status) {
  return h(
    "button",
    {
      type: "button",
      class: "secondary",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(text());
          status.textContent = `${label}: copied.`;
        } catch {
          status.textContent = `${label}: the browser did not allow copying; select the text and copy it.`;
        }
      },
    },
    label,
  );
}

/** What an output is, in words: its format(s), size and bytes. */
function factsOf(output) {
  const size = `${output.width} × ${output.height}`;
  if (output.format === "auto") {
    const each = output.encodings.map((encoding) => `${encoding.format.toUpperCase()} ${formatBytes(encoding.bytes)}`);
    return `AUTO (${each.join(", ")}), ${size}`;
  }
  return `${output.format.toUpperCase()}, ${size}, ${formatBytes(output.bytes)}`;
}

/** One output: shown and offered by its signed URL, which needs no credential (the browser
 *  loads it as any image, and picks the format of an `auto` output by its own Accept). */
function outputCard(output) {
  const facts = factsOf(output);
  if (!output.available) {
    return h("figure", { class: "output card" }, h("figcaption", {}, `${output.name}: ${facts}. The stored file has expired.`));
  }
  const status = h("p", { class: "hint", role: "status" });
  const image = h("img", { src: output.url, alt: `Result ${output.name}: ${facts}`, class: "result-image" });
  image.addEventListener("error", () => {
    status.textContent = "The image could not be loaded: its link may have expired. Reload the page for a fresh one.";
  });
  if (output.dominant_color) image.style.backgroundColor = output.dominant_color; // while it loads
  const expires = expiryOf(output.url);
  let placeholder = null;
  if (output.placeholder) {
    const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
    swatch.style.backgroundColor = output.dominant_color; // CSSOM, which the CSP allows
    placeholder = h(
      "small",
      { class: "hint placeholder" },
      "Placeholder: ",
      h("code", {}, output.placeholder),
      ` on ${output.dominant_color} `,
      swatch,
    );
  }
  return h(
    "figure",
    { class: "output card" },
    image,
    h(
      "figcaption",
      {},
      h("span", {}, `${output.name}: ${facts}`),
      // `download` with no name: the browser takes the one the answer gives.
      h("a", { href: output.url, download: "", class: "button" }, `Download ${output.name}`),
      copyButton(`Copy URL of ${output.name}`, () => absolute(output.url), status),
      expires ? h("small", { class: "hint" }, ` The URL works until ${formatDate(expires.toISOString())}.`) : null,
      placeholder,
      status,
    ),
  );
}

/** The `<picture>` a page puts a derivative URL in: the browser's Accept picks the format. */
function pictureSnippet(url, alt) {
  const quoted = url.replace(/&/g, "&amp;").replace(/"/g, "&quot;");
  const text = alt.replace(/&/g, "&amp;").replace(/"/g, "&quot;");
  return [
    "<picture>",
    `  <source type="image/avif" srcset="${quoted}">`,
    `  <source type="image/webp" srcset="${quoted}">`,
    `  <img src="${quoted}" alt="${text}" loading="lazy">`,
    "</picture>",
  ].join("\n");
}

// The preset choice that stands for this task's own pipeline (no preset is named "*").
const OWN_PIPELINE = "*";

/** Makes a derivative URL of this task's image: through one of the account's presets, or this
 *  task's own pipeline saved as one. Shows it, a preview, and a `<picture>` snippet. */
function imageUrlPanel(task, signal) {
  const box = alertBox();
  const status = h("p", { class: "hint", role: "status" });
  const shown = h("div", { class: "image-url" });
  const own = task.pipeline.variants && task.pipeline.variants.length ? null : task.pipeline;
  const preset = h("select", { name: "preset", required: true });
  const presetName = h("input", { name: "name", value: `task-${task.id.slice(0, 8)}`, pattern: "[a-z0-9][a-z0-9_\\-]{0,63}", required: true });
  const nameField = field("Save it as the preset", presetName, "Lower-case letters, digits, - and _.");
  const choose = () => {
    nameField.hidden = preset.value !== OWN_PIPELINE;
    presetName.disabled = preset.value !== OWN_PIPELINE;
  };
  preset.addEventListener("change", choose);
  const form = h(
    "form",
    { novalidate: false },
    field("Preset", preset, "An image URL makes one image: presets with variants are left out."),
    nameField,
    h("button", { type: "submit" }, "Create image URL"),
  );
  call("GET", "/v1/presets?limit=100", { signal })
    .then((page) => {
      const options = [];
      if (own) options.push(h("option", { value: OWN_PIPELINE }, "This task's pipeline"));
      for (const item of page.items) {
        if (!(item.pipeline.variants && item.pipeline.variants.length)) {
          options.push(h("option", { value: item.name }, item.name));
        }
      }
      replace(preset, options);
      choose();
    })
    .catch((error) => {
      if (error.name !== "AbortError") showProblem(box, error);
    });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, box, async () => {
      let name = preset.value;
      if (name === OWN_PIPELINE) {
        name = presetName.value;
        await call("PUT", `/v1/presets/${encodeURIComponent(name)}`, { json: { pipeline: own }, signal });
      }
      const made = await call("POST", "/v1/image-urls", { json: { source: { task: task.id }, preset: name }, signal });
      const url = absolute(made.url);
      const snippet = pictureSnippet(url, `Image made by the preset ${name}`);
      const urlField = h("input", { readonly: true, value: url, class: "url" });
      replace(
        shown,
        field("Image URL", urlField, "Works with no login, in <img src> or a browser, until the preset changes or the delivery key is rotated. The image is made (and charged) on its first view."),
        copyButton("Copy image URL", () => url, status),
        h("figure", { class: "card" }, h("img", { src: url, alt: `Image made by the preset ${name}`, class: "result-image" })),
        h("p", {}, "For a web page, the browser picks AVIF, WebP or JPEG by itself:"),
        h("pre", {}, h("code", {}, snippet)),
        copyButton("Copy <picture> snippet", () => snippet, status),
        status,
      );
    });
  });
  return h(
    "section",
    { class: "card", "aria-labelledby": `image-url-${task.id}` },
    h("h2", { id: `image-url-${task.id}` }, "Image URL for web pages"),
    h("p", {}, "A link to this image, made through a preset when first viewed, then kept and served as is."),
    box,
    form,
    shown,
  );
}

export function taskView(app, id) {
  const controller = new AbortController();
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
      const cards = task.outputs.map((output) => outputCard(output));
      const makesUrls = task.status === "succeeded" && task.outputs.some((output) => output.available);
      replace(outputs, cards, makesUrls ? imageUrlPanel(task, controller.signal) : null);
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
    },
  };
}
