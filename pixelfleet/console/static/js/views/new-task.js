// Upload an image, build its pipeline from the catalogue, submit it.

import { call, request } from "../api.js";
import { field, formatBytes, h, replace, uid } from "../dom.js";
import { alertBox, busy, showAlert, showProblem } from "../forms.js";
import { schemaFields } from "../schema-form.js";

// How long the form waits after a change before it asks for a new quote.
const QUOTE_DELAY_MS = 300;
// The image types a direct upload may declare (POST /v1/uploads); another file is sent with
// the task itself, and the API says what it makes of it.
const UPLOAD_TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/avif", "image/tiff", "image/bmp", "image/heic", "image/heif"];

/** Sends a chosen file before the task (a direct upload: to storage itself where the server's
 *  storage takes it, else to the API); the answer is the source that names it. */
async function directUpload(file) {
  const target = await call("POST", "/v1/uploads", { json: { content_type: file.type, bytes: file.size } });
  let response;
  try {
    // The URL is the credential: no Authorization header goes with it.
    response = await fetch(target.url, { method: target.method, headers: target.headers, body: file });
  } catch {
    throw new Error("the image could not be sent");
  }
  if (!response.ok) throw new Error(`the image was refused (HTTP ${response.status})`);
  return { upload: target.id };
}

function credits(count) {
  return `${count} credit${count === 1 ? "" : "s"}`;
}

/** The drop zone: a real file input (keyboard and screen readers use it as it is), which
 *  also takes a file dropped anywhere on the zone. */
function dropZone(onFile) {
  const input = h("input", { type: "file", id: uid("image"), name: "file", accept: "image/*", class: "file-input" });
  const preview = h("div", { class: "source-preview", "aria-live": "polite" });
  const zone = h(
    "div",
    { class: "dropzone" },
    h("label", { for: input.id }, h("strong", {}, "Choose an image"), " or drop it here"),
    input,
    h("p", { class: "hint" }, "JPEG, PNG, WebP, AVIF, GIF, TIFF, BMP and more."),
    preview,
  );
  let shownUrl = null;
  let shown = null;
  function show(file) {
    shown = file;
    if (shownUrl) URL.revokeObjectURL(shownUrl);
    if (!file) {
      replace(preview);
      onFile(null, null);
      return;
    }
    shownUrl = URL.createObjectURL(file);
    const image = h("img", { src: shownUrl, alt: `The image you chose: ${file.name}` });
    const facts = h("p", { class: "source-facts" }, `${file.name}, ${formatBytes(file.size)}`);
    const current = () => shown === file;
    image.addEventListener("load", () => {
      if (!current()) return;
      facts.textContent = `${file.name}, ${image.naturalWidth} × ${image.naturalHeight}, ${formatBytes(file.size)}`;
      onFile(file, { width: image.naturalWidth, height: image.naturalHeight });
    });
    image.addEventListener("error", () => {
      if (!current()) return;
      image.remove(); // a format this browser does not show; the server may still read it
      onFile(file, null);
    });
    replace(preview, image, facts);
    onFile(file, null);
  }
  input.addEventListener("change", () => show(input.files[0] || null));
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (!file) return;
    const transfer = new DataTransfer();
    transfer.items.add(file);
    input.files = transfer.files;
    show(file);
  });
  // A file dropped just outside the zone would make the browser leave the console to show it.
  const keepPage = (event) => {
    if (!zone.contains(event.target)) event.preventDefault();
  };
  window.addEventListener("dragover", keepPage);
  window.addEventListener("drop", keepPage);
  return {
    element: zone,
    input,
    dispose() {
      window.removeEventListener("dragover", keepPage);
      window.removeEventListener("drop", keepPage);
      if (shownUrl) URL.revokeObjectURL(shownUrl);
    },
  };
}

function stepEditor(operation) {
  const form = schemaFields(operation.parameters);
  const legend = h("legend", {});
  const stepError = h("p", { class: "field-error", hidden: true });
  const up = h("button", { type: "button", class: "secondary small" }, "Move up");
  const remove = h("button", { type: "button", class: "secondary small" }, "Remove");
  const element = h(
    "fieldset",
    { class: "step", "data-op": operation.name },
    legend,
    h("p", { class: "hint" }, operation.description),
    stepError,
    form.fields.length ? h("div", { class: "field-grid" }, form.fields) : null,
    h("div", { class: "step-actions" }, up, remove),
  );
  return {
    operation,
    element,
    form,
    up,
    remove,
    showError(message) {
      stepError.textContent = message || "";
      stepError.hidden = !message;
    },
    number(index) {
      legend.textContent = `Step ${index + 1}: ${operation.name} (${credits(operation.price)})`;
      up.setAttribute("aria-label", `Move step ${index + 1} (${operation.name}) up`);
      remove.setAttribute("aria-label", `Remove step ${index + 1} (${operation.name})`);
      up.disabled = index === 0;
    },
  };
}

/** `named`: a stored source to start from (`{task: ID}`), else the form asks for an image. */
export function newTaskView(app, named = null) {
  const box = alertBox();
  const body = h("div", { class: "loading", role: "status" }, "Loading the operations…");
  const element = h(
    "section",
    {},
    h("h1", { tabindex: -1 }, "New task"),
    box,
    body,
  );
  let disposeZone = () => {};
  app
    .catalogue()
    .then((catalogue) => {
      const built = buildForm(app, catalogue, box, named);
      disposeZone = built.dispose;
      replace(body, built.element);
      body.className = "";
      body.removeAttribute("role");
    })
    .catch((error) => {
      replace(body);
      showAlert(box, error.message);
    });
  return { title: "New task", element, dispose: () => disposeZone() };
}

function buildForm(app, catalogue, box, named) {
  const byName = Object.fromEntries(catalogue.operations.map((operation) => [operation.name, operation]));
  // The image: a chosen file, sent ahead as a direct upload (`uploading` resolves to
  // `{upload}`, or to null when it could not be: the file then goes with the task), or a named
  // source (`{url}`, `{task}`), sent in a JSON body for the API to fetch or copy.
  const source = { file: null, size: null, uploading: null, uploaded: false, named };
  const steps = [];
  let idempotencyKey = crypto.randomUUID(); // one per distinct submission, kept across retries

  const costLine = h("p", { class: "cost", "aria-live": "polite" });
  const stepList = h("div", { class: "steps" });
  const emptySteps = h("p", { class: "hint" }, "No steps yet: the image is only converted.");

  function showCost(text) {
    if (costLine.textContent !== text) costLine.textContent = text;
  }

  /** The pipeline the form describes (throws when a field is not valid yet). */
  function readPipeline() {
    const outputSpec = output.read();
    if (formatSelect.value) outputSpec.format = formatSelect.value;
    return { operations: steps.map((step) => step.form.read()), output: outputSpec };
  }

  /** The request options of a submission (or a quote) of `pipeline`. */
  async function submission(pipeline) {
    if (!source.file) return { json: { source: source.named, pipeline } };
    const uploaded = await source.uploading;
    if (uploaded) return { json: { source: uploaded, pipeline } };
    const data = new FormData();
    data.append("file", source.file, source.file.name);
    data.append("pipeline", JSON.stringify(pipeline));
    return { body: data };
  }

  const hasImage = () => Boolean(source.file || source.named);

  // The price is the API's quote (POST /v1/quotes): what the task will be charged, exactly.
  let quoting = null;
  let quoteTimer = 0;
  async function quote() {
    quoting?.abort();
    if (!hasImage()) return showCost("Choose an image to see the price.");
    let pipeline;
    try {
      pipeline = readPipeline();
    } catch {
      return showCost("Complete the steps to see the price.");
    }
    const controller = new AbortController();
    quoting = controller;
    showCost("Working out the price…");
    try {
      if (source.file && !source.uploaded) showCost("Sending the image…");
      const body = await submission(pipeline);
      if (controller.signal.aborted) return;
      showCost("Working out the price…");
      const response = await request("POST", "/v1/quotes", { ...body, signal: controller.signal });
      const answer = await response.json();
      const made = answer.outputs.map((out) => `${out.width} × ${out.height} ${out.format.toUpperCase()}`);
      showCost(`Cost: ${credits(answer.cost)} (makes ${made.join(", ")})`);
    } catch (error) {
      if (error.name === "AbortError") return;
      showCost(`No price yet: ${error.message}`);
    }
  }

  function changed() {
    idempotencyKey = crypto.randomUUID();
    clearTimeout(quoteTimer);
    quoteTimer = setTimeout(quote, QUOTE_DELAY_MS);
  }

  function renumber() {
    steps.forEach((step, index) => step.number(index));
    replace(stepList, steps.length ? steps.map((step) => step.element) : emptySteps);
    changed();
  }

  function addStep(name) {
    const step = stepEditor(byName[name]);
    step.remove.addEventListener("click", () => {
      const index = steps.indexOf(step);
      steps.splice(index, 1);
      renumber();
      (steps[index]?.remove || steps[index - 1]?.remove || picker).focus();
    });
    step.up.addEventListener("click", () => {
      const index = steps.indexOf(step);
      steps.splice(index - 1, 0, ...steps.splice(index, 1));
      renumber();
      (step.up.disabled ? step.remove : step.up).focus();
    });
    steps.push(step);
    renumber();
    step.element.querySelector("input, select, textarea, button")?.focus();
  }

  const urlInput = h("input", { type: "url", id: uid("url"), name: "url", placeholder: "https://…", autocomplete: "off" });
  const zone = dropZone((file, size) => {
    if (file !== source.file) {
      source.uploaded = false;
      source.uploading = file && UPLOAD_TYPES.includes(file.type) ? directUpload(file) : Promise.resolve(null);
      source.uploading = source.uploading.then(
        (uploaded) => {
          if (source.file === file) source.uploaded = Boolean(uploaded);
          return uploaded;
        },
        () => null, // sent with the task instead, where the API says what is wrong with it
      );
    }
    source.file = file;
    source.size = size;
    if (file) {
      urlInput.value = "";
      source.named = null;
    }
    changed();
  });
  urlInput.addEventListener("input", () => {
    const url = urlInput.value.trim();
    source.named = url ? { url } : named;
    changed();
  });
  // Starting from an earlier task's image: it is named, not uploaded again.
  const imageSection = named?.task
    ? h(
        "div",
        { class: "named-source" },
        h("p", {}, "The image of ", h("a", { href: `#/tasks/${named.task}` }, "an earlier task"), ": no new upload."),
      )
    : h("div", {}, zone.element, field("Or the address of an image on the web", urlInput));

  const picker = h(
    "select",
    { id: uid("operation") },
    catalogue.operations.map((operation) =>
      h("option", { value: operation.name }, `${operation.name} (${credits(operation.price)})`),
    ),
  );
  const addButton = h("button", { type: "button", class: "secondary" }, "Add step");
  addButton.addEventListener("click", () => addStep(picker.value));

  const formatSelect = h(
    "select",
    { name: "format", id: uid("format") },
    h("option", { value: "" }, "Same as the source"),
    catalogue.output_formats.map((entry) =>
      h("option", { value: entry.format }, `${entry.format.toUpperCase()} (+${credits(entry.price)})`),
    ),
  );
  const output = schemaFields(catalogue.output_parameters, { omit: ["format"] });

  const submit = h("button", { type: "submit", class: "primary" }, "Process image");
  const form = h(
    "form",
    { class: "task-form" },
    h("fieldset", { class: "card" }, h("legend", {}, "1. Image"), imageSection),
    h(
      "fieldset",
      { class: "card" },
      h("legend", {}, "2. Steps"),
      stepList,
      h("div", { class: "add-step" }, field("Operation", picker), addButton),
    ),
    h(
      "fieldset",
      { class: "card" },
      h("legend", {}, "3. Output"),
      h("div", { class: "field-grid" }, field("Format", formatSelect), output.fields),
    ),
    h("div", { class: "submit-row" }, costLine, submit),
  );
  form.addEventListener("input", (event) => {
    if (event.target !== zone.input) changed();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!hasImage()) {
      showAlert(box, "Choose an image first.");
      zone.input.focus();
      return;
    }
    busy(form, box, async () => {
      let pipeline;
      try {
        pipeline = readPipeline();
      } catch (error) {
        showAlert(box, `Check the highlighted fields: ${error.message}.`);
        return;
      }
      try {
        const response = await request("POST", "/v1/tasks", {
          ...(await submission(pipeline)),
          headers: { "Idempotency-Key": idempotencyKey },
        });
        const task = await response.json();
        app.navigate(`#/tasks/${task.id}`);
      } catch (error) {
        if (error.name === "AbortError") return;
        const others = showFieldErrors(error);
        showProblem(box, error);
        if (others.length) {
          box.append(h("ul", {}, others.map((problem) => h("li", {}, `${problem.field}: ${problem.message}`))));
        }
        if (error.slug === "insufficient-credits") {
          box.append(" ", h("a", { href: "#/credits" }, "Buy credits"));
        }
        form.querySelector("[aria-invalid=true]")?.focus();
      }
    });
  });

  /** Puts each field error beside its field (or on its step); returns the others. */
  function showFieldErrors(error) {
    const perStep = steps.map(() => ({}));
    const onStep = steps.map(() => null);
    const forOutput = {};
    const others = [];
    for (const problem of error.errors || []) {
      const parts = String(problem.field).split(".");
      const index = Number(parts[2]);
      if (parts[1] === "operations" && steps[index]) {
        if (parts.length === 3) onStep[index] = problem.message;
        else perStep[index][parts[parts.length - 1]] = problem.message;
      } else if (parts[1] === "output" && parts.length > 2) {
        forOutput[parts[parts.length - 1]] = problem.message;
      } else {
        others.push(problem);
      }
    }
    steps.forEach((step, index) => {
      const placed = step.form.showErrors(perStep[index]);
      const unplaced = Object.entries(perStep[index]).filter(([name]) => !placed.has(name));
      const messages = [onStep[index], ...unplaced.map(([name, message]) => `${name}: ${message}`)];
      step.showError(messages.filter(Boolean).join(" "));
    });
    const placed = output.showErrors(forOutput);
    for (const [name, message] of Object.entries(forOutput)) {
      if (!placed.has(name)) others.push({ field: `output ${name}`, message });
    }
    return others;
  }

  renumber();
  return {
    element: form,
    dispose: () => {
      clearTimeout(quoteTimer);
      quoting?.abort();
      zone.dispose();
    },
  };
}
