// Builds elements from data. Text is always set as text, never parsed as HTML.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      element.className = value;
    } else if (name in element && typeof value !== "string") {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

let sequence = 0;

/** A fresh id for pairing a label with its control. */
export function uid(prefix = "field") {
  sequence += 1;
  return `${prefix}-${sequence}`;
}

/** A labelled control: <div class="field"><label/><control/><small hint/><p error/></div>. */
export function field(labelText, control, hint) {
  control.id ||= uid();
  const hintElement = hint ? h("small", { id: `${control.id}-hint`, class: "hint" }, hint) : null;
  const errorElement = h("p", { id: `${control.id}-error`, class: "field-error", hidden: true });
  const describedBy = [hintElement?.id, errorElement.id].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", describedBy);
  const isCheckbox = control.type === "checkbox";
  const label = h("label", { for: control.id }, labelText);
  return h(
    "div",
    { class: isCheckbox ? "field field-check" : "field" },
    isCheckbox ? [control, label] : [label, control],
    hintElement,
    errorElement,
  );
}

/** Shows `message` under the control with this id (or clears it). */
export function setFieldError(control, message) {
  const errorElement = document.getElementById(`${control.id}-error`);
  if (!errorElement) return;
  errorElement.textContent = message ? message.charAt(0).toUpperCase() + message.slice(1) : "";
  errorElement.hidden = !message;
  if (message) control.setAttribute("aria-invalid", "true");
  else control.removeAttribute("aria-invalid");
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function formatDate(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function formatMoney(amount, currency) {
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount / 100);
}
