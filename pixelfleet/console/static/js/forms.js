// What every form of the console does with an error answer: the problem's detail in the
// form's alert, each field error beside its field.

import { h, setFieldError } from "./dom.js";

export function alertBox() {
  return h("div", { class: "alert", role: "alert", hidden: true, tabindex: -1 });
}

export function showAlert(box, message, kind = "error") {
  box.textContent = message || "";
  box.hidden = !message;
  box.dataset.kind = kind;
}

/** Shows an ApiError: detail in `box`, field errors beside the form's controls (named by
 *  the last part of the error's field path), and returns the field messages by name. */
export function showProblem(box, error, form) {
  const byName = {};
  for (const { field, message } of error.errors || []) {
    const name = String(field).split(".").pop();
    byName[name] = message;
  }
  if (form) {
    for (const control of form.querySelectorAll("[name]")) {
      setFieldError(control, byName[control.name]);
    }
  }
  let message = error.message.charAt(0).toUpperCase() + error.message.slice(1);
  if (error.retryAfter) message += ` Try again in ${error.retryAfter} s.`;
  showAlert(box, message);
  return byName;
}

/** Runs `action` with the form's submit button disabled, showing any error in `box`. */
export async function busy(form, box, action) {
  const button = form.querySelector("button[type=submit]");
  const focused = document.activeElement;
  if (button) button.disabled = true;
  form.setAttribute("aria-busy", "true");
  showAlert(box, "");
  try {
    return await action();
  } catch (error) {
    if (error.name === "AbortError") return undefined;
    showProblem(box, error, form);
    return undefined;
  } finally {
    if (button) button.disabled = false;
    form.removeAttribute("aria-busy");
    // Disabling the focused button sent focus to the page: give it back.
    if (document.activeElement === document.body && focused?.isConnected) focused.focus();
  }
}
